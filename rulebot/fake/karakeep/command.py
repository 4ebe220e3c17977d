"""``python -m rulebot.fake.karakeep``: a seeded fake Karakeep server until Ctrl-C."""

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
from rulebot.fake.karakeep.server import DEFAULT_API_KEY, FakeKarakeep


def seed(server: FakeKarakeep, count: int, *, rng: random.Random | None = None) -> list[str]:
    """Fill ``server`` with ``count`` varied, reproducible bookmarks; returns their ids."""
    rng = rng or random.Random(20250708)
    ids = []
    for number, site, added in seed_posts(server.now, count, rng):
        ids.append(
            server.add_bookmark(
                f"https://{site}/post/{number}",
                title=None if rng.random() < 0.3 else f"Post {number} on {site}",
                crawled_title=f"Crawled: post {number}",
                tags=rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2))),
                archived=rng.random() < 0.25,
                favourited=rng.random() < 0.1,
                created_at=added,
                modified_at=added + rng.randrange(0, 86400),
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(
        "karakeep",
        "Run a fake Karakeep server (REST API v1 under /api/v1) to try rules safely.",
        port=3000,
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key clients must send (default: $KARAKEEP_API_KEY, else a built-in test key)",
    )
    add_seed_and_latency(parser, "bookmarks")
    args = parser.parse_args(argv)
    check_not_negative(parser, args)
    api_key = args.api_key or os.environ.get("KARAKEEP_API_KEY") or DEFAULT_API_KEY
    server = FakeKarakeep(host=args.host, port=args.port, api_key=api_key, latency=args.latency)
    use_network(server, args)
    seed(server, args.seed)

    # never echo a key the user chose
    exports = {"KARAKEEP_API_KEY": api_key} if api_key == DEFAULT_API_KEY else {}
    return serve(server, "Karakeep", f"{args.seed} bookmarks", exports)
