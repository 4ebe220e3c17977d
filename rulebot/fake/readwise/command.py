"""``python -m rulebot.fake.readwise``: a seeded fake Readwise Reader until Ctrl-C."""

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
from rulebot.fake.readwise.server import DEFAULT_TOKEN, FakeReadwise


def seed(server: FakeReadwise, count: int, *, rng: random.Random | None = None) -> list[str]:
    """Fill ``server`` with ``count`` varied, reproducible documents (a few
    feed items and highlights among them, as a real account has); their ids."""
    rng = rng or random.Random(20250708)
    ids = []
    for number, site, added in seed_posts(server.now, count, rng):
        location = rng.choice(("new", "new", "later", "later", "shortlist", "archive", "feed"))
        doc_id = server.add_document(
            f"https://{site}/post/{number}",
            title=f"Post {number} on {site}",
            tags=rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2))),
            location=location,
            category=rng.choice(("article", "article", "article", "pdf", "video", "tweet")),
            created_at=added,
            updated_at=added + rng.randrange(0, 86400),
            word_count=rng.randrange(100, 6000),
            site_name=site,
        )
        ids.append(doc_id)
        if rng.random() < 0.1:  # a highlight: a document with a parent
            server.add_document(
                f"https://{site}/post/{number}#highlight",
                category="highlight",
                parent_id=doc_id,
                created_at=added,
            )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(
        "readwise",
        "Run a fake Readwise Reader (API v3 under /api/v3) to try rules safely.",
        port=8020,
    )
    parser.add_argument(
        "--token",
        default=None,
        help="the token clients must send (default: $READWISE_TOKEN, else a built-in test token)",
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="answer every request (default: 429 past 20/min, 50/min for save and update)",
    )
    add_seed_and_latency(parser, "documents")
    args = parser.parse_args(argv)
    check_not_negative(parser, args)
    token = args.token or os.environ.get("READWISE_TOKEN") or DEFAULT_TOKEN
    server = FakeReadwise(
        host=args.host,
        port=args.port,
        token=token,
        latency=args.latency,
        rate_limits=None if args.no_rate_limits else {"list": 20, "update": 50},
    )
    use_network(server, args)
    seed(server, args.seed)
    exports = {"READWISE_TOKEN": token} if token == DEFAULT_TOKEN else {}
    return serve(server, "Readwise Reader", f"{args.seed} documents", exports)
