"""What every fake's ``python -m rulebot.fake.NAME`` shares: the common
options, serving until Ctrl-C, and the shape of the seeded library."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TextIO

from rulebot.fake.base import FakeServer

DAY = 86400
SEED_SITES = ("example.com", "blog.example.org", "news.example.net", "www.video.example")
SEED_TAGS = ("read-later", "js", "python", "news", "recipes", "work", "long-read")


def new_parser(name: str, description: str, *, port: int) -> argparse.ArgumentParser:
    """A parser with ``--host`` and ``--port`` (``port`` by default; 0 picks a free one)."""
    parser = argparse.ArgumentParser(prog=f"python -m rulebot.fake.{name}", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
    return parser


def add_seed_and_latency(parser: argparse.ArgumentParser, what: str) -> None:
    """``--seed N`` (pre-fill N ``what``) and ``--latency S``; see :func:`check_not_negative`."""
    parser.add_argument("--seed", type=int, default=0, metavar="N", help=f"pre-fill N {what}")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")


def check_not_negative(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.seed < 0 or args.latency < 0:
        parser.error("--seed and --latency must not be negative")


def serve(
    server: FakeServer,
    service: str,
    seeded: str,
    exports: Mapping[str, str],
    *,
    note: str = "(Ctrl-C stops the server; nothing is saved)",
    error_prefix: str = "error",
    errors_to: TextIO | None = None,
) -> int:
    """Start ``server`` and serve until Ctrl-C, after a banner: where the
    ``service`` is and what it holds (``seeded``), the ``export`` lines of
    ``exports`` (give only values it is safe to print), and ``note``, where
    ``{base_url}`` is the server's address. 1 when it cannot listen
    (``error_prefix: cannot listen on HOST:PORT: why`` on ``errors_to``,
    stderr by default), else 0."""
    try:
        server.start()
    except OSError as err:
        where = f"{server.host}:{server.port}"
        why = err.strerror or err
        print(f"{error_prefix}: cannot listen on {where}: {why}", file=errors_to or sys.stderr)
        return 1
    print(f"fake {service} server at {server.base_url} with {seeded}", flush=True)
    for name, value in exports.items():
        print(f"  export {name}={value}", flush=True)
    print("  " + note.format(base_url=server.base_url), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def seed_posts(now: int, count: int, rng: random.Random) -> Iterator[tuple[int, str, int]]:
    """``count`` posts (number, site, added) spread over the 400 days before
    ``now``; the caller draws the rest of each item from the same ``rng``, so
    a seed stays reproducible."""
    start = now - 400 * DAY
    for number in range(count):
        site = rng.choice(SEED_SITES)
        yield number, site, start + rng.randrange(400 * DAY)
