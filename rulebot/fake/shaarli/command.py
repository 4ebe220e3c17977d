"""``python -m rulebot.fake.shaarli``: a seeded fake Shaarli until Ctrl-C."""

from __future__ import annotations

import os
import random

from rulebot.fake.cli import (
    SEED_TAGS,
    add_seed_and_latency,
    check_not_negative,
    new_parser,
    seed_posts,
    serve,
    use_network,
)
from rulebot.fake.shaarli.server import DEFAULT_SECRET, FakeShaarli


def seed(server: FakeShaarli, count: int, *, rng: random.Random | None = None) -> list[int]:
    """Fill ``server`` with ``count`` varied, reproducible links (the same
    draws as ``rulebot.fake.real_shaarli.seed``); returns their ids."""
    rng = rng or random.Random(20250708)
    ids = []
    for number, site, added in seed_posts(server.now, count, rng):
        tags = rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2)))
        ids.append(
            server.add_link(
                f"https://{site}/post/{number}",
                f"Post {number} on {site}",
                tags=tags,
                private=rng.random() < 0.2,
                created=added,
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(
        "shaarli",
        "Run a fake Shaarli server (REST API v1 under /api/v1) to try rules safely.",
        port=8090,
    )
    parser.add_argument(
        "--secret",
        default=None,
        help="the REST API secret clients sign with "
        "(default: $SHAARLI_API_SECRET, else a built-in test secret)",
    )
    add_seed_and_latency(parser, "links")
    args = parser.parse_args(argv)
    check_not_negative(parser, args)
    secret = args.secret or os.environ.get("SHAARLI_API_SECRET") or DEFAULT_SECRET
    server = FakeShaarli(host=args.host, port=args.port, secret=secret, latency=args.latency)
    use_network(server, args)
    seed(server, args.seed)

    # never echo a secret the user chose
    exports = {"SHAARLI_API_SECRET": secret} if secret == DEFAULT_SECRET else {}
    return serve(server, "Shaarli", f"{args.seed} links", exports)
