"""The two servers as real processes on 127.0.0.1, their peak memory, and wrk against them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import httpx

from bench.workloads import LUA, Request

ROOT = Path(__file__).resolve().parent.parent
# Both servers on one HTTP stack, as a production deployment runs: uvicorn with uvloop and httptools
# (`careloop serve` pins the same two; they are careloop's dependencies).
HTTP_STACK = {"loop": "uvloop", "http": "httptools"}
HTTP_STACK_VERSIONS = {name: metadata.version(name) for name in ("uvicorn", "uvloop", "httptools")}
WRK = shutil.which("wrk") or "/usr/bin/wrk"  # make bench installs it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        fd, path = tempfile.mkstemp(prefix=f"bench-{self.name}-", suffix=".log")
        self.log = Path(path)
        self.process = subprocess.Popen(  # noqa: S603 -- our own interpreter and arguments
            [*self.command, "--port", str(self.port)], cwd=ROOT, env=self.env, stdout=fd, stderr=fd,
            start_new_session=True)
        os.close(fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /healthz within {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server's process group (it was started in a session of its own); if it had died,
        show the end of its log."""
        if self.process is not None and self.process.poll() is not None and self.log is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
            print(f"*** {self.name} had exited with {self.process.returncode}; its log ends:\n{tail}", file=sys.stderr)
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self.log is not None:
            self.log.unlink(missing_ok=True)

    def peak_memory_mib(self) -> float:
        """VmHWM of the server process and its children, summed, in MiB."""
        assert self.process is not None
        return sum(_vm_hwm_kib(pid) for pid in _tree(self.process.pid)) / 1024

    def post(self, request: Request, token: str | None) -> dict:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        answer = httpx.post(self.url + "/graphql", content=request.body, headers=headers, timeout=30)
        answer.raise_for_status()
        return answer.json()


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            pids.extend(_tree(int(child)))
    return pids


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def careloop(env: dict[str, str], workers: int = 1) -> Server:
    return Server("careloop", [sys.executable, "-m", "app.cli", "serve", "--workers", str(workers)], env)


def baseline(env: dict[str, str], workers: int = 1) -> Server:
    return Server("baseline", [sys.executable, "-m", "bench.baseline", "--workers", str(workers)], env)


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-200 answers, GraphQL errors and socket errors


def wrk(server: Server, request: Request, token: str | None, *, seconds: float, connections: int,
        threads: int) -> WrkResult:
    with tempfile.NamedTemporaryFile(suffix=".json") as body, tempfile.NamedTemporaryFile(suffix=".jsonl") as turns:
        body.write(request.body)
        body.flush()
        bodies = request.bodies
        if len(bodies) > 1:  # sent in turn (post.lua): one JSON body a line
            turns.write(b"\n".join(bodies) + b"\n")
            turns.flush()
        env = {**os.environ, "BENCH_BODY": body.name, "BENCH_TOKEN": token or "",
               "BENCH_BODIES": turns.name if len(bodies) > 1 else ""}
        command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA),
                   server.url + "/graphql"]
        done = subprocess.run(  # noqa: S603 -- fixed arguments, 127.0.0.1 only
            command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk against {server.name} exited with {done.returncode}:\n{done.stdout}{done.stderr}")
    r = json.loads(line.removeprefix("BENCH "))
    return WrkResult(rps=r["requests"] / (r["duration_us"] / 1e6), p50_ms=r["p50_us"] / 1000,
                     p99_ms=r["p99_us"] / 1000, requests=r["requests"], bad=r["bad"] + r["socket_errors"])
