"""Commands that only talk to the server: ``sync`` and ``auth``."""

from __future__ import annotations

import argparse
import contextlib
import sys

from rulebot.commands.shared import EXIT_OK, UsageError, load, open_store, out
from rulebot.errors import RulebotError


def cmd_sync(args: argparse.Namespace) -> int:
    from rulebot.run import pipeline
    from rulebot.sources import source_for

    config = load(args)
    if not source_for(config).remote:
        raise RulebotError(
            f"{config.path} has no source block (`pocket:`, `karakeep:` …), so there is no "
            "server to sync from; the local library is filled with `rulebot import FILE`"
        )
    with (
        open_store(config, args) as store,
        store.lock("sync"),
        pipeline.connected(config, store, full=args.full, progress=not args.quiet) as live,
    ):
        synced = live.synced
        total = store.count()
    assert synced is not None
    kind = "full" if synced.full else "incremental"
    out(
        f"{kind} sync: {synced.received} received, {synced.deleted} deleted, "
        f"{total} items in the store ({synced.requests} request{'s' if synced.requests != 1 else ''})"
    )
    return EXIT_OK


def cmd_auth(args: argparse.Namespace) -> int:
    from rulebot.sources.pocket.api import CONSUMER_KEY_ENV, PocketClient

    base_url = args.base_url
    key_env = CONSUMER_KEY_ENV
    if not base_url:
        config = load(args)
        if config.pocket is None:
            raise UsageError("pass --base-url, or use a config with a `pocket:` block")
        base_url, key_env = config.pocket.base_url, config.pocket.consumer_key_env
    with PocketClient.from_env(base_url, key_env, require_access_token=False) as client:
        code = client.oauth_request(args.redirect_uri)
        authorize = (
            f"{client.base_url.replace('/v3', '')}/auth/authorize?request_token={code}"
            f"&redirect_uri={args.redirect_uri}"
        )
        print(
            f"Open this URL, approve rulebot, then press Enter:\n\n  {authorize}\n", file=sys.stderr
        )
        with contextlib.suppress(EOFError):
            input()
        granted = client.oauth_authorize(code)
    print(
        f"Authorized as {granted.username}. Store the token below as POCKET_ACCESS_TOKEN "
        "(a secret store, not the config file); it is shown only this once:",
        file=sys.stderr,
    )
    out(granted.access_token)
    return EXIT_OK
