"""``python -m rulebot.fake.raindrop``: a seeded fake Raindrop.io server until Ctrl-C."""

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
from rulebot.fake.raindrop.model import UNSORTED
from rulebot.fake.raindrop.server import DEFAULT_TOKEN, FakeRaindrop


def seed(server: FakeRaindrop, count: int, *, rng: random.Random | None = None) -> list[int]:
    """Fill ``server`` with ``count`` varied, reproducible raindrops (in
    Unsorted, a "Reading" collection and an "Archive" one); their ids."""
    rng = rng or random.Random(20250708)
    reading = server.add_collection("Reading")
    archive = server.add_collection("Archive")
    ids = []
    for number, site, added in seed_posts(server.now, count, rng):
        tags = rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2)))
        if tags and rng.random() < 0.1:
            tags[0] = tags[0].capitalize()  # case kept per raindrop
        ids.append(
            server.add_raindrop(
                f"https://{site}/post/{number}",
                f"Post {number} on {site}",
                tags=tags,
                important=rng.random() < 0.1,
                collection=rng.choice((UNSORTED, reading, reading, archive)),
                created=added,
                last_update=added + rng.randrange(0, 86400),
                type=rng.choice(("link", "article", "article", "video")),
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(
        "raindrop",
        "Run a fake Raindrop.io server (REST API v1 under /rest/v1) to try rules safely.",
        port=8070,
    )
    parser.add_argument(
        "--token",
        default=None,
        help="the test token clients must send (default: $RAINDROP_TOKEN, else a built-in one)",
    )
    add_seed_and_latency(parser, "raindrops")
    args = parser.parse_args(argv)
    check_not_negative(parser, args)
    token = args.token or os.environ.get("RAINDROP_TOKEN") or DEFAULT_TOKEN
    server = FakeRaindrop(host=args.host, port=args.port, token=token, latency=args.latency)
    use_network(server, args)
    seed(server, args.seed)
    exports = {"RAINDROP_TOKEN": token} if token == DEFAULT_TOKEN else {}  # never echo the user's
    note = (
        "(config: raindrop: {{base_url: {base_url}, archive_collection: Archive}}; "
        "Ctrl-C stops the server; nothing is saved)"
    )
    return serve(server, "Raindrop.io", f"{args.seed} raindrops", exports, note=note)
