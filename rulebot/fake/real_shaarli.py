"""Debian's real Shaarli (package ``shaarli`` + ``php-cli``) on 127.0.0.1: for
the tests, ``rulebot demo shaarli`` and ``python -m rulebot.fake.real_shaarli``.

Not a fake: the real server, run from a throw-away copy. It lives beside the
fakes because it serves the same purposes (tests, trying rules safely).

The package hard-codes its data, cache and code paths (``/var/lib/shaarli``,
``/var/cache/shaarli``, ``/usr/share/shaarli``: specs/shaarli.md §12), so each
instance runs from a copy of the tree in a temporary directory with those
paths rewritten, a ``config.json.php`` that enables the API with a known
secret (the install step the web UI would do), and an empty datastore (else
the first request seeds three demo bookmarks). ``php -S`` serves it; the
instance is stopped and its directory removed on exit.

Without the packages ``missing_reason`` says what to install (the tests skip
saying so, unless ``RULEBOT_REAL_SERVERS=1``: tests/shaarli_server.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

APP = Path("/usr/share/shaarli")
SECRET = "shaarli-SECRET-7f3a9c1e5b"
# serialize(new BookmarkArray()), deflated, base64: an empty store (specs/shaarli.md §13)
EMPTY_STORE = (
    "<?php /* 87cyNrBSCs5ITCzKyYxxys/Pzk0syoYzHIuKEiuVrEytqoutDI2slBi0GJKgUsVK1olWBlbVt"
    "cVWZmCJzBQkIUNDsFhBfnFmSWZ+npJ1ppWBdbGVOVg0O7USSSlErLQoBy5WCwA= */ ?>"
)


def missing_reason() -> str | None:
    """Why the real server cannot run here, or None."""
    if shutil.which("php") is None:
        return "php is not installed (apt-get install php-cli)"
    if not (APP / "index.php").is_file():
        return "Debian's shaarli package is not installed (apt-get install shaarli)"
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret: str = SECRET) -> str:
    """A JWT for the tests' own requests (independent of rulebot's code)."""
    head = _b64(json.dumps({"typ": "JWT", "alg": "HS512"}).encode())
    body = _b64(json.dumps({"iat": int(time.time())}).encode())
    signing = f"{head}.{body}"
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha512).digest()
    return f"{signing}.{_b64(sig)}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PortTaken(Exception):
    """php -S could not bind its port."""


class ShaarliServer:
    """One running instance; ``base_url``, ``api(method, path, json=)`` for setup and checks."""

    def __init__(self, secret: str = SECRET, port: int = 0) -> None:
        self.secret = secret
        self.root = Path(tempfile.mkdtemp(prefix="rulebot-shaarli-"))
        self.chosen_port = port  # 0: any free one
        self.port = port or _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ShaarliServer:
        try:
            self._install()
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _install(self) -> None:
        root, app = self.root, self.root / "app"
        for sub in ("data", "cache/tmp", "cache/cache", "cache/pagecache", "sessions"):
            (root / sub).mkdir(parents=True)
        shutil.copytree(APP, app, symlinks=True)
        cache_link = app / "cache"
        if cache_link.is_symlink():
            cache_link.unlink()  # points into /var/cache/shaarli
        for name in ("index.php", "init.php"):
            _rewrite(app / name, {str(APP): str(app)})
        _rewrite(
            app / "application/config/ConfigManager.php",
            {
                "/var/lib/shaarli/data": str(root / "data"),
                "/var/cache/shaarli": str(root / "cache"),
            },
        )
        config = {
            "api": {"enabled": True, "secret": self.secret},
            "general": {"timezone": "UTC", "title": "Test Shaarli"},
            "updates": {"check_updates": False},
        }
        (root / "data/config.json.php").write_text(f"<?php /*{json.dumps(config)}*/ ?>\n")
        self.reset()

    def reset(self) -> None:
        """An empty library and no history."""
        (self.root / "data/datastore.php").write_text(EMPTY_STORE)
        (self.root / "data/history.php").unlink(missing_ok=True)

    def _start(self) -> None:
        """``php -S`` on the port; a free port taken by another process before php
        bound it (parallel test workers) is one more try on a fresh one."""
        for _ in range(3):
            try:
                self._start_once()
                return
            except _PortTaken:
                if self.chosen_port:
                    raise RuntimeError(f"port {self.port} is in use") from None
                self.port = _free_port()
                self.base_url = f"http://127.0.0.1:{self.port}"
        self._start_once()

    def _start_once(self) -> None:
        log = (self.root / "server.log").open("wb")
        self.process = subprocess.Popen(
            [
                "php",
                "-d",
                f"session.save_path={self.root / 'sessions'}",
                "-S",
                f"127.0.0.1:{self.port}",
            ],
            cwd=self.root / "app",
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "Address already in use" in self.log():
                    raise _PortTaken
                raise RuntimeError(f"php -S exited: {self.log()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/api/v1/info", timeout=2).status_code == 401:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Shaarli did not answer within 20 s: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the tests' own view of the server (not rulebot's client) ------------------
    def api(self, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base_url}/api/v1{path}",
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {token(self.secret)}"},
            timeout=10,
        )

    def add(self, url: str, tags: list[str], **fields: Any) -> int:
        answer = self.api("POST", "/links", {"url": url, "tags": tags, **fields})
        if answer.status_code != 201:
            raise RuntimeError(f"Shaarli refused a link: {answer.status_code} {answer.text[:200]}")
        link_id: int = answer.json()["id"]
        return link_id

    def links(self) -> dict[str, dict[str, Any]]:
        """Every link, by URL."""
        answer = self.api("GET", "/links", limit="all")
        answer.raise_for_status()
        return {link["url"]: link for link in answer.json()}

    def history(self) -> list[dict[str, Any]]:
        answer = self.api("GET", "/history")
        answer.raise_for_status()
        events: list[dict[str, Any]] = answer.json()
        return events


def _rewrite(path: Path, replacements: dict[str, str]) -> None:
    text = path.read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    path.write_text(text)


def seed(server: ShaarliServer, count: int, *, rng: random.Random | None = None) -> list[int]:
    """Fill ``server`` with ``count`` varied, reproducible links (through its
    API, as any client would); returns their ids."""
    from rulebot.fake.cli import SEED_TAGS, seed_posts

    rng = rng or random.Random(20250708)
    ids = []
    for number, site, _added in seed_posts(int(time.time()), count, rng):
        tags = rng.sample(SEED_TAGS, rng.choice((0, 0, 1, 2)))
        ids.append(
            server.add(
                f"https://{site}/post/{number}",
                tags,
                title=f"Post {number} on {site}",
                private=rng.random() < 0.2,
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    """``python -m rulebot.fake.real_shaarli``: Debian's Shaarli, seeded, until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m rulebot.fake.real_shaarli",
        description="Run Debian's real Shaarli (packages shaarli + php-cli) on 127.0.0.1 "
        "from a throw-away copy, to try rules safely.",
    )
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="pre-fill N links")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must not be negative")
    reason = missing_reason()
    if reason is not None:
        print(f"error: cannot run Shaarli here: {reason}", file=sys.stderr)
        return 1
    with ShaarliServer(port=args.port) as server:
        seed(server, args.seed)
        print(f"Shaarli (the real one) at {server.base_url} with {args.seed} links", flush=True)
        print(f"  export SHAARLI_API_SECRET={server.secret}", flush=True)
        print("  (Ctrl-C stops the server; its copy and data are removed)", flush=True)
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
