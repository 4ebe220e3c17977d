"""Every figure docs/performance.md quotes, next to its floor, in one command.

    .venv/bin/python benchmarks/run.py             (about 100 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --large     (adds 1,000,000 items: +15 minutes)
    .venv/bin/python benchmarks/run.py --only floors startup

Runs each benchmark below as its own process, one after another (never two
at once: each takes turns with its floor, and a second benchmark would be
load on both), and prints each one's output under a heading naming the
command that reproduces it alone. Time is wall clock; memory is peak RSS
in MiB (KiB from ``ru_maxrss`` or GNU time's ``%M``, divided by 1024).
Run it on a quiet machine: the figures are ratios of paired runs, but a
busy machine still widens their spread.

The comparison with the ``pocket`` client from PyPI needs that client in a
venv of its own (it is no dependency of rulebot's); this script makes one
under ``$XDG_CACHE_HOME/rulebot-bench`` the first time (PyPI must be
reachable), or says why it cannot and goes on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
# sources whose units are one request (or a batch): 25k items in minutes; Shaarli's
# and Linkding's tag edits are two requests a unit, so they run at 10k
ONE_REQUEST = "pocket,karakeep,wallabag,readeck,readwise,raindrop"
SWEEP = ["--units", "1000", "--concurrency", "1,2,4,8,16"]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rulebot-bench"


def pocket_client_python() -> str | None:
    """A python with the ``pocket`` client installed, made once; None if it cannot be."""
    venv = CACHE / "pocket-client"
    python = venv / "bin" / "python"
    if python.exists():
        return str(python)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "pocket==0.3.6", "requests"], check=True
        )
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"(cannot make the pocket client's venv in {venv}: {err})")
        return None
    return str(python)


def benchmarks(large: bool) -> dict[str, list[list[str]]]:
    """Name -> the argv of each run (each a script of this directory and its options)."""
    floors = [["bench_floors.py", "100000"]]
    if large:
        floors.append(["bench_floors.py", "1000000"])
    return {
        "floors": floors,
        "steady-parts": [["bench_steady_parts.py", "100000"]],
        "import": [["bench_import.py", "100000"]],
        "items": [["bench_items.py"]],
        "startup": [["bench_startup.py"]],
        "pocket": [
            ["bench_requests.py"],
            ["bench_requests.py", "--latency-ms", "50"],
        ],
        "karakeep": [["bench_karakeep.py", "--bookmarks", "1000", "--latency-ms", "20"]],
        "readeck": [["bench_readeck.py", "--bookmarks", "1000", "--changed", "10"]],
        "wallabag": [
            ["bench_wallabag.py", "--entries", "1000", "--tagged", "100", "--latency-ms", "20"]
        ],
        "vs-pocket-client": [["bench_vs_pocket_client.py", "--items", "1000", "10000"]],
        "network": [
            ["bench_network.py"],
            ["bench_network.py", "--sources", "karakeep,linkding", *SWEEP],
            ["bench_network.py", "--scan", "10000", "--bandwidth", "1MiB"],
        ],
        "server-memory": [
            ["bench_server_memory.py", "--items", "25000", "--sources", ONE_REQUEST],
            ["bench_server_memory.py", "--items", "10000", "--sources", "shaarli,linkding"],
            ["bench_server_memory.py", "--items", "100000", "--sources", "karakeep,raindrop"],
            [
                "bench_server_memory.py",
                "--items",
                "25000,100000",
                "--sources",
                "raindrop",
                "--one-rule",
            ],
        ],
    }


def main() -> int:
    every = benchmarks(large=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="also 1,000,000 items")
    parser.add_argument("--only", nargs="+", choices=sorted(every), metavar="NAME")
    args = parser.parse_args()
    failed = []
    for name, runs in benchmarks(args.large).items():
        if args.only and name not in args.only:
            continue
        for script, *options in runs:
            if name == "vs-pocket-client":
                plain = pocket_client_python()
                if plain is None:
                    failed.append(name)
                    continue
                options = [*options, "--plain-python", plain]
            shown = " ".join(["benchmarks/" + script, *options])
            print(f"\n## {name}: .venv/bin/python {shown}\n", flush=True)
            start = time.perf_counter()
            done = subprocess.run([PYTHON, str(HERE / script), *options], check=False)
            print(f"({time.perf_counter() - start:.0f} s)", flush=True)
            if done.returncode != 0:
                failed.append(shown)
    if failed:
        print("\nfailed: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
