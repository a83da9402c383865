"""Two (or more) variants of careloop's code on one workload, measured in one process, round by round:
`python -m bench.ab W1 variants.py [--rounds 16] [--requests 40]`.

The wrk ratios of `make bench` move by ±20 % from run to run on a shared machine, more than most single changes.
This measures a change instead: `bench.profile`'s setup (a fresh database, the app in this process), then the
variants alternate round by round (the order flipped every other round), and each round's CPU time per request is
paired with the other variants' in the same round.

``variants.py`` is a Python file defining ``variants``: a dict from a name to a function that switches the running
code to that variant (set a module attribute back and forth, say). A plan the compiled read path has made holds
what it was made from: clear ``schema.selection.CACHE._schemas`` in the switch when the variants differ there.
Both variants must answer the same (checked once, before measuring; not for W3 and W4, whose answers change with
every request).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench import workloads
from bench.profile import workload_client

CHANGING = ("W3", "W4")  # a new contact each time; the trail grows with every request


def _variants(path: Path) -> dict[str, Callable[[], None]]:
    spec = importlib.util.spec_from_file_location("bench_variants", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.variants)


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    variants = _variants(args.variants)
    async with workload_client(args) as (client, bodies, headers):
        answers = []
        for switch in variants.values():
            switch()
            answers.append((await client.post("/graphql", content=next(bodies), headers=headers)).json())
        assert all("errors" not in answer for answer in answers), answers
        assert args.workload in CHANGING or all(answer == answers[0] for answer in answers), "the answers differ"
        times: dict[str, list[float]] = {name: [] for name in variants}
        for round_number in range(args.rounds):
            order = list(variants.items())
            if round_number % 2:
                order.reverse()
            for name, switch in order:
                switch()
                started = time.process_time()
                for _ in range(args.requests):
                    await client.post("/graphql", content=next(bodies), headers=headers)
                times[name].append((time.process_time() - started) / args.requests * 1000)
    return times


def report(times: dict[str, list[float]]) -> str:
    lines = [f"{name}: median {statistics.median(ms):.3f} ms, fastest round {min(ms):.3f} ms (CPU per request)"
             for name, ms in times.items()]
    (first, before), *others = times.items()
    for name, after in others:
        faster = sum(1 for a, b in zip(before, after, strict=True) if b < a)
        ratio = statistics.median(b / a for a, b in zip(before, after, strict=True))
        lines.append(f"{name} faster than {first} in {faster} of {len(before)} rounds; median ratio {ratio:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(workloads.DOCUMENTS))
    parser.add_argument("variants", type=Path, help="a Python file defining `variants` (see above)")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--requests", type=int, default=40, help="requests per variant and round")
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--first", type=int, default=50)
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    args.query, args.keep = None, False
    print(report(asyncio.run(measure(args))))


if __name__ == "__main__":
    main()
