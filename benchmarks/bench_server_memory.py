"""Benchmark: a server source's first run beside the local first run (#28).

    python benchmarks/bench_server_memory.py [--items N,N] [--sources a,b]

For each size: the floor is the local first run (``rulebot run`` of
bench_plan.TWENTY on bench_import's generated library, freshly imported);
then, per source, its fake server is started in its OWN process
(``python -m rulebot.fake.NAME --seed N --port 0``, latency 0) and a first
``rulebot run`` (sync, plan, apply at ``concurrency`` 4) goes against it.
Every rulebot run is a fresh child process under GNU time; its peak RSS
(``%M``, KiB / 1024) is the rulebot process alone, never the fake's.

The fakes seed their own library (``--seed``); the floor's library is
bench_import's export of the same size. Both run the same two rules, which
every source can carry out: every item gains a tag, then every item with
it a second one, so a first run applies two actions per item (200,000 at
100,000 items) and the apply's actions grow with N. Readwise Reader and
Raindrop.io pace themselves to their documented rate limits (a 100k run
would take days): their fakes answer every request and the config raises
the limits, so the run goes at loopback speed like the others. The figures
printed are the ones docs/performance.md quotes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import fresh_bytecode, make_export
from bench_plan import NOW

SOURCES = [
    "pocket",
    "karakeep",
    "wallabag",
    "readeck",
    "shaarli",
    "linkding",
    "readwise",
    "raindrop",
]
RULES = """\
limits: {max_actions: 10000000, max_deletes: 10000000}
rules:
  - {name: s1, where: {not: {tag: bench-a}}, actions: [{tags_add: [bench-a]}]}
  - {name: s2, where: {tag: bench-a}, actions: [{tags_add: [bench-b]}]}
"""
# --one-rule: the first rule alone, one unit an item, so that on Raindrop.io
# every unit goes in bulk and its plan refinement marks every action
ONE_RULE = RULES.rsplit("  - {name: s2", 1)[0]
SEED = {"pocket": "--seed-items"}  # the option that pre-fills a fake (default --seed)
# limits a fake keeps as its service does, lifted: the run is about memory
FAKE_OPTIONS = {
    "readwise": ["--no-rate-limits"],
    "pocket": ["--user-limit", "1000000000", "--key-limit", "1000000000"],
}
# the config block's extra settings: paced sources at loopback speed
SETTINGS = {
    "readwise": "rate_limits: {list: 1000000, update: 1000000}",
    "raindrop": "rate_limits: {default: 1000000}",
}
RULEBOT = [sys.executable, "-m", "rulebot"]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one child process."""
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} … failed:\n{done.stderr[-2000:]}")
    return int(done.stderr.strip().splitlines()[-1]) / 1024, wall


def local_first_run(size: int, work: Path, rules: str = RULES) -> tuple[float, float]:
    export, store, config = work / "export.csv", work / "local.db", work / "local.yaml"
    make_export(export, size)
    config.write_text(f"version: 1\n{rules}")
    base = [*RULEBOT, "-c", str(config), "--store", str(store)]
    subprocess.run([*base, "-q", "import", str(export)], check=True, capture_output=True)
    return timed([*base, "run", "--now", NOW, "-q", "--format", "json"])


def server_first_run(source: str, size: int, work: Path, rules: str = RULES) -> tuple[float, float]:
    seed = [SEED.get(source, "--seed"), str(size), *FAKE_OPTIONS.get(source, [])]
    fake = subprocess.Popen(
        [sys.executable, "-m", f"rulebot.fake.{source}", "--port", "0", *seed],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert fake.stdout is not None
        base_url = fake.stdout.readline().split(" at ")[1].split()[0]
        env = dict(os.environ)
        for line in iter(fake.stdout.readline, ""):
            if not line.strip().startswith("export "):
                break
            name, _, value = line.strip().removeprefix("export ").partition("=")
            env[name] = value  # the fake's own demo credentials, passed on, never shown
        config = work / f"{source}.yaml"
        settings = ", ".join(["base_url: " + repr(base_url), SETTINGS.get(source, "")]).strip(", ")
        config.write_text(f"version: 1\n{source}: {{{settings}}}\n{rules}")
        store = work / f"{source}.db"
        argv = [*RULEBOT, "-c", str(config), "--store", str(store), "run", "--now", NOW, "-q"]
        return timed([*argv, "--format", "json"], env)
    finally:
        fake.terminate()
        fake.wait()


def main() -> None:
    fresh_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="25000,100000", help="sizes, comma-separated")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument(
        "--one-rule", action="store_true", help="the first rule alone: one action an item"
    )
    args = parser.parse_args()
    rules = ONE_RULE if args.one_rule else RULES
    sizes = [int(n) for n in args.items.split(",")]
    sources = [s for s in args.sources.split(",") if s]
    print(
        f"{'source':<10} {'items':>8} {'peak MiB':>9} {'floor MiB':>10} {'ratio':>6} {'wall s':>7}"
    )
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            floor, wall = local_first_run(size, Path(tmp), rules)
            print(f"{'local':<10} {size:>8} {floor:>9.1f} {floor:>10.1f} {1:>6.2f} {wall:>7.1f}")
            for source in sources:
                peak, wall = server_first_run(source, size, Path(tmp), rules)
                ratio = peak / floor
                print(
                    f"{source:<10} {size:>8} {peak:>9.1f} {floor:>10.1f} {ratio:>6.2f} {wall:>7.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
