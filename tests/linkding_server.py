"""A real Linkding 1.44.1 on 127.0.0.1, for tests: ``shared/servers/linkding``.

That folder's ``start.sh DATA_DIR PORT`` unpacks linkding, installs its
pinned requirements into ``DATA_DIR/venv``, creates a user with an API token
and starts gunicorn; ``stop.sh DATA_DIR`` stops it (its README says how it
differs from the Docker image). One server runs per test session, so one per
pytest-xdist worker (the
``linkding_server`` fixture in tests/conftest.py); each test gets an account
of its own on it (``LinkdingServer.account``): Linkding keeps bookmarks and
tags per user, so tests never see each other's library, and a fresh user is
a fraction of a second where a fresh server is five.

The venv (about 114 MB, the pip install being most of a cold start's 12 s)
is kept between sessions in ``RULEBOT_LINKDING_CACHE`` (default
``~/.cache/rulebot/linkding-1.44.1-venv``; set it empty to keep none):
``DATA_DIR/venv`` is a link to it, and start.sh installs into it only when
its ``requirements.txt`` changed. A lock keeps two sessions from installing
at once.

The server folder is ``RULEBOT_LINKDING_SERVER`` when set, else
``../shared/servers/linkding`` beside the repository. Without it the tests
skip saying so, unless ``RULEBOT_REAL_SERVERS=1`` (``.ci/run``), where a
missing server is a failure.

What no API can do, the tests do as another program on the same machine
would: accounts and passwords through Django in the server's own venv, an
old ``date_added`` (Linkding stamps every create with now and ignores one
sent) straight in its SQLite file, and a tag rename through the web UI's
tag editor (a session login and its CSRF form: invisible to the API's
``modified_since``, like the real thing).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

VERSION = "1.44.1"
SERVER_ENV = "RULEBOT_LINKDING_SERVER"
CACHE_ENV = "RULEBOT_LINKDING_CACHE"
REPO = Path(__file__).resolve().parents[1]
DB_OPTIONS = '{"transaction_mode": "IMMEDIATE", "timeout": 20}'  # start.sh's default
BATCH = 8  # accounts made per Django process (about 1.5 s each)


def server_dir() -> Path:
    """Where the server package is: ``RULEBOT_LINKDING_SERVER``, else beside the repo."""
    chosen = os.environ.get(SERVER_ENV)
    return Path(chosen) if chosen else REPO.parent / "shared" / "servers" / "linkding"


def missing_reason() -> str | None:
    """Why the real server cannot run here, or None."""
    folder = server_dir()
    if not (folder / "start.sh").is_file():
        where = f"{SERVER_ENV}={folder}" if os.environ.get(SERVER_ENV) else str(folder)
        return f"no Linkding server package at {where} (set {SERVER_ENV} to its folder)"
    if shutil.which("python3") is None:
        return "python3 is not on PATH (start.sh makes the server's venv with it)"
    return None


def require_server() -> None:
    """Skip (or, with RULEBOT_REAL_SERVERS=1, fail) when the server cannot run."""
    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get("RULEBOT_REAL_SERVERS") == "1":
        pytest.fail(f"RULEBOT_REAL_SERVERS=1 but the real Linkding cannot run: {reason}")
    pytest.skip(f"real Linkding server not available: {reason}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cache_dir() -> Path | None:
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rulebot" / f"linkding-{VERSION}-venv"


@dataclass(frozen=True)
class Account:
    """One user of the server: its own bookmarks and tags, its API token."""

    server: LinkdingServer
    username: str
    token: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    # -- the tests' own view of the server (not rulebot's client) ------------------
    def api(self, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base_url}/api{path}",
            json=body,
            params=params or None,
            headers={"Authorization": f"Token {self.token}"},
            timeout=30,
        )

    def add(self, url: str, tags: list[str] = [], **fields: Any) -> int:  # noqa: B006
        answer = self.api("POST", "/bookmarks/", {"url": url, "tag_names": tags, **fields})
        assert answer.status_code == 201, answer.text
        bookmark_id: int = answer.json()["id"]
        return bookmark_id

    def patch(self, bookmark_id: int | str, **fields: Any) -> dict[str, Any]:
        answer = self.api("PATCH", f"/bookmarks/{bookmark_id}/", fields)
        assert answer.status_code == 200, answer.text
        bookmark: dict[str, Any] = answer.json()
        return bookmark

    def delete(self, bookmark_id: int | str) -> None:
        answer = self.api("DELETE", f"/bookmarks/{bookmark_id}/")
        assert answer.status_code == 204, answer.text

    def bookmarks(self) -> dict[str, dict[str, Any]]:
        """Every bookmark of both lists, by id (as a string)."""
        found: dict[str, dict[str, Any]] = {}
        for path in ("/bookmarks/", "/bookmarks/archived/"):
            answer = self.api("GET", path, limit="100000")
            assert answer.status_code == 200, answer.text
            found.update((str(b["id"]), b) for b in answer.json()["results"])
        return found

    def tags(self) -> dict[int, str]:
        answer = self.api("GET", "/tags/", limit="100000")
        assert answer.status_code == 200, answer.text
        return {tag["id"]: tag["name"] for tag in answer.json()["results"]}

    def set_added(self, bookmark_id: int | str, when: float) -> None:
        """``date_added`` as an import would have it (the API cannot set it)."""
        self.server.set_dates(int(bookmark_id), added=when)

    def rename_tag_in_ui(self, old: str, new: str) -> None:
        """Rename a tag the way a user does in the web UI's tag editor
        (``POST /tags/<id>/edit``): the bookmarks' ``date_modified`` stays."""
        tag_id = next((i for i, name in self.tags().items() if name == old), None)
        assert tag_id is not None, f"no tag {old!r}"
        with self.server.web_session(self.username) as web:
            form = web.get(f"/tags/{tag_id}/edit")
            assert form.status_code == 200, form.text[:300]
            answer = web.post(
                f"/tags/{tag_id}/edit",
                data={"name": new, "csrfmiddlewaretoken": _csrf(form.text)},
                headers={"Referer": f"{self.base_url}/tags/{tag_id}/edit"},
            )
            assert answer.status_code == 302, answer.text[:500]

    def delete_tag_in_ui(self, name: str) -> None:
        """Delete a tag in the web UI (``POST /tags`` with ``delete_tag``)."""
        tag_id = next((i for i, tag in self.tags().items() if tag == name), None)
        assert tag_id is not None, f"no tag {name!r}"
        with self.server.web_session(self.username) as web:
            page = web.get("/tags")
            answer = web.post(
                "/tags",
                data={"delete_tag": str(tag_id), "csrfmiddlewaretoken": _csrf(page.text)},
                headers={"Referer": f"{self.base_url}/tags"},
            )
            assert answer.status_code == 302, answer.text[:500]


