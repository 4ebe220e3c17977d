"""Requests and wall time of Pocket mode against the fake server.

Runs the real CLI (in process) against ``FakePocket`` on 127.0.0.1 holding a
seeded library, optionally with a per-request latency (the fake's ``slow``
fault on every request), and prints one Markdown table: requests made,
the floor they are compared to, and wall time per step.

    /tmp/venv/bin/python benchmarks/bench_requests.py [--items 1000]
        [--actions 100] [--page-size 30] [--batch-size 30] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from rulebot.cli import main as rulebot
from rulebot.fakepocket import FakePocket, seed

RULES = """\
rules:
  - name: idle
    where: {{tag: no-such-tag}}
    actions: [archive]
  - name: archive-oldest
    where: {{status: unread}}
    limit: {actions}
    actions: [archive]
"""


def write_config(server: FakePocket, workdir: Path, page: int, batch: int, actions: int) -> Path:
    """The benchmark's rules file for ``server``; its credentials go in the env."""
    os.environ["POCKET_CONSUMER_KEY"] = server.consumer_key
    os.environ["POCKET_ACCESS_TOKEN"] = server.access_token
    config = workdir / "rules.yaml"
    config.write_text(
        "version: 1\n"
        f"pocket: {{base_url: '{server.base_url}', page_size: {page}, batch_size: {batch}}}\n"
        f"limits: {{max_actions: {actions}}}\n" + RULES.format(actions=actions),
        encoding="utf-8",
    )
    return config


def run(server: FakePocket, *args: str) -> tuple[int, int, float]:
    """(exit code, requests, seconds) of one CLI invocation."""
    before = server.calls()
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = rulebot(["-q", *args])
    return code, server.calls() - before, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir, FakePocket(user_limit=10**9) as server:
        seed(server, args.items)
        unread = sum(1 for item in server.items.values() if item["status"] == "0")
        actions = min(args.actions, unread)
        if args.latency_ms:
            server.inject("slow", 10**9, seconds=args.latency_ms / 1000)
        config = write_config(server, Path(workdir), args.page_size, args.batch_size, actions)
        c = ("-c", str(config))
        pages = math.ceil(args.items / args.page_size) + 1
        changed_pages = math.ceil(actions / args.page_size) + 1
        batches = math.ceil(actions / args.batch_size)
        steps = [
            (f"full sync of {args.items} items", ("sync", *c), f"{pages} gets"),
            ("idle run (nothing changed, nothing to do)", ("run", "--rule", "idle", *c), "1 get"),
            (
                f"run with {actions} actions",
                ("run", "--rule", "archive-oldest", *c),
                f"1 get + {batches} sends",
            ),
            (
                "the next run (syncs those changes back)",
                ("run", "--rule", "idle", *c),
                f"{changed_pages} gets",
            ),
        ]
        print(
            f"{args.items} items, page_size {args.page_size}, batch_size {args.batch_size}, "
            f"latency {args.latency_ms:g} ms per request\n"
        )
        print("| step | requests | floor | seconds |")
        print("|---|---:|---|---:|")
        for label, command, floor in steps:
            code, requests, seconds = run(server, *command)
            if code != 0:
                print(f"{label}: exit {code}", file=sys.stderr)
                return 1
            print(f"| {label} | {requests} | {floor} | {seconds:.2f} |")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
