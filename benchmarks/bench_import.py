"""Benchmark: import a 100,000-row Pocket CSV export into a fresh store.

    /tmp/venv/bin/python benchmarks/bench_import.py [ROWS]

Generates the export in a temp dir (deterministic), then times
``read_export`` alone, ``import_export`` into a fresh store, a re-import
(everything unchanged), ``Store.items()`` and ``write_export`` to CSV.
Peak RSS is the whole process's high-water mark (``ru_maxrss``).
Targets: import ≤ 3 s, peak RSS ≤ 250 MiB. Memory in MiB (KiB / 1024).
"""

from __future__ import annotations

import compileall
import csv
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rulebot.library.export_reader import read_export
from rulebot.library.export_writer import write_export
from rulebot.library.importer import ImportResult, import_export
from rulebot.library.store import Store

TAGS = ["read-later", "js", "python", "rust", "longread", "video", "to-sort", "recipes"]
T = TypeVar("T")
DOMAINS = ["www.nytimes.com", "github.com", "blog.example.dev", "medium.com", "youtube.com"]


def fresh_bytecode() -> None:
    """Compile rulebot's modules now. A benchmark times rulebot as an
    installed copy runs, from bytecode; under PYTHONDONTWRITEBYTECODE an
    edited module's stale .pyc is never replaced, and every timed process
    would compile that module from source again (measured: 10 ms a process
    for five modules)."""
    import rulebot

    compileall.compile_dir(Path(rulebot.__file__).parent, quiet=1)


def make_export(path: Path, rows: int, *, tag_each: bool = False) -> None:
    """``rows`` rows drawn from a fixed seed; ``tag_each``: the same rows, each
    with one more tag of its own (``item-N``), so no two share their tags
    (the worst case for what caches tag lists)."""
    rng = random.Random(42)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["title", "url", "time_added", "tags", "status"])
        for n in range(rows):
            domain = rng.choice(DOMAINS)
            tags = "|".join(
                rng.sample(TAGS, rng.randint(0, 3)) + ([f"item-{n}"] if tag_each else [])
            )
            writer.writerow(
                [
                    f"Article {n}, about things \u2014 part {rng.randint(1, 9)}",
                    f"https://{domain}/posts/{n}-{rng.randint(0, 10**9)}",
                    1_650_000_000 + rng.randint(0, 140_000_000),
                    tags,
                    "unread" if rng.random() < 0.6 else "archive",
                ]
            )


def _counts(result: ImportResult) -> str:
    # Not str(result): it lists every change (100k lines).
    return f"{result.added:,} added, {result.updated:,} updated, {result.unchanged:,} unchanged"


def _blank(result: object) -> str:
    return ""


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    results: list[tuple[str, float, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "pocket-export.csv"
        make_export(export, rows)
        size_mib = export.stat().st_size / 2**20

        def timed(label: str, fn: Callable[[], T], note: Callable[[T], str] = _blank) -> T:
            start = time.perf_counter()
            result = fn()
            results.append((label, time.perf_counter() - start, note(result), peak_rss_mib()))
            return result

        with Store.open(Path(tmp) / "rulebot.db") as store:
            # First, so the peak RSS after it is the import's own.
            timed("import_export, fresh store", lambda: import_export(store, export), _counts)
            timed("read_export (parse only)", lambda: read_export(export), lambda r: f"{len(r):,}")
            timed("import_export, again", lambda: import_export(store, export), _counts)
            items = timed("Store.items()", store.items, lambda r: f"{len(r):,} items")
            timed("write_export .csv", lambda: write_export(items, Path(tmp) / "out.csv"))
    print(f"{rows:,}-row Pocket CSV export ({size_mib:.1f} MiB)")
    print(f"{'step':<28} {'seconds':>7} {'peak RSS':>9}  result")
    for label, seconds, note, rss in results:
        print(f"{label:<28} {seconds:>7.2f} {rss:>6.0f} MiB  {note}")
    print("(peak RSS is the process high-water mark so far: ru_maxrss)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