def _csrf(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


# Django, in the server's own venv: new users with API tokens, a password.
_ACCOUNTS = """
import json, sys
import django
django.setup()
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
made = []
for name in json.loads(sys.argv[1]):
    user = User(username=name)
    user.set_unusable_password()
    user.save()
    made.append([name, Token.objects.create(user=user).key])
print(json.dumps(made))
"""
_PASSWORD = """
import sys
import django
django.setup()
from django.contrib.auth.models import User
user = User.objects.get(username=sys.argv[1])
user.set_password(sys.argv[2])
user.save()
"""


class LinkdingServer:
    """One running server (``start.sh``), its data in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.folder = server_dir()
        self._accounts: list[tuple[str, str]] = []
        self._made = 0
        self._passwords: dict[str, str] = {}
        self._lock = threading.Lock()
        self.started = False

    def __enter__(self) -> LinkdingServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        cache = _cache_dir()
        with _locked(cache):
            if cache is not None:
                if not (cache / "bin" / "pip").exists():
                    shutil.rmtree(cache, ignore_errors=True)
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    subprocess.run(
                        ["python3", "-m", "venv", str(cache)], check=True, capture_output=True
                    )
                (self.root / "venv").symlink_to(cache, target_is_directory=True)
            for _ in range(3):  # a free port another process took first: a fresh one
                started = subprocess.run(
                    [str(self.folder / "start.sh"), str(self.root), str(self.port)],
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if started.returncode == 0 or not _port_taken(started.stderr):
                    break
                self.port = _free_port()
        if started.returncode != 0:
            raise RuntimeError(f"start.sh failed ({started.returncode}):\n{started.stderr[-3000:]}")
        self.started = True
        printed = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
        self.base_url = printed["LINKDING_URL"]
        self.token = Path(printed["LINKDING_TOKEN_FILE"]).read_text().strip()

    def stop(self) -> None:
        if self.started or (self.root / "server.pid").exists():
            subprocess.run(
                [str(self.folder / "stop.sh"), str(self.root)], capture_output=True, timeout=60
            )
            self.started = False

    # -- accounts ---------------------------------------------------------------------
    def account(self) -> Account:
        """A user of its own (bookmarks and tags are per user): a fresh library."""
        with self._lock:
            if not self._accounts:
                names = [f"test{self._made + n}" for n in range(BATCH)]
                self._made += BATCH
                made = json.loads(self._django(_ACCOUNTS, json.dumps(names)))
                self._accounts.extend((name, key) for name, key in made)
            name, token = self._accounts.pop(0)
        return Account(self, name, token)

    @contextlib.contextmanager
    def web_session(self, username: str) -> Iterator[httpx.Client]:
        """Logged in to the web UI as ``username`` (given a password first)."""
        password = self._passwords.get(username)
        if password is None:
            password = self._passwords[username] = f"pw-{username}-{os.getpid()}"
            self._django(_PASSWORD, username, password)
        with httpx.Client(base_url=self.base_url, timeout=30) as web:
            login = web.get("/login/")
            answer = web.post(
                "/login/",
                data={
                    "username": username,
                    "password": password,
                    "csrfmiddlewaretoken": _csrf(login.text),
                },
                headers={"Referer": f"{self.base_url}/login/"},
            )
            assert answer.status_code == 302, f"login failed: {answer.status_code}"
            yield web

    def _django(self, script: str, *args: str) -> str:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bookmarks.settings.prod",
            "LD_DISABLE_BACKGROUND_TASKS": "True",
            "LD_DB_OPTIONS": DB_OPTIONS,
            "TZ": "UTC",
        }
        done = subprocess.run(
            [str(self.root / "venv" / "bin" / "python"), "-c", script, *args],
            cwd=self.root / f"linkding-{VERSION}",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    # -- what the API cannot do ---------------------------------------------------------
    def set_dates(self, bookmark_id: int, *, added: float | None = None) -> None:
        """Write a bookmark's ``date_added`` in the database, as Django stores it
        (naive UTC with microseconds)."""
        if added is None:
            return
        stamp = datetime.fromtimestamp(added, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        with contextlib.closing(sqlite3.connect(self.root / "data" / "db.sqlite3", 30)) as db:
            db.execute(
                "UPDATE bookmarks_bookmark SET date_added = ? WHERE id = ?", (stamp, bookmark_id)
            )
            db.commit()

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api_requests(self) -> int:
        """The API requests gunicorn's access log holds so far (every account's)."""
        return len(re.findall(r'"[A-Z]+ /api/\S* HTTP/', self.log()))


def _port_taken(said: str) -> bool:
    """start.sh failed because the port was taken: before it looked, or after
    (gunicorn could not bind it; the server log's tail is in ``said``)."""
    return "is already in use" in said or "Address already in use" in said


@contextlib.contextmanager
def _locked(cache: Path | None) -> Iterator[None]:
    """The venv cache to this session while start.sh may install into it."""
    if cache is None:
        yield
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f"{cache.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def requirements_digest() -> str:
    """start.sh's stamp of the venv it installed (reinstalled when it differs)."""
    return hashlib.sha256((server_dir() / "requirements.txt").read_bytes()).hexdigest()


def settle(seconds: float = 0.002) -> None:
    """Linkding's times have microseconds: a wait that makes two stamps differ."""
    time.sleep(seconds)
