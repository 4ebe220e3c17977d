"""``python -m rulebot.fake.linkding``: a seeded fake Linkding server until Ctrl-C."""

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
from rulebot.fake.linkding.server import DEFAULT_TOKEN, FakeLinkding


def seed(server: FakeLinkding, count: int, *, rng: random.Random | None = None) -> list[int]:
    """Fill ``server`` with ``count`` varied, reproducible bookmarks; returns their ids."""
    rng = rng or random.Random(20260416)
    ids = []
    for number, site, added in seed_posts(server.now, count, rng):
        ids.append(
            server.add_bookmark(
                f"https://{site}/post/{number}",
                f"Post {number} on {site}",
                rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2))),
                archived=rng.random() < 0.25,
                unread=rng.random() < 0.3,
                shared=rng.random() < 0.1,
                added=added,
                # never after the server's clock: a real server stamps changes with it
                modified=min(added + rng.randrange(0, 86400), server.now),
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(
        "linkding",
        "Run a fake Linkding server (its API under /api) to try rules safely.",
        port=9090,
    )
    add_seed_and_latency(parser, "bookmarks")
    args = parser.parse_args(argv)
    check_not_negative(parser, args)
    token = os.environ.get("LINKDING_TOKEN") or DEFAULT_TOKEN  # never on the command line
    server = FakeLinkding(host=args.host, port=args.port, token=token, latency=args.latency)
    use_network(server, args)
    seed(server, args.seed)

    # never echo a token the user chose
    exports = {"LINKDING_TOKEN": token} if token == DEFAULT_TOKEN else {}
    return serve(server, "Linkding", f"{args.seed} bookmarks", exports)
