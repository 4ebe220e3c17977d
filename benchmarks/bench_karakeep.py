"""Requests and wall time of the Karakeep source against the fake Karakeep.

Runs the real CLI (in process) against ``FakeKarakeep`` on 127.0.0.1 and
prints one Markdown table:

- an idle scheduled run on N bookmarks: list requests only (⌈N/100⌉), and
  a start later that day, with no rule due: no request at all;
- a run applying one action to each of N bookmarks, with a per-answer
  latency (a server across a network), at ``concurrency`` 1 and 4: wall
  time, requests, and the speed-up.

    .venv/bin/python benchmarks/bench_karakeep.py [--bookmarks 1000] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import tempfile
import time
from pathlib import Path

from rulebot.cli import main as rulebot
from rulebot.fake.karakeep import FakeKarakeep

KEY = "ak2_bench0000000000000000_bench000000000000000000000000000"
NOW = "2026-11-26T06:00:00Z"
LATER = "2026-11-26T09:00:00Z"  # the same day: the daily rule is not due
T = 1_795_672_800


def quiet(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return rulebot(["-q", *args])


def fill(server: FakeKarakeep, n: int) -> None:
    for i in range(n):
        server.add_bookmark(f"https://bench.example/{i}", f"Bookmark {i}", created_at=T - i)


def configure(server: FakeKarakeep, workdir: Path, rules: str, concurrency: int = 4) -> None:
    (workdir / "rules.yaml").write_text(
        f"version: 1\nkarakeep: {{base_url: '{server.base_url}', concurrency: {concurrency}}}\n"
        f"limits: {{max_actions: 100000}}\n{rules}"
    )


def idle(n: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp, FakeKarakeep(now=T, api_key=KEY) as server:
        os.chdir(tmp)
        fill(server, n)
        configure(
            server,
            Path(tmp),
            "rules:\n  - name: idle\n    schedule: '0 6 * * *'\n    where: {tag: nope}\n"
            "    actions: [archive]\n",
        )
        started = time.perf_counter()
        assert quiet("run", "--due", "--now", NOW) == 0
        wall = time.perf_counter() - started
        listed = server.calls()
        assert quiet("run", "--due", "--now", LATER) == 0  # not due again yet: no request
        assert server.calls() == listed, server.calls() - listed
        return listed, wall


def apply_all(n: int, latency: float, concurrency: int) -> tuple[int, int, float]:
    """(requests while applying, requests in all, wall seconds of the run)."""
    with tempfile.TemporaryDirectory() as tmp, FakeKarakeep(now=T, api_key=KEY) as server:
        os.chdir(tmp)
        fill(server, n)
        configure(
            server,
            Path(tmp),
            "rules:\n  - name: archive-all\n    where: {status: unread}\n    actions: [archive]\n",
            concurrency,
        )
        server.latency = latency
        started = time.perf_counter()
        assert quiet("run", "--now", NOW) == 0
        wall = time.perf_counter() - started
        listing = server.calls("GET /bookmarks")
        return server.calls() - listing, server.calls(), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookmarks", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    os.environ["KARAKEEP_API_KEY"] = KEY
    here = os.getcwd()
    n, latency = args.bookmarks, args.latency_ms / 1000
    try:
        idle_requests, idle_wall = idle(n)
        one = apply_all(n, latency, 1)
        four = apply_all(n, latency, 4)
    finally:
        os.chdir(here)
    print(f"Karakeep source, {n} bookmarks, fake server on 127.0.0.1\n")
    print("| run | requests | floor | wall |")
    print("|---|---:|---:|---:|")
    print(f"| idle scheduled run | {idle_requests} | {math.ceil(n / 100)} | {idle_wall:.2f} s |")
    print("| start with no rule due | 0 | 0 | - |")
    for label, (sent, total, wall) in (("concurrency 1", one), ("concurrency 4", four)):
        print(
            f"| {n} archives, {args.latency_ms:g} ms latency, {label} | {total} "
            f"({sent} to apply) | {n} to apply | {wall:.2f} s |"
        )
    print(f"\nconcurrency 4 takes {four[2] / one[2]:.2f}× the time of concurrency 1")


if __name__ == "__main__":
    main()
