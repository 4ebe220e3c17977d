"""Small builders shared by the tests (no fixtures hiding behaviour)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rulebot.library.item import Item
from rulebot.rules.actions import Action, compile_action
from rulebot.rules.conditions import Where, compile_where

# Hypothesis profiles (tests/conftest.py; docs/testing.md, "Property tests"):
# the thorough one runs every property test with ten times its examples.
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


def examples(default: int) -> int:
    """A property test's example count: ``default``, or ten times it under the
    ``thorough`` profile (``HYPOTHESIS_PROFILE=thorough``)."""
    return default * 10 if THOROUGH else default


DAY = 86400
NOW = 1_795_672_800  # 2026-11-26T06:00:00Z


@dataclass
class R:
    """A rule as the planner sees it, built from YAML-shaped values."""

    name: str
    where: Where | None
    actions: list[Action]
    limit: int | None = None
    keep_newest: int | None = None
    enabled: bool = True
    schedule: str | None = None


def rule(name: str, where: dict[str, Any] | None, actions: list[Any], **kw: Any) -> R:
    return R(
        name,
        compile_where(where) if where is not None else None,
        [compile_action(a) for a in actions],
        **kw,
    )


def item(item_id: int | str = 1, *, age_days: float = 10, **kw: Any) -> Item:
    kw.setdefault("given_url", f"https://example.com/{item_id}")
    kw.setdefault("given_title", f"Item {item_id}")
    added = kw.pop("time_added", NOW - int(age_days * DAY))
    kw.setdefault("time_updated", added)
    return Item(item_id=str(item_id), time_added=added, **kw)


@dataclass
class Library:
    items: list[Item] = field(default_factory=list)


# -- the CLI, in process ------------------------------------------------------------

RULEBOT_ENV = ("RULEBOT_CONFIG", "RULEBOT_STORE", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT")


def clear_rulebot_env(monkeypatch: Any) -> None:
    """No variable from the developer's shell may steer a test."""
    for name in RULEBOT_ENV:
        monkeypatch.delenv(name, raising=False)


def rb(capsys: Any, *args: str) -> tuple[int, str, str]:
    """Run the real entry point; (exit code, stdout, stderr) of this call only."""
    from rulebot.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- a hostile server, a few lines inside a test -----------------------------------


class Answering:
    """An ``http.server`` on 127.0.0.1 answering ``answer(method, path, headers, body)``
    with ``(status, content type, body)``."""

    def __init__(
        self, answer: Callable[[str, str, dict[str, str], bytes], tuple[int, str, bytes]]
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size)
                status, kind, data = answer(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def __enter__(self) -> Answering:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def assert_secret_stays_home(secret: str, env: dict[str, str], fake: Any) -> None:
    """Every command that talks to ``fake`` (a fake server on fake/base.py),
    run as ``python -m rulebot -v -v`` in the current directory with ``env``,
    and once more with the server echoing ``secret`` in an error: the secret
    in no output, no file left behind and no request target."""
    import subprocess
    import sys
    from pathlib import Path

    def rulebot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rulebot", "-v", "-v", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    outputs = []
    for args in (
        ["validate"],
        ["sync"],
        ["plan", "--out", "plan.json"],
        ["apply", "plan.json", "--format", "json"],
        ["run", "--format", "markdown"],
    ):
        done = rulebot(*args)
        assert done.returncode in (0, 2), done.stderr
        outputs.append(done.stdout + done.stderr)
    fake.inject("status", status=400, body=f"bad token {secret} !")
    echoed = rulebot("sync", "--full")
    assert echoed.returncode == 1, echoed.stderr
    outputs.append(echoed.stdout + echoed.stderr)
    for text in outputs:
        assert secret not in text
    for path in Path().rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    for exchange in fake.exchanges:
        assert secret not in exchange.target


def stop(process: Any, how: int = signal.SIGINT, timeout: float = 30) -> tuple[str, str]:
    """Signals a process a test started and waits for it; one that does not
    stop is killed (a failing test must not leave a server running), and
    the wait's ``TimeoutExpired`` is raised. Its (stdout, stderr) otherwise."""
    process.send_signal(how)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return out or "", err or ""
