"""``python -m rulebot.fake.readeck``: a seeded fake Readeck server until Ctrl-C."""

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
from rulebot.fake.readeck.server import DEFAULT_TOKEN, FakeReadeck


def seed(server: FakeReadeck, count: int, *, rng: random.Random | None = None) -> list[str]:
    """Fill ``server`` with ``count`` varied, reproducible bookmarks; returns their ids."""
    rng = rng or random.Random(20260416)
    ids = []
    for number, site, added in seed_posts(server.now, count, rng):
        ids.append(
            server.add_bookmark(
                f"https://{site}/post/{number}",
                f"Post {number} on {site}",
                labels=rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2))),
                archived=rng.random() < 0.25,
                marked=rng.random() < 0.1,
                created=added,
                # never after the server's clock: a real server stamps changes with it
                updated=min(added + rng.randrange(0, 86400), server.now),
                word_count=rng.choice((0, 300, 1200, 4000)),
                lang=rng.choice(("en", "en", "de", "fr")),
                kind="video" if "video" in site else rng.choice(("article",) * 9 + ("photo",)),
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(
        "readeck", "Run a fake Readeck server (its API under /api) to try rules safely.", port=8000
    )
    add_seed_and_latency(parser, "bookmarks")
    args = parser.parse_args(argv)
    check_not_negative(parser, args)
    token = os.environ.get("READECK_TOKEN") or DEFAULT_TOKEN  # never on the command line
    server = FakeReadeck(host=args.host, port=args.port, token=token, latency=args.latency)
    use_network(server, args)
    seed(server, args.seed)

    # never echo a token the user chose
    exports = {"READECK_TOKEN": token} if token == DEFAULT_TOKEN else {}
    return serve(server, "Readeck", f"{args.seed} bookmarks", exports)
