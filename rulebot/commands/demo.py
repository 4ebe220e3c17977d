"""``rulebot demo SOURCE``: try a source without an account.

A server for the source starts on 127.0.0.1 with a seeded library (the fake,
or for Shaarli the real one from Debian's packages when the machine has
them, else the fake), and rulebot dry-runs the
source's demo rules (``rulebot/demo/SOURCE.yaml``) against it, as it would
against yours: sync, plan, show. Nothing is kept unless ``--keep``, which
leaves the server running and says how to go on by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rulebot.commands.shared import EXIT_ERROR, out
from rulebot.errors import RulebotError

if TYPE_CHECKING:
    from rulebot.fake.base import FakeServer

DEMO_RULES = Path(__file__).resolve().parent.parent / "demo"


@dataclass
class Running:
    """A demo server: its address, the environment rulebot needs for it, what
    it holds, and how to stop it."""

    base_url: str
    env: dict[str, str]
    holds: str
    stop: Callable[[], None]


def _started(
    server: FakeServer, seed: Callable[..., Any], items: int, env: dict[str, str], holds: str
) -> Running:
    """A fake seeded with ``items`` and started: the demo's server."""
    seed(server, items)
    server.start()
    return Running(server.base_url, env, holds.format(items=items), server.stop)


def _pocket(items: int) -> Running:
    from rulebot.fake.pocket import FakePocket, seed
    from rulebot.fake.pocket.server import DEFAULT_ACCESS_TOKEN, DEFAULT_CONSUMER_KEY

    env = {"POCKET_CONSUMER_KEY": DEFAULT_CONSUMER_KEY, "POCKET_ACCESS_TOKEN": DEFAULT_ACCESS_TOKEN}
    return _started(FakePocket(), seed, items, env, "a fake Pocket server with {items} items")


def _karakeep(items: int) -> Running:
    from rulebot.fake.karakeep import FakeKarakeep, seed
    from rulebot.fake.karakeep.server import DEFAULT_API_KEY

    server = FakeKarakeep(api_key=DEFAULT_API_KEY)
    env = {"KARAKEEP_API_KEY": DEFAULT_API_KEY}
    return _started(server, seed, items, env, "a fake Karakeep with {items} bookmarks")


def _wallabag(items: int) -> Running:
    from rulebot.fake.wallabag import FakeWallabag, model, seed

    env = {
        "WALLABAG_CLIENT_ID": model.DEFAULT_CLIENT_ID,
        "WALLABAG_CLIENT_SECRET": model.DEFAULT_CLIENT_SECRET,
        "WALLABAG_USERNAME": model.DEFAULT_USERNAME,
        "WALLABAG_PASSWORD": model.DEFAULT_PASSWORD,
    }
    return _started(FakeWallabag(), seed, items, env, "a fake Wallabag with {items} entries")


def _readeck(items: int) -> Running:
    from rulebot.fake.readeck import FakeReadeck, seed
    from rulebot.fake.readeck.server import DEFAULT_TOKEN

    server = FakeReadeck(token=DEFAULT_TOKEN)
    env = {"READECK_TOKEN": DEFAULT_TOKEN}
    return _started(server, seed, items, env, "a fake Readeck with {items} bookmarks")


def _linkding(items: int) -> Running:
    from rulebot.fake.linkding import DEFAULT_TOKEN, FakeLinkding, seed

    server = FakeLinkding(token=DEFAULT_TOKEN)
    seed(server, items)
    server.start()
    env = {"LINKDING_TOKEN": DEFAULT_TOKEN}
    return Running(server.base_url, env, f"a fake Linkding with {items} bookmarks", server.stop)


def _shaarli(items: int) -> Running:
    """Debian's real Shaarli when the machine has it, else the fake."""
    from rulebot.fake.real_shaarli import ShaarliServer, missing_reason, seed

    if missing_reason() is not None:
        return _fake_shaarli(items)
    server = ShaarliServer()
    server.__enter__()
    try:
        seed(server, items)
    except BaseException:
        server.stop()
        raise
    env = {"SHAARLI_API_SECRET": server.secret}
    return Running(server.base_url, env, f"Debian's Shaarli with {items} links", server.stop)


def _fake_shaarli(items: int) -> Running:
    from rulebot.fake.shaarli import DEFAULT_SECRET, FakeShaarli, seed

    server = FakeShaarli(secret=DEFAULT_SECRET)
    env = {"SHAARLI_API_SECRET": DEFAULT_SECRET}
    return _started(server, seed, items, env, "a fake Shaarli with {items} links")


def _readwise(items: int) -> Running:
    from rulebot.fake.readwise import FakeReadwise, seed
    from rulebot.fake.readwise.server import DEFAULT_TOKEN

    server = FakeReadwise(token=DEFAULT_TOKEN)
    env = {"READWISE_TOKEN": DEFAULT_TOKEN}
    return _started(server, seed, items, env, "a fake Readwise Reader with {items} documents")


def _raindrop(items: int) -> Running:
    from rulebot.fake.raindrop import FakeRaindrop, seed
    from rulebot.fake.raindrop.server import DEFAULT_TOKEN

    server = FakeRaindrop(token=DEFAULT_TOKEN)
    env = {"RAINDROP_TOKEN": DEFAULT_TOKEN}
    return _started(server, seed, items, env, "a fake Raindrop.io with {items} bookmarks")


SERVERS: dict[str, Callable[[int], Running]] = {
    "pocket": _pocket,
    "karakeep": _karakeep,
    "wallabag": _wallabag,
    "readeck": _readeck,
    "shaarli": _shaarli,
    "linkding": _linkding,
    "readwise": _readwise,
    "raindrop": _raindrop,
}


def cmd_demo(args: argparse.Namespace) -> int:
    rules = DEMO_RULES / f"{args.source}.yaml"
    if args.items < 0:
        raise RulebotError(f"--items must be 0 or more, not {args.items}")
    with tempfile.TemporaryDirectory(prefix="rulebot-demo-") as tmp:
        running = SERVERS[args.source](args.items)
        try:
            config = Path(tmp) / "rules.yaml"
            config.write_text(_pointed_at(rules.read_text(encoding="utf-8"), running.base_url))
            out(
                f"rulebot demo: {running.holds} at {running.base_url}; a dry run of "
                f"{_shown(rules)} against it (nothing is changed)\n",
                sys.stderr,
            )
            # the dry run is the command a user would type, in its own process,
            # with the demo server's credentials in its environment
            code = subprocess.run(
                [sys.executable, "-m", "rulebot", "-c", str(config), "plan"],
                env={**os.environ, **running.env},
                check=False,
            ).returncode
            if code == EXIT_ERROR or not args.keep:
                return code
            _keep(running, config)
        finally:
            running.stop()
    return 0


def _pointed_at(text: str, base_url: str) -> str:
    """The demo rules with their source's ``base_url`` set to the demo server."""
    return re.sub(r"(?m)^(  base_url: )\S+", lambda m: m.group(1) + base_url, text, count=1)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _keep(running: Running, config: Path) -> None:
    """Serve until Ctrl-C, saying how to go on in another terminal."""
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a demo ends, even this early
        out("\nThe server keeps running (Ctrl-C stops it; nothing is kept). In another terminal:")
        for name, value in running.env.items():
            out(f"  export {name}={value}")
        out(f"  rulebot -c {config} run      # apply the rules to the demo server")
        out(f"  rulebot -c {config} runs     # what the run did; `undo` takes it back")
        while True:
            time.sleep(3600)
