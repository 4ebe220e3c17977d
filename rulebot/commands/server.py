"""Commands that only talk to the server: ``sync`` and ``auth``."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from typing import TYPE_CHECKING
from urllib.parse import quote

from rulebot.commands.shared import EXIT_OK, UsageError, load, open_store, out
from rulebot.errors import RulebotError

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer


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
    with (
        PocketClient.from_env(base_url, key_env, require_access_token=False) as client,
        _ComeBack(args.redirect_uri) as back,
    ):
        code = client.oauth_request(back.uri)
        authorize = (
            f"{client.base_url.replace('/v3', '')}/auth/authorize?request_token={code}"
            f"&redirect_uri={quote(back.uri, safe=':/')}"
        )
        print(f"Open this URL and approve rulebot:\n\n  {authorize}\n", file=sys.stderr)
        print(back.waiting, file=sys.stderr)
        if not back.wait(APPROVAL_WAIT):
            raise RulebotError(
                f"no approval within {APPROVAL_WAIT // 60} minutes; run `rulebot auth` again"
            )
        granted = client.oauth_authorize(code)
    print(
        f"Authorized as {granted.username}. Store the token below as POCKET_ACCESS_TOKEN "
        "(a secret store, not the config file); it is shown only this once:",
        file=sys.stderr,
    )
    out(granted.access_token)
    return EXIT_OK


APPROVAL_WAIT = 600  # seconds for the user to approve in the browser


class _ComeBack:
    """Where the browser goes after the user approves: by default a one-shot
    page on 127.0.0.1 (a random free port) that says so and tells rulebot to
    go on; pressing Enter goes on too (a browser on another machine). With
    ``--redirect-uri``, that address instead, and only Enter."""

    def __init__(self, redirect_uri: str | None) -> None:
        self._done = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        if redirect_uri:
            self.uri = redirect_uri
            self.waiting = "Press Enter once you have approved."
            return
        done = self._done
        # only `auth` listens: every other command starts without http.server
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/rulebot-auth":
                    self.send_error(404)
                    return
                body = (
                    b"<!doctype html><title>rulebot</title><h1>rulebot is approved</h1>"
                    b"<p>You can close this page and go back to the terminal.</p>"
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                done.set()

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.uri = f"http://127.0.0.1:{self._server.server_address[1]}/rulebot-auth"
        self.waiting = (
            "rulebot goes on when the browser comes back to it "
            "(or press Enter once you have approved)."
        )

    def __enter__(self) -> _ComeBack:
        if self._server is not None:
            threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._enter, daemon=True).start()
        return self

    def _enter(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdin.readline()  # Enter, or the end of the input
        self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
