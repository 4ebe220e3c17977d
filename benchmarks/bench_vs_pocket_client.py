"""rulebot against a plain Pocket client: requests and wall time, side by side.

For each library size, two identical fake Pocket servers (``FakePocket`` on
127.0.0.1, seeded with the same reproducible library, a per-request latency
added with the fake's ``slow`` fault) run the same three jobs:

- a full sync (rulebot's first ``sync``; the plain script's fetch-everything),
- an idle run (nothing changed, nothing to do),
- a run with N archive actions (the oldest N unread items),

once by rulebot (the real CLI, in process) and once by
``benchmarks/plain_pocket_client.py``, the `pocket` PyPI client used the way a
user would without rulebot: fetch the whole list every run, then act. It runs
in its own venv (``pocket`` is not a rulebot dependency)::

    python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install pocket
    /tmp/venv/bin/python benchmarks/bench_vs_pocket_client.py \\
        [--items 1000 10000] [--actions 100] [--latency-ms 20] \\
        [--plain-python /tmp/bench-venv/bin/python]

Prints one Markdown table. "floor" is the fewest requests the job can take
(⌈items/page⌉+1 gets for a full sync, one get when idle, ⌈actions/batch⌉
sends); the plain client's seconds are measured inside its process
(interpreter start and ``import requests`` excluded, as for rulebot).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rulebot.cli import main as rulebot
from rulebot.fakepocket import FakePocket, seed

HERE = Path(__file__).resolve().parent
PLAIN = HERE / "plain_pocket_client.py"
sys.path.insert(0, str(HERE))
from bench_requests import write_config  # noqa: E402  (the same jobs as the request benchmark)


@dataclass
class Measured:
    requests: int
    seconds: float


def by_rulebot(server: FakePocket, *args: str) -> Measured:
    before = server.calls()
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = rulebot(["-q", *args])
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"rulebot {' '.join(args)}: exit {code}")
    return Measured(server.calls() - before, seconds)


def by_plain(python: str, server: FakePocket, job: str, *extra: str) -> Measured:
    before = server.calls()
    done = subprocess.run(
        [python, str(PLAIN), server.base_url, job, *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"plain client {job}: exit {done.returncode}\n{done.stderr}")
    report = json.loads(done.stdout)
    return Measured(server.calls() - before, report["seconds"])


def ratio(plain: float, ours: float) -> str:
    return f"{plain / ours:.1f}×" if ours else "—"


def bench_size(args: argparse.Namespace, items: int) -> list[str]:
    page, batch = args.page_size, args.batch_size
    rows: list[str] = []
    with (
        tempfile.TemporaryDirectory() as workdir,
        FakePocket(user_limit=10**9, key_limit=10**9) as ours,
        FakePocket(user_limit=10**9, key_limit=10**9) as theirs,
    ):
        for server in (ours, theirs):
            seed(server, items)
            if args.latency_ms:
                server.inject("slow", 10**9, seconds=args.latency_ms / 1000)
        unread = sum(1 for item in ours.items.values() if item["status"] == "0")
        actions = min(args.actions, unread)
        config = write_config(ours, Path(workdir), page, batch, actions)
        c = ("-c", str(config))
        paging = ("--page-size", str(page))
        gets = math.ceil(items / page) + 1
        sends = math.ceil(actions / batch)
        jobs = [
            (
                "full sync",
                f"{gets} gets",
                lambda: by_rulebot(ours, "sync", *c),
                lambda: by_plain(args.plain_python, theirs, "fetch", *paging),
            ),
            (
                "idle run",
                "1 get",
                lambda: by_rulebot(ours, "run", "--rule", "idle", *c),
                lambda: by_plain(args.plain_python, theirs, "fetch", *paging),
            ),
            (
                f"{actions}-action run (plain: one `commit()`)",
                f"1 get + {sends} sends",
                lambda: by_rulebot(ours, "run", "--rule", "archive-oldest", *c),
                lambda: by_plain(
                    args.plain_python, theirs, "archive", "--actions", str(actions), *paging
                ),
            ),
            (
                f"{actions}-action run (plain: one send per action)",
                f"1 get + {sends} sends",
                None,  # rulebot's figures are the row above
                lambda: by_plain(
                    args.plain_python,
                    theirs,
                    "archive",
                    "--actions",
                    str(actions),
                    "--per-action",
                    *paging,
                ),
            ),
        ]
        last: Measured | None = None
        for label, floor, run_ours, run_theirs in jobs:
            mine = run_ours() if run_ours is not None else last
            assert mine is not None
            plain = run_theirs()
            last = mine
            rows.append(
                f"| {items:,} | {label} | {floor} | {mine.requests} | {mine.seconds:.2f} | "
                f"{plain.requests} | {plain.seconds:.2f} | "
                f"{ratio(plain.requests, mine.requests)} | {ratio(plain.seconds, mine.seconds)} |"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every request")
    parser.add_argument("--plain-python", default="/tmp/bench-venv/bin/python")
    args = parser.parse_args(argv)
    probe = subprocess.run(
        [args.plain_python, "-c", "import pocket"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        print(
            f"{args.plain_python} cannot import `pocket`; create the venv first:\n"
            "  python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install pocket",
            file=sys.stderr,
        )
        return 1
    print(
        f"page_size {args.page_size}, batch_size {args.batch_size}, "
        f"latency {args.latency_ms:g} ms per request\n"
    )
    print(
        "| items | job | floor | rulebot requests | rulebot s | plain requests | plain s "
        "| requests ratio | time ratio |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for items in args.items:
        for row in bench_size(args, items):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
