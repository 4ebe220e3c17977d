"""``python -m rulebot.fake.wallabag``: a seeded fake Wallabag server until Ctrl-C."""

from __future__ import annotations

import os
import random

from rulebot.fake.cli import (
    SEED_TAGS,
    add_seed_and_latency,
    new_parser,
    seed_posts,
    serve,
    use_network,
)
from rulebot.fake.wallabag.model import (
    ACCESS_LIFETIME,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
)
from rulebot.fake.wallabag.server import FakeWallabag


def seed(server: FakeWallabag, count: int, *, rng: random.Random | None = None) -> list[int]:
    """Fill ``server`` with ``count`` varied, reproducible entries; returns their ids."""
    rng = rng or random.Random(20250708)
    ids = []
    for number, site, added in seed_posts(server.now, count, rng):
        archived = rng.random() < 0.25
        ids.append(
            server.add_entry(
                f"https://{site}/post/{number}",
                title=f"Post {number} on {site}",
                tags=rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2))),
                archived=archived,
                starred=rng.random() < 0.1,
                created_at=added,
                # never after the server's clock: a real server stamps changes with it
                updated_at=min(added + rng.randrange(0, 86400), server.now),
                language=rng.choice(("en", "de", "fr", None)),
                reading_time=rng.randrange(0, 40),
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = new_parser(
        "wallabag",
        "Run a fake Wallabag server (v2 API with OAuth2) to try rules safely.",
        port=8081,  # Pocket's fake has 8080: both can run at once
    )
    add_seed_and_latency(parser, "entries")
    parser.add_argument(
        "--token-lifetime", type=int, default=ACCESS_LIFETIME, help="access token seconds"
    )
    args = parser.parse_args(argv)
    if args.seed < 0 or args.latency < 0 or args.rtt < 0 or args.token_lifetime < 1:
        parser.error("--seed, --latency and --rtt must not be negative, --token-lifetime positive")
    env = os.environ
    server = FakeWallabag(
        host=args.host,
        port=args.port,
        client_id=env.get("WALLABAG_CLIENT_ID") or DEFAULT_CLIENT_ID,
        client_secret=env.get("WALLABAG_CLIENT_SECRET") or DEFAULT_CLIENT_SECRET,
        username=env.get("WALLABAG_USERNAME") or DEFAULT_USERNAME,
        password=env.get("WALLABAG_PASSWORD") or DEFAULT_PASSWORD,
        access_lifetime=args.token_lifetime,
        latency=args.latency,
    )
    use_network(server, args)
    seed(server, args.seed)
    defaults = {
        "WALLABAG_CLIENT_ID": DEFAULT_CLIENT_ID,
        "WALLABAG_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "WALLABAG_USERNAME": DEFAULT_USERNAME,
        "WALLABAG_PASSWORD": DEFAULT_PASSWORD,
    }
    # never echo a credential the user chose
    exports = {name: value for name, value in server.env.items() if value == defaults[name]}
    return serve(server, "Wallabag", f"{args.seed} entries", exports)
