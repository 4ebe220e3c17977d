"""Requests and wall time of the Wallabag source against the fake Wallabag.

Runs the real CLI (in process) against ``FakeWallabag`` on 127.0.0.1 (OAuth2
included: every run asks for one access token) and prints two Markdown
tables, asserting each request count:

- syncs on N entries: the first sync (a full scan), an idle scheduled run
  with no full scan due (token + one ``since`` query: 2 requests), a start
  with no rule due (no request at all), the same
  run when ``full_scan_every`` has passed, and ``sync --full`` at two page
  sizes: token + ⌈N/page_size⌉ pages;
- T of the N entries gaining a tag, with a per-answer latency: through the
  bulk ``POST /api/entries/tags/lists`` (ten entries per request) and one
  ``POST /api/entries/{id}/tags`` per entry (the bulk path switched off).

    .venv/bin/python benchmarks/bench_wallabag.py [--entries 1000] [--tagged 100] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rulebot.cli import main as rulebot
from rulebot.fake.wallabag import FakeWallabag
from rulebot.library.store import Store
from rulebot.sources.wallabag import source as wallabag

NOW = "2026-11-26T06:00:00Z"
T = 1_795_672_800
DAY = 86400
BULK = 10  # the mass-action limit rulebot keeps to
IDLE_RULES = (
    "rules:\n  - name: idle\n    schedule: '0 6 * * *'\n    where: {tag: nope}\n"
    "    actions: [archive]\n"
)
TAG_RULES = "rules:\n  - name: todo\n    where: {tag: inbox}\n    actions: [{tags_add: [todo]}]\n"

Row = tuple[str, int, float, str, int]  # what, requests, seconds, expected as text, expected


def quiet(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return rulebot(["-q", *args])


def measure(server: FakeWallabag, *args: str) -> tuple[int, float]:
    before, started = server.calls(), time.perf_counter()
    assert quiet(*args) == 0, args
    return server.calls() - before, time.perf_counter() - started


@contextlib.contextmanager
def library(entries: int, tagged: int = 0) -> Iterator[FakeWallabag]:
    """A fake with ``entries`` entries (the first ``tagged`` tagged inbox), in a
    fresh working directory whose store is empty."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, FakeWallabag(now=T) as server:
        os.chdir(tmp)
        try:
            os.environ.update(server.env)
            for n in range(entries):
                server.add_entry(
                    f"https://bench.example/{n}",
                    f"Entry {n}",
                    tags=["inbox"] if n < tagged else [],
                    created_at=T - DAY - n,
                )
            yield server
        finally:
            os.chdir(here)


def configure(server: FakeWallabag, rules: str, **settings: object) -> None:
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    Path("rules.yaml").write_text(
        f"version: 1\nwallabag: {{base_url: '{server.base_url}'{extra}}}\n"
        f"limits: {{max_actions: 100000}}\n{rules}"
    )


def backdate_full_scan(days: int) -> None:
    """Make the last full scan ``days`` old, as if that much time had passed."""
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        last = int(store.get_meta(wallabag.FULL_SCAN_KEY) or 0)
        store.set_meta(wallabag.FULL_SCAN_KEY, str(last - days * DAY))


def syncs(entries: int) -> list[Row]:
    """The sync costs on one library, in the order a user meets them."""
    pages, small = math.ceil(entries / 500), math.ceil(entries / 100)
    full, idle = (f"1 + ⌈{entries}/500⌉", 1 + pages), ("1 + 1", 2)
    # the rule is due each morning (a start in between finds nothing due)
    day1, day2, day3 = (("run", "--due", "--now", f"2026-11-2{d}T06:00:00Z") for d in (6, 7, 8))
    with library(entries) as server:
        configure(server, IDLE_RULES)
        rows: list[Row] = [("first sync (a full scan)", *measure(server, "sync"), *full)]
        rows.append(("idle scheduled run, no full scan due", *measure(server, *day1), *idle))
        rows.append(("idle again", *measure(server, *day2), *idle))
        not_due = ("run", "--due", "--now", "2026-11-27T09:00:00Z")
        rows.append(("start with no rule due", *measure(server, *not_due), "0", 0))
        backdate_full_scan(7)
        rows.append(("scheduled run, full scan due (7d)", *measure(server, *day3), *full))
        rows.append(("`sync --full`", *measure(server, "sync", "--full"), *full))
        configure(server, IDLE_RULES, page_size=100)
        rows.append(
            (
                "`sync --full`, `page_size: 100`",
                *measure(server, "sync", "--full"),
                f"1 + ⌈{entries}/100⌉",
                1 + small,
            )
        )
    return rows


def tagging(entries: int, tagged: int, latency: float, bulk: bool) -> tuple[int, int, float]:
    """(requests of the run, of which tag requests, wall seconds)."""
    with library(entries, tagged) as server:
        configure(server, TAG_RULES)
        assert quiet("sync") == 0
        server.latency = latency
        original = wallabag.BulkTags.accepts
        if not bulk:  # what the run would cost without the bulk endpoint
            wallabag.BulkTags.accepts = lambda self, unit, current: False  # type: ignore[method-assign]
        try:
            sent, wall = measure(server, "run", "--now", NOW)
        finally:
            wallabag.BulkTags.accepts = original  # type: ignore[method-assign]
        tags = server.calls("POST /api/entries/tags/lists") + server.calls(
            "POST /api/entries/{id}/tags"
        )
        labelled = [e for e in server.entries.values() if "todo" in {t["label"] for t in e["tags"]}]
        assert len(labelled) == tagged
        return sent, tags, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--tagged", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    rows = syncs(args.entries)
    bulk = tagging(args.entries, args.tagged, latency, bulk=True)
    single = tagging(args.entries, args.tagged, latency, bulk=False)

    print(f"Wallabag, {args.entries} entries, fake server on 127.0.0.1\n")
    print("| run | requests | expected | wall |")
    print("|---|---:|---:|---:|")
    for what, sent, wall, text, want in rows:
        print(f"| {what} | {sent} | {text} = {want} | {wall * 1000:.0f} ms |")
        assert sent == want, (what, sent, want)

    print(
        f"\n{args.tagged} of {args.entries} entries gain a tag, "
        f"{args.latency_ms:g} ms per answer, concurrency 4\n"
    )
    print("| how | requests | tag requests | expected tag requests | wall |")
    print("|---|---:|---:|---:|---:|")
    for how, (sent, tags, wall), want in (
        (
            f"bulk `POST /entries/tags/lists`, {BULK} per request",
            bulk,
            math.ceil(args.tagged / BULK),
        ),
        ("one `POST /entries/{id}/tags` per entry", single, args.tagged),
    ):
        print(f"| {how} | {sent} | {tags} | {want} | {wall:.2f} s |")
        assert tags == want and sent == 2 + want, (how, sent, tags, want)
    print(
        f"\nthe bulk path takes {bulk[0] / single[0]:.2f}× the requests "
        f"and {bulk[2] / single[2]:.2f}× the time"
    )


if __name__ == "__main__":
    main()
