"""A fake Readeck server (the API under /api) that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakeReadeck() as server:
        bookmark_id = server.add_bookmark("https://example.com/a", labels=["js"])
        client = ReadeckClient(server.base_url, server.token)

    python -m rulebot.fake.readeck --port 8000 --seed 200

What it reproduces (``specs/readeck.md``; the server's code where the YAML
differs): ``Authorization: Bearer`` (scheme any case) or Basic with the token
as the password, 401 with ``WWW-Authenticate``; plain-text errors rewritten by
the ``Accept`` header (JSON ``{"status","message"}`` with the generic status
text, bare text, else an HTML page); the list as a bare array, offset paging
with ``Total-Count``/``Total-Pages``/``Current-Page``/``Link`` (``previous``),
``limit`` 0-100 (0 or absent: 50) and **404** above 100 or for a bad number,
order ``created`` desc with no tie-breaker, ``id`` filters (repeatable);
``GET /bookmarks/sync`` unpaginated, ``since`` inclusive to the whole second,
delete records from a trigger table, newest first, 422 for a bad ``since``;
create answers 202 with ``Location``/``Bookmark-Id`` and never detects a
duplicate, the bookmark starting ``loaded: false``; PATCH answers only the
changed fields (+ ``id``, ``href``, ``updated``), applies ``labels`` then
``add_labels`` then ``remove_labels`` whatever the JSON order, sorts labels
case- and accent-insensitively and keeps them case-sensitive, 400 form JSON
on bad input; DELETE is immediate (204), ``is_deleted: true`` deletes after
20 s; label info answers an object, a rename merges onto an existing label,
label rename/delete bump ``updated``; ``published``, ``word_count`` and
``reading_time`` are omitted when unknown/0; ETag and 304; no rate limit.

Faults are switchable per call (``inject``): a status on the Nth matching
call, a dropped connection before or after the work, added latency; a
bookmark's fields can be garbled in every answer (``garble``); every
request and its answer is recorded (``exchanges``, ``calls(route)``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import random
import re
import sys
import threading
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from rulebot.fake.karakeep import Exchange

logger = logging.getLogger("rulebot.fake.readeck")

API_PREFIX = "/api"
# distinctive, so tests can grep for it; real tokens are signed, encoded uids
DEFAULT_TOKEN = "rdk_fa4e0c0de0c0de0c0de0c0de0c0de0c0de0c0de"
MAX_PAGE = 100
DEFAULT_PAGE = 50
DELETE_DELAY = 20.0  # seconds: PATCH is_deleted schedules the deletion task
FAULTS = ("status", "drop", "drop_after", "slow", "die")
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ID = re.compile(r"^[a-zA-Z0-9]{18,22}$")
_HTML_PAGE = "<!DOCTYPE html><html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
_PROXY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


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
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class _Status(Exception):
    """``server.Status``: a plain-text error that ``ErrorPages`` rewrites by Accept."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _FormError(Exception):
    """A form validation failure: 422 (create, list, sync) or 400 (PATCH)."""

    def __init__(self, status: int, fields: dict[str, list[str]]) -> None:
        super().__init__(fields)
        self.status, self.fields = status, fields


@dataclass
class _Bookmark:
    id: str
    url: str
    title: str
    created: int  # microseconds since the epoch
    updated: int
    is_archived: bool = False
    is_marked: bool = False
    labels: list[str] = field(default_factory=list)
    word_count: int = 0
    reading_time: int = 0
    lang: str = "en"
    type: str = "article"
    state: int = 0  # 0 loaded, 1 error, 2 loading
    read_progress: int = 0
    description: str = ""
    delete_at: float | None = None  # PATCH is_deleted: when the task runs (server clock)


@dataclass(frozen=True)
class ReadeckState:
    """A snapshot: bookmarks as ``GET /bookmarks/{id}`` renders them, and the removals."""

    bookmarks: dict[str, dict[str, Any]]
    removed: dict[str, str]  # id -> deleted time

    def by_url(self, url: str) -> list[dict[str, Any]]:
        return [b for b in self.bookmarks.values() if b["url"] == url]

    def labels(self, bookmark_id: str) -> list[str]:
        return list(self.bookmarks[bookmark_id]["labels"])


