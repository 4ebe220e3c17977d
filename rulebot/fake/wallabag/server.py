"""A fake Wallabag server (v2 API with OAuth2) that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakeWallabag() as server:
        entry_id = server.add_entry("https://example.com/a", tags=["js"])
        # WALLABAG_CLIENT_ID=server.client_id, ... and base_url=server.base_url

    python -m rulebot.fake.wallabag --port 8080 --seed 200

What it reproduces (``specs/wallabag.md``): ``/oauth/v2/token`` with the
password and refresh grants (form, query or JSON parameters; every failure a
400 ``{error, error_description}``; refresh rotates the refresh token);
access tokens that expire after ``access_lifetime`` seconds of the fake's
clock (401 ``invalid_grant`` "has expired" with ``WWW-Authenticate``); a
missing token is 401 ``access_denied``; every success is 200 (create and
delete too); ``is_archived``/``is_starred`` as 0/1 integers; dates as
``2016-04-05T09:07:54+0200`` in the server's time zone; global lower-case
tags ``{id, label, slug}``; HAL paging (``page``/``limit``/``pages``/
``total``/``_links``/``_embedded.items``; ``pages`` at least 1, a page past
the end 404); ``since`` strictly after ``updated_at``; every change bumps
``updated_at``; hard deletes (invisible to ``since``); a duplicate POST
merges tags and keeps the archive state; PATCH ``tags`` replaces, an empty
one changes nothing; bulk endpoints read JSON from the query string; only
``POST /entries/lists`` enforces the mass-action limit (10); no tag rename;
another user's entry is a 404; no rate limiting (a 429 only by injection).

Faults are switchable per call: a status code on the Nth (matching) call,
a dropped connection before or after doing the work, a slow answer, or
``expire`` (the presented access token expires just before the call); an
entry's fields can be garbled in every answer (``garble``).
Every request and its answer is recorded (``exchanges``, ``calls(route)``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

DEFAULT_CLIENT_ID = "1_3o53gl30vhgk0c8ks4cocww08o84448osgo40wgw4gwkoo8skc"
DEFAULT_CLIENT_SECRET = "636ocbqo978ckw0gsw4gcwwocg8044sco0w8w84cws48ggogs4"
DEFAULT_USERNAME = "wallabag"
DEFAULT_PASSWORD = "wallabag-fake-password"
DEFAULT_EMAIL = "wallabag@example.org"
ACCESS_LIFETIME = 3600
REFRESH_LIFETIME = 1_209_600
MASS_ACTION_LIMIT = 10
SERVER_TZ = timezone(timedelta(hours=2))  # not UTC: clients must read the offset
FAULTS = ("status", "drop", "drop_after", "slow", "expire", "die")
_STATUS_TEXT = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_BEARER = re.compile(r"Bearer\s(\S+)")
_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = []


def _route(method: str, template: str, handler: str) -> None:
    pattern = re.escape(template).replace(r"\{id\}", r"([^/]+)").replace(r"\{tag\}", r"([^/]+)")
    _ROUTES.append((method, re.compile(f"^{pattern}(?:\\.json)?$"), template, handler))


for _m, _t, _h in (
    ("GET", "/api/entries/exists", "_exists"),
    ("POST", "/api/entries/lists", "_bulk_create"),
    ("DELETE", "/api/entries/list", "_bulk_delete"),
    ("POST", "/api/entries/tags/lists", "_bulk_tag"),
    ("DELETE", "/api/entries/tags/list", "_bulk_untag"),
    ("GET", "/api/entries", "_list"),
    ("POST", "/api/entries", "_create"),
    ("GET", "/api/entries/{id}/tags", "_entry_tags"),
    ("POST", "/api/entries/{id}/tags", "_add_tags"),
    ("DELETE", "/api/entries/{id}/tags/{tag}", "_remove_tag"),
    ("GET", "/api/entries/{id}", "_get"),
    ("PATCH", "/api/entries/{id}", "_patch"),
    ("DELETE", "/api/entries/{id}", "_delete"),
    ("GET", "/api/tags", "_list_tags"),
    ("DELETE", "/api/tag/label", "_delete_label"),
    ("DELETE", "/api/tags/label", "_delete_labels"),
    ("DELETE", "/api/tags/{id}", "_delete_tag_id"),
    ("GET", "/api/user", "_user"),
    ("GET", "/api/version", "_version"),
    ("GET", "/api/info", "_info"),
):
    _route(_m, _t, _h)
_OPEN = {"_version", "_info"}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    target: str
    route: str  # "METHOD /api/template", e.g. "PATCH /api/entries/{id}"
    headers: dict[str, str]
    raw_body: bytes
    status: int | None
    response_body: bytes
    fault: str | None


@dataclass
class _Fault:
    kind: str
    status: int
    route: str | None
    skip: int
    remaining: int
    seconds: float
    body: str | None


@dataclass
class _Entry:
    id: int
    url: str
    given_url: str
    title: str | None
    user: str
    is_archived: bool = False
    is_starred: bool = False
    archived_at: int | None = None
    starred_at: int | None = None
    created_at: int = 0
    updated_at: int = 0
    language: str | None = None
    reading_time: int = 0
    tags: list[int] = field(default_factory=list)  # global tag ids, in order


@dataclass
class _Token:
    user: str
    expires: int


class _Error(Exception):
    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message or _STATUS_TEXT.get(status, "Error")


class FakeWallabag:
    """The fake server and its state; start with ``with`` or ``start()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        access_lifetime: int = ACCESS_LIFETIME,
        refresh_lifetime: int = REFRESH_LIFETIME,
        latency: float = 0.0,
        now: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.client_id, self.client_secret = client_id, client_secret
        self.users = {username: password, "other": "other-password"}
        self.emails = {DEFAULT_EMAIL: username}
        self.username = username
        self.access_lifetime, self.refresh_lifetime = access_lifetime, refresh_lifetime
        self.latency = latency
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._entries: dict[int, _Entry] = {}
        self._tags: dict[int, str] = {}  # global: id -> lower-case label
        self._next_entry = self._next_tag = 1
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self.issued: list[str] = []  # every token handed out (for secrets audits)
        self._now = int(time.time()) if now is None else now
        self._frozen = now is not None
        self._exchanges: list[Exchange] = []
        self._arrivals: list[str] = []
        self._faults: list[_Fault] = []
        self._garbling = threading.local()  # `hit`: this request showed a garbled item
        self._garbled: dict[int, dict[str, Any]] = {}  # raw fields shown per entry
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # sent as the Date header instead of the clock's time: a server (or a
        # proxy in front of it) whose clock is wrong, or a garbled header
        self.date_header: str | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> FakeWallabag:
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fake = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a server that died: new connections are refused, and a
        request on a connection still open is dropped unanswered, undone."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeWallabag:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The four variables rulebot reads, for this server."""
        return {
            "WALLABAG_CLIENT_ID": self.client_id,
            "WALLABAG_CLIENT_SECRET": self.client_secret,
            "WALLABAG_USERNAME": self.username,
            "WALLABAG_PASSWORD": self.users[self.username],
        }

    @property
    def now(self) -> int:
        with self._lock:
            if not self._frozen:
                self._now = max(self._now, int(time.time()))
            return self._now

    @now.setter
    def now(self, value: int) -> None:
        with self._lock:
            self._now, self._frozen = int(value), True

    # -- test helpers ---------------------------------------------------------------
    def add_entry(
        self,
        url: str | None = None,
        title: str | None = None,
        *,
        tags: Iterable[str] = (),
        archived: bool = False,
        starred: bool = False,
        created_at: int | None = None,
        updated_at: int | None = None,
        archived_at: int | None = None,
        starred_at: int | None = None,
        language: str | None = None,
        reading_time: int = 0,
        user: str | None = None,
        entry_id: int | None = None,
    ) -> int:
        """Put an entry straight into the library; ``entry_id`` picks its id
        (any integer, as a damaged or hostile server might send)."""
        with self._lock:
            if entry_id is None:
                entry_id = self._next_entry
            self._next_entry = max(self._next_entry, entry_id + 1)
            stamp = self.now if created_at is None else created_at
            url = url or f"https://example.com/articles/{entry_id}"
            entry = _Entry(
                id=entry_id,
                url=url,
                given_url=url,
                title=title,
                user=user or self.username,
                is_archived=archived,
                is_starred=starred,
                archived_at=(archived_at or stamp) if archived else None,
                starred_at=(starred_at or stamp) if starred else None,
                created_at=stamp,
                updated_at=stamp if updated_at is None else updated_at,
                language=language,
                reading_time=reading_time,
            )
            for label in tags:
                self._attach(entry, label)
            self._entries[entry_id] = entry
            return entry_id

    def remove_entry(self, entry_id: int) -> None:
        """A hard delete behind rulebot's back (the web UI, another app)."""
        with self._lock:
            del self._entries[entry_id]

    def touch(self, entry_id: int, **changes: Any) -> None:
        """Change an entry as the web UI would (``updated_at`` bumped)."""
        with self._lock:
            entry = self._entries[entry_id]
            for key, value in changes.items():
                setattr(entry, key, value)
            entry.updated_at = self.now

    @property
    def entries(self) -> dict[int, dict[str, Any]]:
        """Every entry of the configured user, as the API renders it."""
        with self._lock:
            return {
                e.id: self._render(e) for e in self._entries.values() if e.user == self.username
            }

    def labels(self, entry_id: int) -> list[str]:
        with self._lock:
            return sorted(self._tags[t] for t in self._entries[entry_id].tags)

    def tag_id(self, label: str) -> int | None:
        with self._lock:
            return next((tid for tid, name in self._tags.items() if name == label), None)

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        with self._lock:
            for token in self._access.values():
                token.expires = self.now - 1

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def calls(self, route: str | None = None) -> int:
        """Requests received, for ``route`` only if given ("GET /api/entries")."""
        with self._lock:
            arrivals = list(self._arrivals)
        return sum(1 for seen in arrivals if route is None or seen == route)

    def inject(
        self,
        kind: str,
        *,
        status: int = 503,
        route: str | None = None,
        nth: int = 1,
        count: int = 1,
        seconds: float = 2.0,
        body: str | None = None,
    ) -> None:
        """Fault the ``nth`` matching call from now on (and ``count - 1`` more).

        ``status`` answers ``status`` (``body`` overrides the JSON text, where
        ``{token}`` stands for the caller's access token);
        ``drop`` closes the connection before the work, ``drop_after`` after it;
        ``slow`` waits ``seconds``; ``expire`` expires the call's token first;
        ``die`` stops the server (``stop``) instead of answering, the work undone."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; choose from {', '.join(FAULTS)}")
        if nth < 1 or count < 1:
            raise ValueError("nth and count start at 1")
        with self._lock:
            self._faults.append(_Fault(kind, status, route, nth - 1, count, seconds, body))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._garbled.clear()

    def garble(self, entry_id: int, **fields: Any) -> None:
        """A data fault: from now on every answer shows these raw ``fields`` for
        the entry (a number past 2^63, a date in the year 10000 …) instead of what
        the server holds; exchanges while one is set are recorded with the
        fault ``"garble"``. ``clear_faults`` ends it."""
        with self._lock:
            self._garbled.setdefault(entry_id, {}).update(fields)

    # -- request handling -------------------------------------------------------------
    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> tuple[int, dict[str, str], bytes] | None:
        if self._stopping.is_set():
            return None  # stopped: a dead server answers nothing and does nothing
        parts = urlsplit(target)
        headers = {k.lower(): v for k, v in headers.items()}
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        route, handler, params = _resolve(method, parts.path)
        self._garbling.hit = False
        with self._lock:
            self._arrivals.append(route)
            fault = self._take_fault(route)
        if fault is not None and fault.kind == "die":
            self.stop()
        if self.latency:
            self._stopping.wait(self.latency)
        reply: tuple[int, dict[str, str], bytes] | None
        if self._stopping.is_set() or (fault is not None and fault.kind == "drop"):
            reply = None
        elif fault is not None and fault.kind == "status":
            text = fault.body or _STATUS_TEXT.get(fault.status, "Error")
            # "{token}" echoes the caller's access token (a leaky server, for audits)
            text = text.replace("{token}", self._presented(headers, query) or "")
            reply = _json(fault.status, {"code": fault.status, "message": text})
        else:
            if fault is not None and fault.kind == "slow":
                self._stopping.wait(fault.seconds)
            if fault is not None and fault.kind == "expire":
                with self._lock:
                    token = self._access.get(self._presented(headers, query) or "")
                    if token is not None:
                        token.expires = self.now - 1
            with self._lock:
                reply = self._answer(method, handler, params, query, headers, raw_body)
            if fault is not None and fault.kind == "drop_after":
                reply = None
        garbled = self._garbling.hit
        with self._lock:
            self._exchanges.append(
                Exchange(
                    method,
                    parts.path,
                    target,
                    route,
                    headers,
                    raw_body,
                    None if reply is None else reply[0],
                    b"" if reply is None else reply[2],
                    fault.kind if fault is not None else "garble" if garbled else None,
                )
            )
        return reply

    def _take_fault(self, route: str) -> _Fault | None:
        for fault in self._faults:
            if fault.route is not None and fault.route != route:
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _answer(
        self,
        method: str,
        handler: str | None,
        params: list[str],
        query: dict[str, str],
        headers: Mapping[str, str],
        raw_body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        body = _read_body(headers, raw_body)
        if handler == "_token":
            return self._token({**query, **body})
        if handler is None:
            return _json(404, {"code": 404, "message": "Not Found"})
        user = None
        if handler not in _OPEN:
            user_or_reply = self._authenticate(headers, query, body)
            if isinstance(user_or_reply, tuple):
                return user_or_reply
            user = user_or_reply
        try:
            answer = getattr(self, handler)(*params, user=user, query=query, body=body)
        except _Error as err:
            return _json(err.status, {"code": err.status, "message": err.message})
        return _json(200, answer)

    # -- OAuth ----------------------------------------------------------------------------
    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        grant = form.get("grant_type")
        if grant not in ("password", "refresh_token", "client_credentials", "authorization_code"):
            return _oauth(
                400, "invalid_request", "Invalid grant_type parameter or parameter missing"
            )
        if not form.get("client_id"):
            return _oauth(400, "invalid_client", "Client id was not found in the headers or body")
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _oauth(400, "invalid_client", "The client credentials are invalid")
        if grant not in ("password", "refresh_token"):
            return _oauth(
                400, "unauthorized_client", "The grant type is unauthorized for this client_id"
            )
        if grant == "password":
            name, password = form.get("username"), form.get("password")
            if not name or not password:
                return _oauth(
                    400, "invalid_request", 'Missing parameters. "username" and "password" required'
                )
            name = self.emails.get(name, name)
            if self.users.get(name) != password:
                return _oauth(400, "invalid_grant", "Invalid username and password combination")
            user = name
        else:
            presented = form.get("refresh_token")
            if not presented:
                return _oauth(400, "invalid_request", 'No "refresh_token" parameter found')
            token = self._refresh.get(presented)
            if token is None:
                return _oauth(400, "invalid_grant", "Invalid refresh token")
            if token.expires < self.now:
                return _oauth(400, "invalid_grant", "Refresh token has expired")
            del self._refresh[presented]  # rotated
            user = token.user
        access, refresh = _new_token(), _new_token()
        self._access[access] = _Token(user, self.now + self.access_lifetime)
        self._refresh[refresh] = _Token(user, self.now + self.refresh_lifetime)
        self.issued += [access, refresh]
        answer = {
            "access_token": access,
            "expires_in": self.access_lifetime,
            "token_type": "bearer",
            "scope": None,
            "refresh_token": refresh,
        }
        status, headers, data = _json(200, answer)
        return status, {**headers, "Cache-Control": "no-store", "Pragma": "no-cache"}, data

    @staticmethod
    def _presented(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        match = _BEARER.search(headers.get("authorization", ""))
        return match.group(1) if match else query.get("access_token")

    def _authenticate(
        self, headers: Mapping[str, str], query: Mapping[str, str], body: Mapping[str, str]
    ) -> str | tuple[int, dict[str, str], bytes]:
        match = _BEARER.search(headers.get("authorization", ""))
        ways = [match.group(1)] if match else []
        ways += [form["access_token"] for form in (query, body) if "access_token" in form]
        if len(ways) > 1:
            return _oauth(
                400,
                "invalid_request",
                "Only one method may be used to authenticate at a time (Auth header, GET or POST).",
            )
        if not ways:
            return _oauth(401, "access_denied", "OAuth2 authentication required")
        token = self._access.get(ways[0])
        if token is None:
            return _oauth(401, "invalid_grant", "The access token provided is invalid.")
        if token.expires < self.now:
            return _oauth(401, "invalid_grant", "The access token provided has expired.")
        return token.user

    # -- entries -------------------------------------------------------------------------
    def _list(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        rows = [e for e in self._entries.values() if e.user == user]
        for name, attr in (("archive", "is_archived"), ("starred", "is_starred")):
            if name in query:
                rows = [e for e in rows if getattr(e, attr) == (query[name] not in ("", "0"))]
        since = _get_int(query.get("since"))
        if since > 0:
            rows = [e for e in rows if e.updated_at > since]
        if query.get("tags"):
            wanted = query["tags"].split(",")  # not trimmed nor lower-cased
            rows = [e for e in rows if all(w in {self._tags[t] for t in e.tags} for w in wanted)]
        if query.get("domain_name"):
            rows = [e for e in rows if _host(e.url) == query["domain_name"]]
        detail = query.get("detail", "full")
        if detail not in ("full", "metadata"):
            raise _Error(400, f'Detail "{detail}" parameter is wrong, allowed: full or metadata')
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise _Error(400, f'Order "{order}" parameter is wrong, allowed: asc or desc')
        sort = query.get("sort", "created")
        key = {"created": "id", "updated": "updated_at", "archived": "archived_at"}.get(sort)
        if key is not None:
            rows.sort(key=lambda e: (getattr(e, key) or 0, e.id), reverse=order == "desc")
        page, per_page = _get_int(query.get("page", "1")), _get_int(query.get("perPage", "30"))
        pages = max(1, -(-len(rows) // per_page)) if per_page >= 1 else 1
        if page < 1 or per_page < 1 or page > pages:
            raise _Error(404)
        chunk = rows[(page - 1) * per_page : page * per_page]
        link_query = {k: v for k, v in query.items() if k not in ("domain_name", "http_status")}

        def link(number: int) -> dict[str, str]:
            q = urlencode({**link_query, "page": number, "perPage": per_page})
            return {"href": f"{self.base_url}/api/entries?{q}"}

        links = {"self": link(page), "first": link(1), "last": link(pages)}
        if page < pages:
            links["next"] = link(page + 1)
        if page > 1:
            links["previous"] = link(page - 1)
        return {
            "page": page,
            "limit": per_page,
            "pages": pages,
            "total": len(rows),
            "_links": links,
            "_embedded": {"items": [self._render(e, detail) for e in chunk]},
        }

    def _get(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        return self._render(self._find(entry_id, user), query.get("detail", "full"))

    def _create(self, *, user: str, query: dict[str, str], body: dict[str, str]) -> Any:
        url = body.get("url", "").strip()
        if not _is_url(url):
            raise _Error(400, f"The url '{json.dumps(url)}' is not a valid url\n")
        entry = self._by_url(url, user)
        if entry is None:
            entry = _Entry(
                id=self._next_entry,
                url=url,
                given_url=url,
                title=None,
                user=user,
                created_at=self.now,
                reading_time=1,
            )
            self._next_entry += 1
            self._entries[entry.id] = entry
            entry.title = _host(url)  # the fake never fetches: the domain, like a failed fetch
        self._update(entry, body, tags_replace=False)
        return self._render(entry)

    def _patch(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        entry = self._find(entry_id, user)
        self._update(entry, body, tags_replace=True)
        return self._render(entry)

    def _delete(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        expect = query.get("expect", "entry")
        if expect not in ("id", "entry"):
            raise _Error(400, f'expect parameter value "{expect}" is not valid')
        entry = self._find(entry_id, user)
        rendered = self._render(entry)
        del self._entries[entry.id]
        return {"id": entry.id} if expect == "id" else rendered

    def _exists(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        url = query.get("url")
        if not url:
            raise _Error(404)
        entry = self._by_url(url, user)
        if query.get("return_id") in ("1", "true"):
            return {"exists": None if entry is None else entry.id}
        return {"exists": entry is not None}

    def _entry_tags(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        return self._tag_objects(self._find(entry_id, user).tags)

    def _add_tags(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        entry = self._find(entry_id, user)
        labels = _split(body.get("tags", ""))
        for label in labels:
            self._attach(entry, label)
        if labels:
            entry.updated_at = self.now
        return self._render(entry)

    def _remove_tag(
        self, entry_id: str, tag_id: str, *, user: str, query: dict[str, str], body: Any
    ) -> Any:
        entry = self._find(entry_id, user)
        number = _get_int(tag_id)
        if number not in self._tags:
            raise _Error(404)
        if number in entry.tags:
            entry.tags.remove(number)
            entry.updated_at = self.now
        return self._render(entry)

    # -- bulk (JSON in the query string) ---------------------------------------------------
    def _bulk_create(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        urls = _json_list(query.get("urls"))
        if len(urls) > MASS_ACTION_LIMIT:
            raise _Error(400, "API limit reached")
        result = []
        for url in urls:
            entry = self._by_url(str(url), user)
            if entry is None:
                entry_id = self.add_entry(str(url), user=user)
                entry = self._entries[entry_id]
            result.append({"url": url, "entry": entry.id})
        return result

    def _bulk_delete(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        result = []
        for url in _json_list(query.get("urls")):
            entry = self._by_url(str(url), user)
            if entry is not None:
                del self._entries[entry.id]
            result.append({"url": url, "entry": entry is not None})
        return result

    def _bulk_tag(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        result = []
        for element in _json_list(query.get("list")):
            url = str(element.get("url", "")) if isinstance(element, dict) else ""
            entry = self._by_url(url, user)
            if entry is not None:
                labels = _split(str(element.get("tags", "")))
                for label in labels:
                    self._attach(entry, label)
                if labels:
                    entry.updated_at = self.now
            result.append({"url": url, "entry": False if entry is None else entry.id})
        return result

    def _bulk_untag(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        result = []
        for element in _json_list(query.get("list")):
            url = str(element.get("url", "")) if isinstance(element, dict) else ""
            entry = self._by_url(url, user)
            if entry is not None:
                for label in str(element.get("tags", "")).split(","):
                    tag_id = self.tag_id(label.strip())  # exact label, not lower-cased
                    if tag_id is not None and tag_id in entry.tags:
                        entry.tags.remove(tag_id)
                        entry.updated_at = self.now
            result.append({"url": url, "entry": False if entry is None else entry.id})
        return result

    # -- tags --------------------------------------------------------------------------------
    def _list_tags(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        counts: dict[int, int] = {}
        for entry in self._entries.values():
            if entry.user == user:
                for tag_id in entry.tags:
                    counts[tag_id] = counts.get(tag_id, 0) + 1
        tags = [{**self._tag_object(t), "nbEntries": n} for t, n in counts.items()]
        return sorted(tags, key=lambda t: t["label"])

    def _delete_label(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        label = body.get("tag") or query.get("tag") or ""
        return self._remove_everywhere(self.tag_id(label), user)

    def _delete_labels(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        labels = (body.get("tags") or query.get("tags") or "").split(",")
        found = [self._remove_everywhere(self.tag_id(label), user, quiet=True) for label in labels]
        found = [tag for tag in found if tag is not None]
        if not found:
            raise _Error(404)
        return found

    def _delete_tag_id(self, tag_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        return self._remove_everywhere(_get_int(tag_id) or None, user)

    def _remove_everywhere(self, tag_id: int | None, user: str, *, quiet: bool = False) -> Any:
        mine = [e for e in self._entries.values() if e.user == user and tag_id in e.tags]
        if tag_id is None or not mine:
            if quiet:
                return None
            raise _Error(404)
        rendered = self._tag_object(tag_id)
        for entry in mine:
            entry.tags.remove(tag_id)
            entry.updated_at = self.now
        if not any(tag_id in e.tags for e in self._entries.values()):
            del self._tags[tag_id]
        return rendered

    def _user(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        return {"id": 1, "username": user, "email": DEFAULT_EMAIL, "name": user}

    def _version(self, *, user: str | None, query: dict[str, str], body: Any) -> Any:
        return "2.7.0-dev"

    def _info(self, *, user: str | None, query: dict[str, str], body: Any) -> Any:
        return {"appname": "wallabag", "version": "2.7.0-dev", "allowed_registration": False}

    # -- state helpers ------------------------------------------------------------------------
    def _find(self, entry_id: str, user: str) -> _Entry:
        entry = self._entries.get(_get_int(entry_id))
        if entry is None or entry.user != user:  # another user's entry: 404 (HEAD)
            raise _Error(404)
        return entry

    def _by_url(self, url: str, user: str) -> _Entry | None:
        return next(
            (e for e in self._entries.values() if e.user == user and url in (e.url, e.given_url)),
            None,
        )

    def _attach(self, entry: _Entry, label: str) -> None:
        label = label.strip().lower()
        if not label:
            return
        tag_id = self.tag_id(label)
        if tag_id is None:
            tag_id = self._next_tag
            self._next_tag += 1
            self._tags[tag_id] = label
        if tag_id not in entry.tags:
            entry.tags.append(tag_id)

    def _update(self, entry: _Entry, form: Mapping[str, Any], *, tags_replace: bool) -> None:
        now = self.now
        for key in ("archive", "starred"):
            if key in form:
                on = str(form[key]).lower() not in ("", "0", "false")
                if key == "archive":
                    entry.is_archived, entry.archived_at = on, now if on else None
                else:
                    entry.is_starred, entry.starred_at = on, now if on else None
        if form.get("title"):
            entry.title = str(form["title"])
        if form.get("language"):
            entry.language = str(form["language"])
        labels = _split(str(form.get("tags") or ""))
        if labels:
            if tags_replace:
                entry.tags.clear()
            for label in labels:
                self._attach(entry, label)
        entry.updated_at = now

    def _tag_object(self, tag_id: int) -> dict[str, Any]:
        label = self._tags[tag_id]
        return {"id": tag_id, "label": label, "slug": _slug(label)}

    def _tag_objects(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        return [self._tag_object(t) for t in ids]

    def _render(self, entry: _Entry, detail: str = "full") -> dict[str, Any]:
        hashed = hashlib.sha1(entry.url.encode()).hexdigest()
        answer = {
            "is_archived": int(entry.is_archived),
            "is_starred": int(entry.is_starred),
            "user_name": entry.user,
            "user_email": DEFAULT_EMAIL,
            "user_id": 1,
            "tags": self._tag_objects(entry.tags),
            "is_public": False,
            "id": entry.id,
            "uid": None,
            "title": entry.title,
            "url": entry.url,
            "hashed_url": hashed,
            "origin_url": None,
            "given_url": entry.given_url,
            "hashed_given_url": hashlib.sha1(entry.given_url.encode()).hexdigest(),
            "archived_at": _date(entry.archived_at),
            "content": None if detail == "metadata" else f"<p>{entry.title or ''}</p>",
            "created_at": _date(entry.created_at),
            "updated_at": _date(entry.updated_at),
            "published_at": None,
            "published_by": None,
            "starred_at": _date(entry.starred_at),
            "annotations": [],
            "mimetype": "text/html; charset=utf-8",
            "language": entry.language,
            "reading_time": entry.reading_time,
            "domain_name": _host(entry.url),
            "preview_picture": None,
            "http_status": "200",
            "headers": None,
            "_links": {"self": {"href": f"/api/entries/{entry.id}"}},
        }
        if entry.id in self._garbled:
            answer.update(self._garbled[entry.id])
            self._garbling.hit = True
        return answer


# -- HTTP plumbing -----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeWallabag


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header from the fake's clock (a frozen clock stays frozen);
        ``date_header`` instead when set."""
        fake = self.server.fake
        return fake.date_header or formatdate(fake.now, usegmt=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        reply = self.server.fake._handle(self.command, self.path, dict(self.headers), raw)
        if reply is None:
            self.close_connection = True
            return
        status, headers, data = reply
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


def _resolve(method: str, path: str) -> tuple[str, str | None, list[str]]:
    if path.rstrip("/") == "/oauth/v2/token" and method in ("GET", "POST"):
        return f"{method} /oauth/v2/token", "_token", []
    for want, pattern, template, handler in _ROUTES:
        match = pattern.match(path)
        if match and want == method:
            return f"{method} {template}", handler, list(match.groups())
    return f"{method} {path}", None, []


def _json(status: int, value: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


def _oauth(status: int, error: str, description: str) -> tuple[int, dict[str, str], bytes]:
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
    if status == 401:
        headers["WWW-Authenticate"] = (
            f'Bearer realm="Service", error="{error}", error_description="{description}"'
        )
    body = json.dumps({"error": error, "error_description": description}).encode()
    return status, headers, body


def _read_body(headers: Mapping[str, str], raw: bytes) -> dict[str, str]:
    """A form or JSON body (FOSRest's body listener decodes both)."""
    if not raw:
        return {}
    if "json" in headers.get("content-type", ""):
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _json_list(text: str | None) -> list[Any]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _split(text: str) -> list[str]:
    return [label.strip().lower() for label in text.split(",") if label.strip()]


def _get_int(text: str | None) -> int:
    """PHP's getInt: leading digits, else 0."""
    match = re.match(r"-?\d+", text or "")
    return int(match.group()) if match else 0


def _date(stamp: int | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, SERVER_TZ).strftime("%Y-%m-%dT%H:%M:%S%z")


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _is_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url


def _slug(label: str) -> str:
    return "t:" + re.sub(r"[^a-z0-9]+", "-", label).strip("-")


def _new_token() -> str:
    """86 characters of URL-safe base64, like the real tokens."""
    digest = hashlib.sha256(secrets.token_bytes(32)).hexdigest().encode()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:86]


# -- command line --------------------------------------------------------------------------------


def seed(server: FakeWallabag, count: int, *, rng: random.Random | None = None) -> list[int]:
    """Fill ``server`` with ``count`` varied, reproducible entries; returns their ids."""
    rng = rng or random.Random(20250708)
    sites = ["example.com", "blog.example.org", "news.example.net", "www.video.example"]
    tags = ["read-later", "js", "python", "news", "recipes", "work", "long-read"]
    start = server.now - 400 * 86400
    ids = []
    for number in range(count):
        site = rng.choice(sites)
        added = start + rng.randrange(400 * 86400)
        archived = rng.random() < 0.25
        ids.append(
            server.add_entry(
                f"https://{site}/post/{number}",
                title=f"Post {number} on {site}",
                tags=rng.sample(tags, rng.choice((0, 0, 1, 2))),
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
    parser = argparse.ArgumentParser(
        prog="python -m rulebot.fake.wallabag",
        description="Run a fake Wallabag server (v2 API with OAuth2) to try rules safely.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="pre-fill N entries")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument(
        "--token-lifetime", type=int, default=ACCESS_LIFETIME, help="access token seconds"
    )
    args = parser.parse_args(argv)
    if args.seed < 0 or args.latency < 0 or args.token_lifetime < 1:
        parser.error("--seed and --latency must not be negative, --token-lifetime positive")
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
    seed(server, args.seed)
    try:
        server.start()
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 1
    print(f"fake Wallabag server at {server.base_url} with {args.seed} entries", flush=True)
    defaults = {
        "WALLABAG_CLIENT_ID": DEFAULT_CLIENT_ID,
        "WALLABAG_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "WALLABAG_USERNAME": DEFAULT_USERNAME,
        "WALLABAG_PASSWORD": DEFAULT_PASSWORD,
    }
    for name, value in server.env.items():
        if value == defaults[name]:  # never echo a credential the user chose
            print(f"  export {name}={value}", flush=True)
    print("  (Ctrl-C stops the server; nothing is saved)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
