"""The results as a markdown table and as JSON, in bench/results/<UTC time>.md and .json."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import servers, survey_report
from bench.servers import ROOT
from bench.workloads import TITLES


async def metadata(dsn: str, args: argparse.Namespace, stamp: datetime, patients: int, contacts: int) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        postgres = (await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()
    return {
        "time": stamp.isoformat(timespec="seconds"), "commit": _commit(), "cpus": os.cpu_count(),
        "http": servers.HTTP_STACK_VERSIONS,
        "cpu": _cpu_model(), "python": platform.python_version(), "postgres": postgres,
        "sqlite": sqlite3.sqlite_version,
        "args": vars(args), "final_patients": patients, "final_contacts": contacts,
    }


def _commit() -> str:
    git = shutil.which("git")
    if git is None:
        return "?"
    done = subprocess.run([git, "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,  # noqa: S603
                          check=False)
    return done.stdout.strip() or "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _row(name: str, pair: dict, goals: dict[str, float], with_sql: bool) -> str:
    c, b = pair["careloop"], pair["baseline"]
    ratio = c.rps / b.rps if b.rps else 0.0
    goal = goals.get(name)
    verdict = "" if goal is None else f"≥ {goal:.2f} {'met' if ratio >= goal else 'NOT met'}"
    title = f"{name} {TITLES[name]}" if name in TITLES else name
    cells = [title, f"{c.rps:,.0f}", f"{b.rps:,.0f}", f"**{ratio:.2f}**", verdict,
             f"{c.p50_ms:.1f} / {c.p99_ms:.1f}", f"{b.p50_ms:.1f} / {b.p99_ms:.1f}"]
    if with_sql:
        cells += [f"{c.statements:g} / {b.statements:g}", f"{_number(c.round_trips)} / {_number(b.round_trips)}",
                  f"{c.audit_rows:g}", f"{_ms(c.database_ms)} / {_ms(b.database_ms)}"]
    cells.append(f"{c.peak_mib:.0f} / {b.peak_mib:.0f}")
    if c.bad or b.bad:
        cells[0] += f" (**errors: {c.bad} / {b.bad}**)"
    return "| " + " | ".join(cells) + " |"


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _table(pairs: dict, goals: dict[str, float], *, with_sql: bool) -> list[str]:
    head = ["workload", "careloop req/s", "baseline req/s", "ratio", "goal", "careloop p50 / p99 ms",
            "baseline p50 / p99 ms"]
    head += ["SQL/req careloop / baseline", "round trips/req careloop / baseline", "audit rows/req",
             "PostgreSQL CPU ms/req careloop / baseline"] if with_sql else []
    head += ["peak MiB careloop / baseline"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *(_row(name, pair, goals, with_sql) for name, pair in pairs.items())]


def markdown(meta: dict, results: dict, goals: dict[str, float]) -> str:
    a = meta["args"]
    http = ", ".join(f"{name} {version}" for name, version in meta.get("http", {}).items())
    machine = (f"Commit {meta['commit']}; {meta['cpus']} CPUs ({meta['cpu']}); Python {meta['python']}; "
               f"PostgreSQL {meta['postgres']}; SQLite {meta.get('sqlite', '?')}; both servers on {http or '?'}, "
               f"{a.get('workers', 1)} worker process(es) each.")
    lines = [f"# careloop benchmark, {meta['time']}", ""]
    if "workloads" in results:
        lines += _web(machine, a, results, goals)
    else:
        lines.append(machine)
    if "campaign" in results:
        lines += ["", *_campaign(results["campaign"], a)]
    if "survey_report" in results:
        lines += ["", *survey_report.markdown(results["survey_report"])]
    return "\n".join(lines)


def _web(machine: str, a: dict, results: dict, goals: dict[str, float]) -> list[str]:
    index = " + an index on contact (institution_id, patient_id) (--index-contacts)" if a["index_contacts"] else ""
    lines = [
        f"{machine} wrk -t{a['threads']} -c{a['connections']} -d{a['seconds']:g}s after a "
        f"{a['warmup']:g}s warm-up, {a['rounds']} round(s), medians. Data: {a['patients']:,} patients, "
        f"{a['contacts']:,} contacts, {a['audit_events']:,} audit events, {a.get('tasks', 0):,} follow-up tasks"
        f"{index}. Ratio = careloop / baseline "
        "requests per second. SQL/req: statements per request (careloop: Tortoise's statements, without "
        "BEGIN/COMMIT); round trips/req: client-server exchanges with PostgreSQL per request, counted on the wire "
        "the same way for both (BEGIN and COMMIT included; bench/roundtrips.py); audit rows/req: audit events "
        "careloop appends per request; PostgreSQL CPU ms/req: the CPU time every PostgreSQL process of the machine "
        "used per request, measured with the round trips (one request at a time). Peak MiB: VmHWM of the "
        "server process tree when the row was measured (it only grows).", "",
        "## Workloads", "", *_table(results["workloads"], goals, with_sql=True),
    ]
    if "page_sizes" in results:
        lines += ["", "## W1 by page size", "", *_table(results["page_sizes"], {}, with_sql=False)]
    if "scale" in results:
        lines += ["", "## W1 by data size (patients)", "", *_table(results["scale"], {}, with_sql=False)]
    audit = []
    if "audit_verify" in results:
        v = results["audit_verify"]
        audit.append(f"- `careloop audit verify`: {v['events']:,} events in {v['seconds']:.1f}s, of which "
                     f"{v['start_up_seconds']:.1f}s start-up: **{v['events_per_s']:,.0f} events/s**")
    for w in results.get("audit_append", []):
        audit.append(f"- audit append to one institution's chain, {w['writers']} concurrent writer(s), one event "
                     f"per transaction: {w['events']:,} events in {w['seconds']:.1f}s: "
                     f"**{w['events_per_s']:,.0f} appends/s**"
                     + (f", {w['sealed_per_s']:,.0f}/s counting the time to seal what was left waiting"
                        if "sealed_per_s" in w else "")
                     + (f"; an event waited in the inbox before sealing at most {w['window_max_ms']:.0f} ms "
                        f"(p99 of 10-ms samples {w['window_p99_ms']:.0f} ms)" if "window_max_ms" in w else ""))
    if audit:
        lines += ["", "## Audit trail", "", *audit]
    return lines


def _campaign(by_database: dict, a: dict) -> list[str]:
    """C1's table: one row per database, then its transactions by the function that opened them."""
    head = ["database", "wall s (goal ≤ 60)", "settled/s", "sent (e-mail / SMS)", "refused by the gate",
            "longest transaction ms", "transactions", "longest logged call ms", "baseline s", "baseline settled/s",
            "ratio"]
    lines = [f"## C1 campaign to {a['recipients']:,} recipients (issue 13)", "",
             "careloop: campaignStart through the API, then the worker (campaign.advance, communication.deliver_due "
             "with the logging senders) until every message is settled; baseline: the same rows decided, rendered, "
             "sealed, logged and written in one transaction on the driver. Ratio = careloop / baseline messages "
             f"settled per second. A logged call every {a['campaign_probe_ms']:g} ms through the API meanwhile.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, r in by_database.items():
        c, b, t = r["careloop"], r["baseline"], r["careloop"]["transactions"]
        refused = ", ".join(f"{reason} {n:,}" for reason, n in sorted(c["refused"].items()))
        minute = "met" if r["minute_met"] else "NOT met"
        lines.append("| " + " | ".join([
            kind, f"**{c['wall_s']:.1f}** ({minute})", f"{c['settled_per_s']:,.0f}",
            f"{c['sent']:,} ({c['by_channel'].get('email', 0):,} / {c['by_channel'].get('sms', 0):,})", refused,
            f"**{t['longest_s'] * 1000:.0f}** ({t['longest_label']})", f"{t['count']}",
            f"{c['probe']['longest_ms']:.0f} (of {c['probe']['calls']})", f"{b['wall_s']:.1f}",
            f"{b['settled_per_s']:,.0f}", f"**{r['ratio']:.2f}**"]) + " |")
    for kind, r in by_database.items():
        c = r["careloop"]
        w = c["worker"]
        lines += ["", f"{kind} (load average {c['load_average'][0]:.1f} at the start, {c['load_average'][1]:.1f} at "
                  f"the end): {w['rounds']} worker rounds, {w['queueing_s']:.1f}s queueing (campaign.advance) "
                  f"and {w['delivering_s']:.1f}s delivering (communication.deliver_due); {c['statements']:,} SQL "
                  f"statements, {c['audit_rows']:,} audit rows, {c['sender_log_lines']:,} sender log lines; the "
                  f"preview of {c['preview']['audience']:,} patients took {c['preview_s']:.1f}s.", "",
                  "| transaction opened by | count | longest ms | median ms | total s |", "|---|---|---|---|---|"]
        for label, x in c["transactions"]["by_label"].items():
            lines.append(f"| {label} | {x['count']} | {x['longest_s'] * 1000:.0f} | {x['median_s'] * 1000:.0f} | "
                         f"{x['total_s']:.1f} |")
    return lines


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def ratios(results: dict) -> dict:
    """careloop / baseline for every measured pair: requests per second, latencies, peak memory."""
    out: dict[str, dict] = {}
    for group in ("workloads", "page_sizes", "scale"):
        for name, pair in results.get(group, {}).items():
            c, b = pair["careloop"], pair["baseline"]
            out.setdefault(group, {})[name] = {
                key: getattr(c, key) / getattr(b, key) if getattr(b, key) else None
                for key in ("rps", "p50_ms", "p99_ms", "peak_mib")}
    return out


def write(directory: str, stamp: datetime, meta: dict, results: dict, goals: dict[str, float]) -> tuple[Path, Path]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"{stamp:%Y%m%dT%H%M%SZ}"
    md, js = base.with_suffix(".md"), base.with_suffix(".json")
    md.write_text(markdown(meta, results, goals) + "\n")
    document = {"meta": meta, "goals": goals, "results": results, "ratios": ratios(results)}
    js.write_text(json.dumps(document, indent=2, default=_plain) + "\n")
    return md, js