class FakeReadeck:
    """The fake server and its state; start with ``with`` or ``start()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        latency: float = 0.0,
        now: int | None = None,
        rng_seed: int = 20260416,
    ) -> None:
        self.host, self.port, self.token = host, port, token
        self.latency = latency
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._rng = random.Random(rng_seed)
        self._bookmarks: dict[str, _Bookmark] = {}
        self._removed: dict[str, int] = {}  # bookmark_removed: id -> deleted (microseconds)
        self._frozen = None if now is None else now * 1_000_000
        self._last = 0  # every change gets a later stamp than the one before
        self._exchanges: list[Exchange] = []
        self._arrivals: list[str] = []
        self._faults: list[_Fault] = []
        self._garbling = threading.local()  # `hit`: this request showed a garbled item
        self._garbled: dict[str, dict[str, Any]] = {}  # raw fields shown per bookmark
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        # sent as the Date header instead of the clock's time: a server (or a
        # proxy in front of it) whose clock is wrong, or a garbled header
        self.date_header: str | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeReadeck:
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

    def __enter__(self) -> FakeReadeck:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The instance root, as a user configures it (the API is under /api)."""
        return f"http://{self.host}:{self.port}"

    # -- clock -----------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Server time in whole seconds."""
        return self._clock() // 1_000_000

    @now.setter
    def now(self, value: int) -> None:
        with self._lock:
            self._frozen = int(value) * 1_000_000

    def _clock(self) -> int:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return time.time_ns() // 1000

    def _stamp(self) -> int:
        """A change's time: now, later than any earlier change (a frozen clock ticks 1 µs)."""
        with self._lock:
            self._last = max(self._clock(), self._last + 1)
            return self._last

    # -- test helpers ----------------------------------------------------------------
    def add_bookmark(
        self,
        url: str | None = None,
        title: str = "",
        *,
        labels: Iterable[str] = (),
        archived: bool = False,
        marked: bool = False,
        created: int | None = None,
        updated: int | None = None,
        word_count: int = 0,
        reading_time: int | None = None,
        lang: str = "en",
        kind: str = "article",
        bookmark_id: str | None = None,
    ) -> str:
        """Put a loaded bookmark straight into the library (times in unix seconds)."""
        with self._lock:
            bookmark_id = bookmark_id or self._new_id()
            stamp = self._stamp() if created is None else created * 1_000_000
            self._bookmarks[bookmark_id] = _Bookmark(
                id=bookmark_id,
                url=url or f"https://example.com/articles/{bookmark_id}",
                title=title,
                created=stamp,
                updated=stamp if updated is None else updated * 1_000_000,
                is_archived=archived,
                is_marked=marked,
                labels=_sorted_labels(labels),
                word_count=word_count,
                reading_time=(word_count + 199) // 200 if reading_time is None else reading_time,
                lang=lang,
                type=kind,
            )
            return bookmark_id

    def touch(self, bookmark_id: str, **changes: Any) -> None:
        """Change a bookmark as another client would (bumps ``updated``)."""
        with self._lock:
            bookmark = self._bookmarks[bookmark_id]
            for name, value in changes.items():
                setattr(bookmark, name, _sorted_labels(value) if name == "labels" else value)
            bookmark.updated = self._stamp()

    def remove(self, bookmark_id: str) -> None:
        """Delete a bookmark as another client would (the trigger records it)."""
        with self._lock:
            self._delete(bookmark_id)

    @property
    def state(self) -> ReadeckState:
        with self._lock:
            self._reap()
            return ReadeckState(
                {b.id: self._render(b, detail=True) for b in self._ordered()},
                {k: _iso(v) for k, v in self._removed.items()},
            )

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def calls(self, route: str | None = None) -> int:
        """Requests received, for ``route`` only ("GET /bookmarks" or "/bookmarks")."""
        with self._lock:
            arrivals = list(self._arrivals)
        return sum(1 for seen in arrivals if route is None or _route_matches(route, seen))

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
        """Fault the ``nth`` matching call from now on (and ``count - 1`` more after it).

        ``kind``: "status" answers ``status`` (as the server's own error,
        rewritten by Accept; 502-504 as a proxy's HTML page; ``body`` overrides
        the text), "drop" closes the connection before doing the work,
        "drop_after" does the work and then closes without answering, "slow"
        waits ``seconds`` first, "die" stops the server (``stop``) instead of
        answering, the work undone. ``route`` limits it to one route."""
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

    def garble(self, bookmark_id: str, **fields: Any) -> None:
        """A data fault: from now on every answer shows these raw ``fields`` for
        the bookmark (a number past 2^63, a date in the year 10000 …) instead of what
        the server holds; exchanges while one is set are recorded with the
        fault ``"garble"``. ``clear_faults`` ends it."""
        with self._lock:
            self._garbled.setdefault(bookmark_id, {}).update(fields)

    # -- request handling ------------------------------------------------------------
    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> _Reply | None:
        if self._stopping.is_set():
            return None  # stopped: a dead server answers nothing and does nothing
        parts = urlsplit(target)
        path = parts.path
        multi = parse_qs(parts.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in multi.items()}
        headers = {k.lower(): v for k, v in headers.items()}
        route, handler, params = _resolve(method, path)
        self._garbling.hit = False
        with self._lock:
            self._arrivals.append(route)
            fault = self._take_fault(route)
        if fault is not None and fault.kind == "die":
            self.stop()
        if self.latency:
            self._stopping.wait(self.latency)
        reply: _Reply | None
        if self._stopping.is_set() or (fault is not None and fault.kind == "drop"):
            reply = None
        elif fault is not None and fault.kind == "status":
            reply = self._fault_reply(fault, headers)
        else:
            if fault is not None and fault.kind == "slow":
                self._stopping.wait(fault.seconds)
            reply = self._answer(handler, params, query, multi, headers, raw_body)
            if fault is not None and fault.kind == "drop_after":
                reply = None
        if reply is not None:
            reply.headers.setdefault("Cache-Control", "private")
            reply.headers.setdefault("Vary", "Accept")
        garbled = self._garbling.hit
        with self._lock:
            self._exchanges.append(
                Exchange(
                    method,
                    path,
                    target,
                    route,
                    query,
                    headers,
                    raw_body,
                    None if reply is None else reply.status,
                    {} if reply is None else dict(reply.headers),
                    b"" if reply is None else reply.body,
                    fault.kind if fault is not None else "garble" if garbled else None,
                )
            )
        return reply

    def _take_fault(self, route: str) -> _Fault | None:
        for fault in self._faults:
            if fault.route is not None and not _route_matches(fault.route, route):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def _fault_reply(self, fault: _Fault, headers: Mapping[str, str]) -> _Reply:
        if fault.status in (502, 503, 504) and fault.body is None:
            text = f"{fault.status} {HTTPStatus(fault.status).phrase}"
            return _Reply(fault.status, _PROXY_PAGE.format(text).encode(), _HTML)
        if fault.body is not None:
            return _Reply(fault.status, fault.body.encode(), _PLAIN)
        return _error_page(fault.status, headers.get("accept", ""))

    def _answer(
        self,
        handler: str | None,
        params: list[str],
        query: dict[str, str],
        multi: dict[str, list[str]],
        headers: Mapping[str, str],
        raw_body: bytes,
    ) -> _Reply:
        accept = headers.get("accept", "")
        try:
            if handler is None:
                raise _Status(404)
            if handler != "_info":
                self._authenticate(headers)
            body = _read_json(headers, raw_body)
            with self._lock:
                self._reap()
                reply: _Reply = getattr(self, handler)(*params, query=query, multi=multi, body=body)
        except _Unauthorized as err:
            reply = _error_page(401, accept)
            reply.headers["WWW-Authenticate"] = err.challenge
        except _Status as err:
            return _error_page(err.status, accept)
        except _FormError as err:
            return _json(err.status, _form(err.fields))
        etag = reply.headers.get("ETag")
        if etag is not None and headers.get("if-none-match") == etag:
            return _Reply(304, b"", {"ETag": etag})
        return reply

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        auth = headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            if decoded.partition(":")[2] == self.token:
                return
        elif scheme.lower() == "bearer" and credentials.strip() == self.token:
            return
        if not auth:
            raise _Unauthorized('Basic realm="Readeck Authentication", Bearer realm="Bearer token"')
        raise _Unauthorized('Bearer realm="Bearer token"')

    # -- handlers --------------------------------------------------------------------
    def _info(self, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        version = {"canonical": "0.22.3", "release": "0.22.3", "build": "fake"}
        return _json(200, {"version": version, "features": ["oauth"]})

    def _profile(self, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        return _json(200, {"user": {"username": "fake", "email": "fake@example.org"}})

    def _list(self, *, query: dict[str, str], multi: dict[str, list[str]], body: Any) -> _Reply:
        limit = _page_param(query.get("limit"), DEFAULT_PAGE)
        offset = _page_param(query.get("offset"), 0)
        if limit > MAX_PAGE:
            raise _Status(404)  # GetPageParams fails: the handler answers Not Found
        filters = {}
        for name in ("is_archived", "is_marked"):
            if query.get(name):
                filters[name] = _form_bool(name, query[name])
        rows = self._ordered()
        ids = multi.get("id")
        if ids:
            order = {bid: n for n, bid in enumerate(ids)}
            rows = sorted((b for b in rows if b.id in order), key=lambda b: order[b.id])
        rows = [b for b in rows if all(getattr(b, k) == v for k, v in filters.items())]
        page = rows[offset : offset + limit]
        answer = _json(200, [self._render(b) for b in page])
        answer.headers.update(self._pagination(query, multi, len(rows), limit, offset))
        answer.headers["ETag"] = _etag(answer.body)
        return answer

    def _pagination(
        self,
        query: dict[str, str],
        multi: dict[str, list[str]],
        total: int,
        limit: int,
        offset: int,
    ) -> dict[str, str]:
        pages = -(-total // limit) if total else 0
        last = (pages - 1) * limit if pages else 0

        def link(to: int, rel: str) -> str:
            params = [(k, v) for k, values in multi.items() for v in values if k != "offset"]
            params = [(k, v) for k, v in params if k != "limit"]
            target = urlencode([("limit", limit), ("offset", to), *params])
            return f'<{self.base_url}/api/bookmarks?{target}>; rel="{rel}"'

        links = [link(0, "first")]
        if offset > 0:
            links.append(link(max(0, offset - limit), "previous"))
        if offset + limit <= last:
            links.append(link(offset + limit, "next"))
        if last > 0:
            links.append(link(last, "last"))
        return {
            "Total-Count": str(total),
            "Total-Pages": str(pages),
            "Current-Page": str(offset // limit + 1),
            "Link": ", ".join(links),
        }

    def _get(self, bookmark_id: str, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        answer = _json(200, self._render(self._find(bookmark_id), detail=True))
        answer.headers["ETag"] = _etag(answer.body)
        return answer

    def _sync(self, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        entries: list[tuple[int, dict[str, Any]]] = []
        if "since" in query:
            since = _parse_since(query["since"])
            if since is None:
                raise _FormError(422, {"since": ["invalid datetime"]})
            cut = since // 1_000_000  # SQLite datetime(): whole seconds on both sides
            for b in self._bookmarks.values():
                if b.updated // 1_000_000 >= cut:
                    entries.append(
                        (b.updated, {"id": b.id, "time": _iso(b.updated), "type": "update"})
                    )
            for bid, when in self._removed.items():
                if when // 1_000_000 >= cut:
                    entries.append((when, {"id": bid, "time": _iso(when), "type": "delete"}))
        else:
            for b in self._bookmarks.values():
                entries.append((b.updated, {"id": b.id, "time": _iso(b.updated), "type": "update"}))
        entries.sort(key=lambda e: e[0], reverse=True)
        answer = _json(200, [entry for _, entry in entries])
        answer.headers["ETag"] = _etag(answer.body)
        return answer

    def _create(self, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        fields = body if isinstance(body, dict) else {}
        url = fields.get("url")
        errors: dict[str, list[str]] = {}
        if not isinstance(url, str) or not _is_http_url(url.strip()):
            errors["url"] = ["field is required" if not url else "invalid URL"]
        title = fields.get("title")
        if title is not None and (not isinstance(title, str) or len(title) > 1024):
            errors["title"] = ["invalid value"]
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(t, str) for t in labels):
            errors["labels"] = ["invalid value"]
        if errors:
            raise _FormError(422, errors)
        assert isinstance(url, str)
        stamp = self._stamp()
        bookmark = _Bookmark(
            id=self._new_id(),
            url=url.strip().split("#", 1)[0],
            title=title or "",
            created=stamp,
            updated=stamp,
            labels=_sorted_labels(labels),
            state=2,  # loading: extraction runs later
            lang="",
        )
        self._bookmarks[bookmark.id] = bookmark  # no duplicate detection
        location = f"{self.base_url}/api/bookmarks/{bookmark.id}"
        reply = _json(202, {"status": 202, "message": "Link submited"})
        reply.headers.update({"Location": location, "Bookmark-Id": bookmark.id})
        return reply

    def _update(self, bookmark_id: str, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        bookmark = self._find(bookmark_id)
        fields = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        for name in ("is_archived", "is_marked", "is_deleted"):
            if name in fields and fields[name] is not None and not isinstance(fields[name], bool):
                errors[name] = ["invalid boolean"]
        for name in ("labels", "add_labels", "remove_labels"):
            value = fields.get(name)
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(t, str) for t in value)
            ):
                errors[name] = ["invalid value"]
        title = fields.get("title")
        if (
            "title" in fields
            and title is not None
            and (not isinstance(title, str) or not title.strip())
        ):
            errors["title"] = ["field is required"]
        progress = fields.get("read_progress")
        if progress is not None and (
            isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100
        ):
            errors["read_progress"] = ["must be between 0 and 100"]
        if errors:
            raise _FormError(400, errors)
        changed: dict[str, Any] = {}
        for name in ("is_archived", "is_marked"):
            if fields.get(name) is not None and getattr(bookmark, name) != fields[name]:
                setattr(bookmark, name, fields[name])
                changed[name] = fields[name]
        if isinstance(title, str) and " ".join(title.split()) != bookmark.title:
            bookmark.title = " ".join(title.split())
            changed["title"] = bookmark.title
        if progress is not None and progress != bookmark.read_progress:
            bookmark.read_progress = progress
            changed["read_progress"] = progress
        if fields.get("is_deleted") is not None:
            wanted = bool(fields["is_deleted"])
            bookmark.delete_at = self._clock() / 1e6 + DELETE_DELAY if wanted else None
            changed["is_deleted"] = wanted
        labels = list(bookmark.labels)
        if fields.get("labels") is not None:  # the fixed order: labels, add, remove
            labels = list(fields["labels"])
        if fields.get("add_labels") is not None:
            labels.extend(fields["add_labels"])
        if fields.get("remove_labels") is not None:
            gone = set(fields["remove_labels"])
            labels = [t for t in labels if t not in gone]
        labels = _sorted_labels(labels)
        asked = any(fields.get(n) is not None for n in ("labels", "add_labels", "remove_labels"))
        if asked and labels != bookmark.labels:
            bookmark.labels = labels
            changed["labels"] = labels
        answer: dict[str, Any] = {"id": bookmark.id, "href": self._href(bookmark.id)}
        if changed:
            bookmark.updated = self._stamp()
            answer.update(changed)
            answer["updated"] = _iso(bookmark.updated)
        reply = _json(200, answer)
        reply.headers["Location"] = self._href(bookmark.id)
        return reply

    def _delete_bookmark(
        self, bookmark_id: str, *, query: dict[str, str], multi: Any, body: Any
    ) -> _Reply:
        self._find(bookmark_id)
        self._delete(bookmark_id)
        return _Reply(204)

    def _labels(self, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        counts: dict[str, int] = {}
        for bookmark in self._bookmarks.values():
            for label in bookmark.labels:
                counts[label] = counts.get(label, 0) + 1
        if "name" in query:  # label info: one object (the YAML says an array)
            name = query["name"].strip()
            if not name or name not in counts:
                raise _Status(404)
            return _json(200, self._label_info(name, counts[name]))
        return _json(200, [self._label_info(n, c) for n, c in sorted(counts.items())])

    def _rename_label(self, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        old = query.get("name", "").strip()
        new = body.get("name") if isinstance(body, dict) else None
        if not old:
            raise _Status(404)
        if not isinstance(new, str) or not new.strip():
            raise _FormError(400, {"name": ["field is required"]})
        touched = [b for b in self._bookmarks.values() if old in b.labels]
        if not touched:
            raise _Status(404)
        for bookmark in touched:  # onto an existing label: merged (duplicates dropped)
            bookmark.labels = _sorted_labels(
                new.strip() if t == old else t for t in bookmark.labels
            )
            bookmark.updated = self._stamp()
        return _json(200, {"name": new.strip()})

    def _delete_label(self, *, query: dict[str, str], multi: Any, body: Any) -> _Reply:
        name = query.get("name", "").strip()
        touched = [b for b in self._bookmarks.values() if name and name in b.labels]
        if not touched:
            raise _Status(404)
        for bookmark in touched:
            bookmark.labels = [t for t in bookmark.labels if t != name]
            bookmark.updated = self._stamp()
        return _Reply(204)

    # -- state -----------------------------------------------------------------------
    def _find(self, bookmark_id: str) -> _Bookmark:
        bookmark = self._bookmarks.get(bookmark_id)
        if bookmark is None:
            raise _Status(404)
        return bookmark

    def _delete(self, bookmark_id: str) -> None:
        del self._bookmarks[bookmark_id]
        self._removed[bookmark_id] = self._stamp()  # the AFTER DELETE trigger

    def _reap(self) -> None:
        """Run the deletion tasks that are due (PATCH is_deleted + 20 s)."""
        now = self._clock() / 1e6
        for bookmark in list(self._bookmarks.values()):
            if bookmark.delete_at is not None and bookmark.delete_at <= now:
                self._delete(bookmark.id)

    def _new_id(self) -> str:
        while True:
            new = "".join(self._rng.choice(_BASE58) for _ in range(22))
            if new not in self._bookmarks and new not in self._removed:
                return new

    def _ordered(self) -> list[_Bookmark]:
        return sorted(self._bookmarks.values(), key=lambda b: b.created, reverse=True)

    def _href(self, bookmark_id: str) -> str:
        return f"{self.base_url}/api/bookmarks/{bookmark_id}"

    def _label_info(self, name: str, count: int) -> dict[str, Any]:
        quoted = quote(f'"{name}"', safe="")
        return {
            "name": name,
            "count": count,
            "href": f"{self.base_url}/api/bookmarks/labels?name={quote(name, safe='')}",
            "href_bookmarks": f"{self.base_url}/api/bookmarks?labels={quoted}",
        }

    def _render(self, b: _Bookmark, *, detail: bool = False) -> dict[str, Any]:
        site = urlsplit(b.url).hostname or ""
        answer: dict[str, Any] = {
            "id": b.id,
            "href": self._href(b.id),
            "created": _iso(b.created),
            "updated": _iso(b.updated),
            "state": b.state,
            "loaded": b.state != 2,
            "url": b.url,
            "title": b.title,
            "site_name": site,
            "site": site,
            "authors": None,
            "lang": b.lang,
            "text_direction": "ltr",
            "document_type": b.type,
            "type": b.type,
            "has_article": b.type == "article" and b.state == 0,
            "description": b.description,
            "is_deleted": b.delete_at is not None,
            "is_marked": b.is_marked,
            "is_archived": b.is_archived,
            "read_progress": b.read_progress,
            "labels": list(b.labels),
            "resources": {"log": {"src": f"{self._href(b.id)}/x/log"}},
        }
        if b.word_count:  # omitempty
            answer["word_count"] = b.word_count
        if b.reading_time:
            answer["reading_time"] = b.reading_time
        if b.id in self._garbled:
            answer.update(self._garbled[b.id])
            self._garbling.hit = True
        return answer


class _Unauthorized(Exception):
    def __init__(self, challenge: str) -> None:
        super().__init__(challenge)
        self.challenge = challenge


# -- routing ---------------------------------------------------------------------------

_ROUTES = [
    ("GET", "/info", "_info"),
    ("GET", "/profile", "_profile"),
    ("GET", "/bookmarks", "_list"),
    ("POST", "/bookmarks", "_create"),
    ("GET", "/bookmarks/sync", "_sync"),
    ("GET", "/bookmarks/labels", "_labels"),
    ("PATCH", "/bookmarks/labels", "_rename_label"),
    ("DELETE", "/bookmarks/labels", "_delete_label"),
    ("GET", "/bookmarks/{id}", "_get"),
    ("PATCH", "/bookmarks/{id}", "_update"),
    ("DELETE", "/bookmarks/{id}", "_delete_bookmark"),
]
_COMPILED = [
    (m, t, h, re.compile("^" + t.replace("{id}", "([a-zA-Z0-9]{18,22})") + "$"))
    for m, t, h in _ROUTES
]


def _resolve(method: str, path: str) -> tuple[str, str | None, list[str]]:
    if path.startswith(API_PREFIX + "/"):
        relative = path[len(API_PREFIX) :]
        for route_method, template, handler, pattern in _COMPILED:
            match = pattern.match(relative)
            if match and route_method == method:
                return f"{method} {template}", handler, [unquote(g) for g in match.groups()]
    return f"{method} {path}", None, []


def _route_matches(wanted: str, route: str) -> bool:
    return wanted == route if " " in wanted else route.split(" ", 1)[1] == wanted


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeReadeck

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake readeck: connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else ~40 ms per answer (delayed ACK)
    server: _Server

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length > 0 else b""
            reply = self.server.fake._handle(
                self.command, self.path, dict(self.headers.items()), raw_body
            )
            if reply is None:
                self.close_connection = True
                return
            self.send_response(reply.status)  # sends Date, as Go's server does
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.status not in (204, 304):
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.status not in (204, 304):
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def date_time_string(self, timestamp: float | None = None) -> str:
        """``Date`` from the fake's clock (which tests may freeze), as the server's
        own; ``date_header`` instead when set."""
        fake = self.server.fake
        return fake.date_header or formatdate(fake.now, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake readeck: " + format, *args)


# -- helpers ---------------------------------------------------------------------------

_PLAIN = {"Content-Type": "text/plain; charset=utf-8"}
_HTML = {"Content-Type": "text/html; charset=utf-8"}


def _json(status: int, answer: Any) -> _Reply:
    return _Reply(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})


def _error_page(status: int, accept: str) -> _Reply:
    """``ErrorPages``: the generic status text, shaped by the request's Accept."""
    phrase = HTTPStatus(status).phrase
    wanted = _negotiate(accept)
    if wanted == "application/json":
        return _json(status, {"status": status, "message": phrase})
    if wanted == "text/plain":
        return _Reply(status, f"{phrase}\n".encode(), dict(_PLAIN))
    return _Reply(status, _HTML_PAGE.format(f"{status} {phrase}").encode(), dict(_HTML))


def _negotiate(accept: str) -> str:
    """Among text/plain, text/html, application/json; text/html when nothing names one."""
    best, best_q = "text/html", 0.0
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        q = 1.0
        match = re.search(r"q=([0-9.]+)", params)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = 0.0
        for offered in ("application/json", "text/plain", "text/html"):
            if kind.strip() == offered and q > best_q:
                best, best_q = offered, q
                break
    return best


def _form(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "is_valid": False,
        "errors": None,
        "fields": {
            name: {"is_null": False, "is_bound": True, "value": None, "errors": errors}
            for name, errors in fields.items()
        },
    }


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def _iso(micros: int) -> str:
    """Go's RFC3339Nano in UTC: the fraction trimmed of trailing zeros, or none."""
    seconds, fraction = divmod(micros, 1_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:06d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def _parse_since(text: str) -> int | None:
    """What ``dateparse.ParseAny`` reads that rulebot might send: RFC 3339, a date, unix seconds."""
    text = text.strip()
    if text.isdigit() and len(text) <= 12:
        return int(text) * 1_000_000
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1_000_000)


def _page_param(text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    if not re.fullmatch(r"\d{1,9}", text):
        raise _Status(404)  # a negative or non-integer limit/offset: Not Found
    value = int(text)
    return default if value == 0 and default == DEFAULT_PAGE else value


def _form_bool(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "t", "on"):
        return True
    if lowered in ("false", "0", "f", "off"):
        return False
    raise _FormError(422, {name: ["invalid boolean"]})


def _loose(label: str) -> str:
    """collate.Loose: case and accents ignored."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", label.casefold()) if not unicodedata.combining(c)
    )


def _sorted_labels(labels: Iterable[str]) -> list[str]:
    """Trimmed, empties dropped, sorted loosely, adjacent exact duplicates removed."""
    ordered = sorted((t.strip() for t in labels if t.strip()), key=lambda t: (_loose(t), t))
    return [t for n, t in enumerate(ordered) if n == 0 or ordered[n - 1] != t]


def _read_json(headers: Mapping[str, str], raw_body: bytes) -> Any:
    if not raw_body:
        return None
    try:
        return json.loads(raw_body)
    except ValueError:
        raise _Status(400) from None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url


# -- command line ------------------------------------------------------------------------


def seed(server: FakeReadeck, count: int, *, rng: random.Random | None = None) -> list[str]:
    """Fill ``server`` with ``count`` varied, reproducible bookmarks; returns their ids."""
    rng = rng or random.Random(20260416)
    sites = ["example.com", "blog.example.org", "news.example.net", "www.video.example"]
    labels = ["read-later", "js", "python", "news", "recipes", "work", "long-read"]
    start = server.now - 400 * 86400
    ids = []
    for number in range(count):
        site = rng.choice(sites)
        added = start + rng.randrange(400 * 86400)
        ids.append(
            server.add_bookmark(
                f"https://{site}/post/{number}",
                f"Post {number} on {site}",
                labels=rng.sample(labels, rng.choice((0, 0, 1, 2))),
                archived=rng.random() < 0.25,
                marked=rng.random() < 0.1,
                created=added,
                # never after the server's clock: a real server stamps changes with it
                updated=min(added + rng.randrange(0, 86400), server.now),
                word_count=rng.choice((0, 300, 1200, 4000)),
                lang=rng.choice(("en", "en", "de", "fr")),
                kind="video" if "video" in site else rng.choice(("article",) * 9 + ("photo",)),
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rulebot.fake.readeck",
        description="Run a fake Readeck server (its API under /api) to try rules safely.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="pre-fill N bookmarks")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    args = parser.parse_args(argv)
    if args.seed < 0 or args.latency < 0:
        parser.error("--seed and --latency must not be negative")
    token = os.environ.get("READECK_TOKEN") or DEFAULT_TOKEN  # never on the command line
    server = FakeReadeck(host=args.host, port=args.port, token=token, latency=args.latency)
    seed(server, args.seed)
    try:
        server.start()
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 1
    print(f"fake Readeck server at {server.base_url} with {args.seed} bookmarks", flush=True)
    if token == DEFAULT_TOKEN:  # never echo a token the user chose
        print(f"  export READECK_TOKEN={token}", flush=True)
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
