"""Requests and wall time of the Readeck source against the fake Readeck.

Runs the real CLI (in process) against ``FakeReadeck`` on 127.0.0.1 and
prints one Markdown table:

- the first sync of N bookmarks: ⌈N/page_size⌉ list requests;
- an idle scheduled run afterwards: exactly 1 request (the change feed);
- a run after C bookmarks changed elsewhere: 1 feed request + ⌈C/page_size⌉ fetches;
- a start with no rule due: no request at all.

    .venv/bin/python benchmarks/bench_readeck.py [--bookmarks 1000] [--changed 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import tempfile
import time

from rulebot.cli import main as rulebot
from rulebot.fake.readeck import FakeReadeck

TOKEN = "rdk_bench0000000000000000000000000000000000"
# the rule is due again each morning; a start in between finds nothing due
MORNINGS = ("2026-11-26T06:00:00Z", "2026-11-27T06:00:00Z", "2026-11-28T06:00:00Z")
T = 1_795_672_800
RULES = (
    "rules:\n  - name: idle\n    schedule: '0 6 * * *'\n    where: {tag: nope}\n"
    "    actions: [archive]\n"
)


def quiet(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return rulebot(["-q", *args])


def measure(server: FakeReadeck, *args: str) -> tuple[int, float]:
    before, started = server.calls(), time.perf_counter()
    assert quiet(*args) == 0
    return server.calls() - before, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookmarks", type=int, default=1000)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    os.environ["READECK_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as tmp, FakeReadeck(now=T, token=TOKEN) as server:
        os.chdir(tmp)
        ids = [
            server.add_bookmark(
                f"https://bench.example/{i}", f"Bookmark {i}", created=T - 86400 - i
            )
            for i in range(args.bookmarks)
        ]
        with open("rules.yaml", "w") as config:
            config.write(
                f"version: 1\nreadeck: {{base_url: '{server.base_url}', "
                f"page_size: {args.page_size}}}\n{RULES}"
            )
        rows = [
            ("first sync", *measure(server, "sync"), math.ceil(args.bookmarks / args.page_size))
        ]
        first, second, third = (("run", "--due", "--now", now) for now in MORNINGS)
        rows.append(("idle scheduled run", *measure(server, *first), 1))
        # changed a second before the next run: a sync in the very second of a
        # change cannot tell whether that second is over, and reads it again
        server.now = T + 59
        for bookmark_id in ids[: args.changed]:
            server.touch(bookmark_id, labels=["changed"])
        server.now = T + 60
        expected = 1 + math.ceil(args.changed / args.page_size)
        rows.append((f"run after {args.changed} changed", *measure(server, *second), expected))
        rows.append(("idle again", *measure(server, *third), 1))
        not_due = ("run", "--due", "--now", "2026-11-28T09:00:00Z")
        rows.append(("start with no rule due", *measure(server, *not_due), 0))
    print(f"Readeck, {args.bookmarks} bookmarks, page_size {args.page_size}\n")
    print("| run | requests | expected | wall |")
    print("|---|---:|---:|---:|")
    for name, requests, wall, expected in rows:
        print(f"| {name} | {requests} | {expected} | {wall * 1000:.0f} ms |")
        assert requests == expected, (name, requests, expected)


if __name__ == "__main__":
    main()
