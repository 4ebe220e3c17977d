"""``python -m rulebot.fake.pocket``: a seeded fake Pocket server until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import random
import sys

from rulebot.fake.cli import SEED_TAGS, add_network, new_parser, seed_posts, serve, use_network
from rulebot.fake.pocket.checks import FAIL_ALONE, MALFORMED_MODES
from rulebot.fake.pocket.server import (
    ACCESS_TOKEN_ENV,
    CONSUMER_KEY_ENV,
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_CONSUMER_KEY,
    DEFAULT_USERNAME,
    FakePocket,
)


def seed(server: FakePocket, count: int, *, rng: random.Random | None = None) -> None:
    """Fill ``server`` with ``count`` varied, reproducible items, each last
    changed when it was added, read or favourited (never after the clock), so
    a ``since`` picks out the ones changed after it."""
    rng = rng or random.Random(20250708)
    for number, site, added in seed_posts(server.now, count, rng):
        status = rng.choice((0, 0, 0, 1))
        tags = rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2)))
        favorite = rng.random() < 0.1
        read = min(added + 3600, server.now) if status == 1 else None
        favorited = min(added + 1800, server.now) if favorite else None
        server.add_item(
            url=f"https://{site}/post/{number}",
            title=f"Post {number} on {site}",
            tags=tags,
            status=status,
            favorite=favorite,
            time_added=added,
            time_updated=max(added, read or 0, favorited or 0),
            time_read=read,
            time_favorited=favorited,
            word_count=rng.randrange(100, 5000),
            time_to_read=rng.randrange(1, 25),
            has_video=2 if "video" in site else 0,
            is_article="video" not in site,
        )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "pocket", "Run a fake Pocket v3 server that behaves like the real one.", port=8080
    )
    parser.add_argument("--seed-items", type=int, default=0, metavar="N")
    parser.add_argument(
        "--consumer-key",
        default=os.environ.get(CONSUMER_KEY_ENV) or DEFAULT_CONSUMER_KEY,
        help=f"the consumer key to accept (default: ${CONSUMER_KEY_ENV}, else a test key)",
    )
    parser.add_argument(
        "--access-token",
        default=os.environ.get(ACCESS_TOKEN_ENV) or DEFAULT_ACCESS_TOKEN,
        help=f"the access token to accept and grant (default: ${ACCESS_TOKEN_ENV}, else a test token)",
    )
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="the user OAuth names")
    parser.add_argument(
        "--malformed-actions",
        choices=MALFORMED_MODES,
        default=FAIL_ALONE,
        help="a malformed /v3/send action fails alone (the later server, default) "
        "or refuses the whole batch with 400 (the old server)",
    )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="OAuth request tokens need no visit to /auth/authorize",
    )
    parser.add_argument("--max-page", type=_positive, default=None, help="answer at most N per get")
    parser.add_argument("--user-limit", type=int, default=320, help="calls per reset period")
    parser.add_argument("--key-limit", type=int, default=10_000, help="calls per reset period")
    parser.add_argument("--reset-seconds", type=float, default=3600.0)
    add_network(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.rtt < 0:
        parser.error("--rtt must not be negative")
    server = FakePocket(
        host=args.host,
        port=args.port,
        consumer_key=args.consumer_key,
        access_token=args.access_token,
        username=args.username,
        max_page=args.max_page,
        user_limit=args.user_limit,
        key_limit=args.key_limit,
        reset_seconds=args.reset_seconds,
        malformed_actions=args.malformed_actions,
        auto_approve=args.auto_approve,
    )
    use_network(server, args)
    seed(server, args.seed_items)
    # Only the built-in test credentials are shown: ones you passed stay off the terminal.
    exports = {
        env: value if value == default else "<the value you gave>"
        for env, value, default in (
            (CONSUMER_KEY_ENV, server.consumer_key, DEFAULT_CONSUMER_KEY),
            (ACCESS_TOKEN_ENV, server.access_token, DEFAULT_ACCESS_TOKEN),
        )
    }
    approve = "approved automatically" if args.auto_approve else "{base_url}/auth/authorize"
    return serve(
        server,
        "Pocket",
        f"{args.seed_items} items",
        exports,
        note=f"(OAuth: {approve}; malformed actions {args.malformed_actions}; Ctrl-C stops)",
        error_prefix="python -m rulebot.fake.pocket",
        errors_to=sys.stdout,
    )
