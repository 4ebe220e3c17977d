"""What every fake's ``python -m rulebot.fake.NAME`` shares: the common
options, serving until Ctrl-C, and the shape of the seeded library."""

from __future__ import annotations

import argparse
import random
import re
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
    """``--seed N`` (pre-fill N ``what``), ``--latency S`` and the network
    (:func:`add_network`); see :func:`check_not_negative`."""
    parser.add_argument("--seed", type=int, default=0, metavar="N", help=f"pre-fill N {what}")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    add_network(parser)


def add_network(parser: argparse.ArgumentParser) -> None:
    """``--rtt MS`` and ``--bandwidth RATE``: the network between rulebot and
    the server, as ``FakeServer.rtt`` and ``.bandwidth`` model it; set them
    on the server with :func:`use_network`."""
    parser.add_argument(
        "--rtt",
        type=float,
        default=0.0,
        metavar="MS",
        help="milliseconds of round trip per request (one more on a new connection)",
    )
    parser.add_argument(
        "--bandwidth",
        type=bandwidth,
        default=None,
        metavar="RATE",
        help="bytes a second each way, shared by all connections: 1MiB, 500k, 20000",
    )


def use_network(server: FakeServer, args: argparse.Namespace) -> FakeServer:
    """``server`` behind the network ``--rtt``/``--bandwidth`` describe."""
    server.rtt = args.rtt / 1000
    server.bandwidth = args.bandwidth
    return server


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def bandwidth(text: str) -> float:
    """Bytes a second: a positive number, with k/M/G (powers of 1000) or
    KiB/MiB/GiB (of 1024) after it, and ``/s`` if you like."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([kmg](?:ib)?|)(?:/s)?\s*", text, re.I)
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a bandwidth: give bytes a second, such as 1MiB, 500k or 20000"
        )
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def check_not_negative(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.seed < 0 or args.latency < 0 or args.rtt < 0:
        parser.error("--seed, --latency and --rtt must not be negative")


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
