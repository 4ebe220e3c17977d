"""A fake Karakeep server (REST API v1) that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakeKarakeep() as server:
        bookmark_id = server.add_bookmark("https://example.com/a", tags=["js"])
        client = KarakeepClient(server.base_url, server.api_key)

    python -m rulebot.fake.karakeep --port 3000 --seed 200

What it reproduces (``specs/karakeep.md``, the server's code rather than its
OpenAPI document where the two differ): ``Authorization: Bearer`` with a
case-sensitive prefix and a plain-text 401 ``Unauthorized``; business errors
(404 ``Bookmark not found``, 400 on a tag rename onto an existing name) as
plain text, schema errors as zod JSON; keyset cursor paging on
``GET /bookmarks`` (``limit`` 1-100, default 20, ``<id>_<ISO>`` cursors that
point at the first item of the next page, ``createdAt`` then id-desc order);
query booleans only ``true``/``false``; a duplicate link POST answers 200
``alreadyExists: true`` and *un-archives* the bookmark and moves it to the
top; attaching an unknown tag name creates it; tag names are case-sensitive;
``#`` is stripped on attach but not on detach; ``attached``/``detached`` list
the resolved ids even when nothing changed; tag rename/delete do not bump
``modifiedAt``; hard deletes; 429 without ``Retry-After``. Only link
bookmarks are modelled (no text/asset bookmarks, lists, highlights or assets).

Faults are switchable per call: a status code on the Nth (matching) call,
a dropped connection before or after doing the work, added latency; a
bookmark's fields can be garbled in every answer (``garble``); every
request and its answer is recorded (``exchanges``, ``calls(route)``).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

logger = logging.getLogger("rulebot.fake.karakeep")

API_PREFIX = "/api/v1"
# The real key format (ak2_<20 hex>_<32 hex>); distinctive so tests can grep for it.
DEFAULT_API_KEY = "ak2_fa4e0000000000000000_0c0de0c0de0c0de0c0de0c0de0c0de0"
DEFAULT_USER_ID = "fakeuser0000000000000001"
MAX_PAGE = 100  # MAX_NUM_BOOKMARKS_PER_PAGE
DEFAULT_PAGE = 20  # DEFAULT_NUM_BOOKMARKS_PER_PAGE
MAX_TAG_PAGE = 1000
MAX_TITLE = 1000
FAULTS = ("status", "drop", "drop_after", "slow")
RENAME_CONFLICT = "Tag name already exists. You might want to consider a merge instead."
CREATE_CONFLICT = "Tag name already exists for this user."
_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Rate limit exceeded. Try again in 1 seconds.",
    500: "Internal server error",
}
_PROXY_PAGE = (
    "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center></body></html>"
)
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class Exchange:
    """One request as the server saw it and what it answered (None: dropped)."""

    method: str
    path: str  # without the query string
    target: str  # path plus query string, exactly as sent
    route: str  # "METHOD /template" relative to /api/v1, e.g. "PATCH /bookmarks/{id}"
    query: dict[str, str]
    headers: dict[str, str]  # keys in lower case
    raw_body: bytes
    status: int | None
    response_headers: dict[str, str]
    response_body: bytes
    fault: str | None  # the injected fault that shaped the answer, if any

    @property
    def json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None


@dataclass
class _Fault:
    kind: str
    status: int
    route: str | None
    skip: int  # matching calls to let through before firing
    remaining: int
    seconds: float
    body: str | None


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class _TextError(Exception):
    """A tRPC/Hono error: the message alone, as text/plain (never JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Invalid(Exception):
    """A zod-validator 400: JSON ``{"success": false, "error": {...}}``."""

    def __init__(self, path: list[str | int], message: str, code: str = "custom") -> None:
        super().__init__(message)
        self.issue = {"code": code, "path": path, "message": message}


@dataclass
class _Bookmark:
    id: str
    url: str
    title: str | None
    archived: bool
    favourited: bool
    created_at: int  # "last saved at": the order of the list and of cursors
    first_created_at: int
    modified_at: int | None
    note: str | None = None
    summary: str | None = None
    source: str | None = "web"
    crawled_title: str | None = None
    crawled: bool = True
    tags: dict[str, str] = field(default_factory=dict)  # tag id -> attachedBy, in order


@dataclass(frozen=True)
class KarakeepState:
    """A snapshot: bookmarks as GET renders them, and every tag id -> name."""

    bookmarks: dict[str, dict[str, Any]]
    tags: dict[str, str]

    def by_url(self, url: str) -> dict[str, Any] | None:
        return next((b for b in self.bookmarks.values() if b["content"]["url"] == url), None)

    def tag_names(self, bookmark_id: str) -> list[str]:
        return [t["name"] for t in self.bookmarks[bookmark_id]["tags"]]


class FakeKarakeep:
    """The fake server and its state; start with ``with`` or ``start()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        latency: float = 0.0,
        now: int | None = None,
        rng_seed: int = 20250708,
    ) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.latency = latency  # seconds added to every answer
        self.user_id = DEFAULT_USER_ID
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._rng = random.Random(rng_seed)
        self._bookmarks: dict[str, _Bookmark] = {}
        self._tags: dict[str, str] = {}  # id -> name (unique, case-sensitive)
        self._now = int(time.time()) if now is None else now
        self._clock_frozen = now is not None
        self._exchanges: list[Exchange] = []
        self._arrivals: list[str] = []  # route of every request, counted as it arrives
        self._faults: list[_Fault] = []
        self._garbling = threading.local()  # `hit`: this request showed a garbled item
        self._garbled: dict[str, dict[str, Any]] = {}  # raw fields shown per bookmark
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> FakeKarakeep:
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
        self._stopping.set()  # cuts latency and "slow" faults short
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeKarakeep:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The instance root, as a user would configure it (the API is under /api/v1)."""
        return f"http://{self.host}:{self.port}"

    # -- clock -------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Server time in whole seconds (the real columns are seconds)."""
        with self._lock:
            if not self._clock_frozen:
                self._now = max(self._now, int(time.time()))
            return self._now

    @now.setter
    def now(self, value: int) -> None:
        with self._lock:
            self._now, self._clock_frozen = int(value), True

    # -- test helpers --------------------------------------------------------------
    def add_bookmark(
        self,
        url: str | None = None,
        title: str | None = None,
        *,
        tags: Iterable[str] = (),
        ai_tags: Iterable[str] = (),
        archived: bool = False,
        favourited: bool = False,
        created_at: int | None = None,
        modified_at: int | None = None,
        crawled_title: str | None = None,
        note: str | None = None,
        source: str = "web",
        bookmark_id: str | None = None,
    ) -> str:
        """Put a crawled link bookmark straight into the library; tags are stored as given."""
        with self._lock:
            bookmark_id = bookmark_id or self._new_id()
            stamp = self.now if created_at is None else created_at
            bookmark = _Bookmark(
                id=bookmark_id,
                url=url or f"https://example.com/articles/{bookmark_id}",
                title=title,
                archived=archived,
                favourited=favourited,
                created_at=stamp,
                first_created_at=stamp,
                modified_at=stamp if modified_at is None else modified_at,
                note=note,
                source=source,
                crawled_title=crawled_title,
            )
            for name in tags:
                bookmark.tags.setdefault(self._tag_for(name), "human")
            for name in ai_tags:
                bookmark.tags.setdefault(self._tag_for(name), "ai")
            self._bookmarks[bookmark_id] = bookmark
            return bookmark_id

    def add_tag(self, name: str) -> str:
        with self._lock:
            return self._tag_for(name)

    @property
    def state(self) -> KarakeepState:
        with self._lock:
            return KarakeepState(
                {b.id: self._render(b) for b in self._ordered(desc=True)}, dict(self._tags)
            )

    def bookmark(self, bookmark_id: str) -> dict[str, Any]:
        with self._lock:
            return self._render(self._bookmarks[bookmark_id])

    def tag_id(self, name: str) -> str | None:
        """The id of the tag spelled exactly ``name`` (case-sensitive), if any."""
        with self._lock:
            return next((tid for tid, tname in self._tags.items() if tname == name), None)

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def calls(self, route: str | None = None) -> int:
        """Requests received, for ``route`` only if given ("GET /bookmarks" or "/bookmarks")."""
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

        ``kind``: "status" answers ``status`` (429 comes without Retry-After,
        like the real server; 502-504 come as a proxy's HTML page; ``body``
        overrides the text), "drop" closes the connection before doing the
        work, "drop_after" does the work and then closes without answering,
        "slow" waits ``seconds`` and then answers normally. ``route`` limits it
        to one route, as ``calls`` names them.
        """
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
        """Answer one request; None means: close the connection without answering."""
        if self._stopping.is_set():
            return None  # stopped: a dead server answers nothing and does nothing
        parts = urlsplit(target)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in headers.items()}
        route, handler, params = _resolve(method, path)
        self._garbling.hit = False
        with self._lock:
            self._arrivals.append(route)
            fault = self._take_fault(route)
        if self.latency:
            self._stopping.wait(self.latency)
        reply: _Reply | None
        if fault is not None and fault.kind == "drop":
            reply = None
        elif fault is not None and fault.kind == "status":
            reply = _fault_reply(fault)
        else:
            if fault is not None and fault.kind == "slow":
                self._stopping.wait(fault.seconds)
            reply = self._answer(handler, params, query, headers, raw_body)
            if fault is not None and fault.kind == "drop_after":
                reply = None
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

    def _answer(
        self,
        handler: str | None,
        params: list[str],
        query: dict[str, str],
        headers: Mapping[str, str],
        raw_body: bytes,
    ) -> _Reply:
        if handler is None:
            return _text(404, "404 Not Found")  # Hono's default for unknown routes
        if handler == "_health":
            return _json(200, {"status": "ok", "message": "Web app is working"})
        auth = headers.get("authorization", "")
        # The prefix check is exact ("Bearer ", capital B); a bad key falls back
        # to session auth, and with no session the answer is 401.
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] != self.api_key:
            return _text(401, "Unauthorized")
        try:
            body = _read_json(headers, raw_body)
            with self._lock:
                answer = getattr(self, handler)(*params, query=query, body=body)
        except _TextError as err:
            return _text(err.status, err.message)
        except _Invalid as err:
            message = json.dumps([err.issue], indent=2)
            return _json(400, {"success": False, "error": {"name": "ZodError", "message": message}})
        return answer

    # -- bookmarks ------------------------------------------------------------------
    def _list_bookmarks(self, *, query: dict[str, str], body: Any) -> _Reply:
        archived = _query_bool(query, "archived")
        favourited = _query_bool(query, "favourited")
        include_content = _query_bool(query, "includeContent") or False
        order = query.get("sortOrder", "desc")
        if order not in ("asc", "desc"):
            raise _Invalid(["sortOrder"], 'Invalid option: expected one of "asc"|"desc"')
        limit = _query_limit(query.get("limit"))
        rows = [
            b
            for b in self._ordered(desc=order == "desc")
            if (archived is None or b.archived == archived)
            and (favourited is None or b.favourited == favourited)
        ]
        if "cursor" in query:
            cursor_id, cursor_at = _parse_cursor(query["cursor"])
            rows = [b for b in rows if _after_cursor(b, cursor_id, cursor_at, order == "desc")]
        page, extra = rows[:limit], rows[limit : limit + 1]
        next_cursor = f"{extra[0].id}_{_iso(extra[0].created_at)}" if extra else None
        rendered = [self._render(b, include_content=include_content) for b in page]
        return _json(200, {"bookmarks": rendered, "nextCursor": next_cursor})

    def _get_bookmark(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        include_content = _query_bool(query, "includeContent") or False
        bookmark = self._find(bookmark_id)
        return _json(200, self._render(bookmark, include_content=include_content))

    def _create_bookmark(self, *, query: dict[str, str], body: Any) -> _Reply:
        fields = _object(body)
        if fields.get("type") != "link":
            raise _Invalid(["type"], "this fake models link bookmarks only (type: link)")
        url = fields.get("url")
        if not isinstance(url, str) or not _is_http_url(url.strip()):
            raise _Invalid(["url"], "Only http and https URLs are allowed")
        url = url.strip()
        updates = _common_fields(fields)
        source = fields.get("source", "api")
        if source not in (
            "api",
            "web",
            "cli",
            "mobile",
            "extension",
            "singlefile",
            "rss",
            "import",
        ):
            raise _Invalid(["source"], "Invalid option for source")
        existing = next((b for b in self._bookmarks.values() if b.url == url), None)
        if existing is not None:
            return self._resave(existing, updates, source)
        now = self.now
        bookmark = _Bookmark(
            id=self._new_id(),
            url=url,
            title=updates.get("title"),
            archived=bool(updates.get("archived", False)),
            favourited=bool(updates.get("favourited", False)),
            created_at=updates.get("createdAt", now),
            first_created_at=now,
            modified_at=now,
            note=updates.get("note"),
            summary=updates.get("summary"),
            source=source,
            crawled=False,  # crawling, tagging and summarizing happen later, in workers
        )
        self._bookmarks[bookmark.id] = bookmark
        rendered = self._render(bookmark)
        del rendered["firstCreatedAt"]  # absent from the create answer, present later
        return _json(201, {**rendered, "alreadyExists": False})

    def _resave(self, bookmark: _Bookmark, updates: dict[str, Any], source: str) -> _Reply:
        """A duplicate link POST (v0.33.1+): un-archives and moves it to the top."""
        if source in ("rss", "import"):
            return _json(200, {**self._render(bookmark), "alreadyExists": True})
        now = self.now
        bookmark.created_at = updates.get("createdAt", now)
        bookmark.archived = bool(updates.get("archived", False))
        for key, attr in (("title", "title"), ("favourited", "favourited"), ("note", "note")):
            if key in updates:
                setattr(bookmark, attr, updates[key])
        if "summary" in updates:
            bookmark.summary = updates["summary"]
        bookmark.modified_at = now
        rendered = self._render(bookmark)
        # The answer echoes an in-memory Date: milliseconds that a later GET drops.
        millis = (time.time_ns() // 1_000_000) % 1000 or 1
        if "createdAt" not in updates:
            rendered["createdAt"] = _iso(now, millis)
        rendered["modifiedAt"] = _iso(now, millis)
        return _json(200, {**rendered, "alreadyExists": True})

    def _update_bookmark(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        fields = _object(body)
        updates = _common_fields(fields)
        if "url" in fields:
            url = fields["url"]
            if not isinstance(url, str) or not _is_http_url(url.strip()):
                raise _Invalid(["url"], "Only http and https URLs are allowed")
            updates["url"] = url.strip()
        bookmark = self._find(bookmark_id)
        for key, value in updates.items():
            setattr(bookmark, _ATTRS[key], value)
        if updates:  # {} is a no-op that still answers 200
            bookmark.modified_at = self.now
        return _json(200, self._render(bookmark))  # the full bookmark, not the spec's bare one

    def _delete_bookmark(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        self._find(bookmark_id)
        del self._bookmarks[bookmark_id]  # hard delete: no tombstone
        return _Reply(204)

    def _attach_tags(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        entries = _tag_entries(body)
        bookmark = self._find(bookmark_id)
        by_id = [e["tagId"] for e in entries if e.get("tagId") in self._tags]
        by_name: list[tuple[str, str]] = []
        for entry in entries:
            name = _normalise_tag(entry.get("tagName") or "")
            if name:  # a name that normalizes to "" is skipped silently
                by_name.append((self._tag_for(name), entry.get("attachedBy", "human")))
        attached = list(dict.fromkeys([*by_id, *(tid for tid, _ in by_name)]))
        changed = False
        wanted = [(tid, _by(entries, tid)) for tid in by_id] + by_name
        for tag_id, attached_by in wanted:
            if tag_id not in bookmark.tags:  # ON CONFLICT DO NOTHING: attachedBy kept
                bookmark.tags[tag_id] = attached_by
                changed = True
        if changed:
            bookmark.modified_at = self.now
        return _json(200, {"attached": attached})

    def _detach_tags(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        entries = _tag_entries(body)
        bookmark = self._find(bookmark_id)
        ids = [e["tagId"] for e in entries if e.get("tagId") in self._tags]
        names = {e["tagName"] for e in entries if e.get("tagName")}  # raw: no normalization
        ids += [tid for tid, name in self._tags.items() if name in names]
        detached = list(dict.fromkeys(ids))
        removed = [tid for tid in detached if bookmark.tags.pop(tid, None) is not None]
        if removed:
            bookmark.modified_at = self.now
        return _json(200, {"detached": detached})

    # -- tags -------------------------------------------------------------------------
    def _list_tags(self, *, query: dict[str, str], body: Any) -> _Reply:
        sort = query.get("sort", "usage")
        if sort not in ("usage", "name", "relevance"):
            raise _Invalid(["sort"], 'Invalid option: expected one of "name"|"usage"|"relevance"')
        contains = query.get("nameContains")
        if sort == "relevance" and not contains:
            raise _TextError(400, "Relevance sorting requires a nameContains filter")
        tags = [self._render_tag(tid) for tid in self._tags]
        if contains:
            tags = [t for t in tags if contains.lower() in t["name"].lower()]
        attached_by = query.get("attachedBy")
        if attached_by == "ai":
            tags = [t for t in tags if t["numBookmarksByAttachedType"]["human"] == 0]
            tags = [t for t in tags if t["numBookmarksByAttachedType"]["ai"] > 0]
        elif attached_by == "human":
            tags = [t for t in tags if t["numBookmarksByAttachedType"]["human"] > 0]
        elif attached_by == "none":
            tags = [t for t in tags if t["numBookmarks"] == 0]
        elif attached_by is not None:
            raise _Invalid(["attachedBy"], 'Invalid option: expected one of "ai"|"human"|"none"')
        tags.sort(key=lambda t: t["name"])
        if sort == "usage":
            tags.sort(key=lambda t: -t["numBookmarks"])
        if "limit" not in query:  # no limit: every tag in one answer
            return _json(200, {"tags": tags, "nextCursor": None})
        limit = _whole_number(query["limit"], "limit", minimum=1)
        if limit > MAX_TAG_PAGE:
            raise _TextError(400, f"limit must be at most {MAX_TAG_PAGE}")
        page = _tag_page(query.get("cursor"))
        chunk = tags[page * limit : (page + 1) * limit]
        more = len(tags) > (page + 1) * limit
        return _json(200, {"tags": chunk, "nextCursor": _tag_cursor(page + 1) if more else None})

    def _get_tag(self, tag_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        self._find_tag(tag_id)
        return _json(200, self._render_tag(tag_id))

    def _create_tag(self, *, query: dict[str, str], body: Any) -> _Reply:
        name = _tag_name(_object(body))
        if name in self._tags.values():
            raise _TextError(400, CREATE_CONFLICT)
        return _json(201, {"id": self._tag_for(name), "name": name})

    def _rename_tag(self, tag_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        fields = _object(body)
        self._find_tag(tag_id)
        if "name" not in fields:  # reaches an empty DB update (inferred in karakeep.md)
            raise _TextError(500, "Internal server error")
        name = _tag_name(fields)
        if any(n == name and tid != tag_id for tid, n in self._tags.items()):
            raise _TextError(400, RENAME_CONFLICT)  # no automatic merge
        self._tags[tag_id] = name  # bookmarks' modifiedAt is not bumped
        return _json(200, {"id": tag_id, "name": name})

    def _delete_tag(self, tag_id: str, *, query: dict[str, str], body: Any) -> _Reply:
        self._find_tag(tag_id)
        del self._tags[tag_id]
        for bookmark in self._bookmarks.values():
            bookmark.tags.pop(tag_id, None)  # cascade; modifiedAt is not bumped
        return _Reply(204)

    def _me(self, *, query: dict[str, str], body: Any) -> _Reply:
        user = {"id": self.user_id, "name": "Fake User", "email": "fake@example.com"}
        return _json(200, {**user, "image": None, "localUser": True})

    # -- state helpers ------------------------------------------------------------------
    def _find(self, bookmark_id: str) -> _Bookmark:
        bookmark = self._bookmarks.get(bookmark_id)
        if bookmark is None:
            raise _TextError(404, "Bookmark not found")
        return bookmark

    def _find_tag(self, tag_id: str) -> str:
        if tag_id not in self._tags:
            raise _TextError(404, "Tag not found")
        return self._tags[tag_id]

    def _tag_for(self, name: str) -> str:
        """The id of tag ``name`` (exact case), created if missing."""
        for tag_id, existing in self._tags.items():
            if existing == name:
                return tag_id
        tag_id = self._new_id()
        self._tags[tag_id] = name
        return tag_id

    def _new_id(self) -> str:
        """A cuid2-shaped id: 24 lower-case alphanumerics starting with a letter, no ``_``."""
        while True:
            tail = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(23))
            new = self._rng.choice(_ID_ALPHABET[:26]) + tail
            if new not in self._bookmarks and new not in self._tags:
                return new

    def _ordered(self, *, desc: bool) -> list[_Bookmark]:
        """createdAt in the requested order, then id descending in both orders."""
        rows = sorted(self._bookmarks.values(), key=lambda b: b.id, reverse=True)
        return sorted(rows, key=lambda b: b.created_at, reverse=desc)

    def _render(self, bookmark: _Bookmark, *, include_content: bool = False) -> dict[str, Any]:
        status = "success" if bookmark.crawled else "pending"
        tags = [
            {"id": tid, "name": self._tags[tid], "attachedBy": by}
            for tid, by in sorted(bookmark.tags.items(), key=lambda kv: kv[1] == "ai")
        ]
        html = f"<p>{bookmark.crawled_title or bookmark.url}</p>" if bookmark.crawled else None
        content = {
            "type": "link",
            "url": bookmark.url,
            "title": bookmark.crawled_title if bookmark.crawled else None,
            "description": None,
            "imageUrl": None,
            "imageAssetId": None,
            "screenshotAssetId": None,
            "favicon": None,
            "htmlContent": html if include_content else None,
            "crawledAt": _iso(bookmark.first_created_at) if bookmark.crawled else None,
            "crawlStatus": status,
            "author": None,
            "publisher": None,
            "datePublished": None,
            "dateModified": None,
        }
        answer = {  # built fresh on every call: callers may keep or change it
            "id": bookmark.id,
            "createdAt": _iso(bookmark.created_at),
            "modifiedAt": None if bookmark.modified_at is None else _iso(bookmark.modified_at),
            "title": bookmark.title,
            "archived": bookmark.archived,
            "favourited": bookmark.favourited,
            "taggingStatus": status,
            "summarizationStatus": status,
            "embeddingStatus": status,
            "note": bookmark.note,
            "summary": bookmark.summary,
            "source": bookmark.source,
            "userId": self.user_id,
            "tags": tags,
            "content": content,
            "assets": [],
            "firstCreatedAt": _iso(bookmark.first_created_at),
        }
        if bookmark.id in self._garbled:
            answer.update(self._garbled[bookmark.id])
            self._garbling.hit = True
        return answer

    def _render_tag(self, tag_id: str) -> dict[str, Any]:
        kinds = [b.tags[tag_id] for b in self._bookmarks.values() if tag_id in b.tags]
        counts = {"ai": kinds.count("ai"), "human": kinds.count("human")}
        return {
            "id": tag_id,
            "name": self._tags[tag_id],
            "numBookmarks": len(kinds),
            "numBookmarksByAttachedType": counts,
        }


_ATTRS = {
    "title": "title",
    "archived": "archived",
    "favourited": "favourited",
    "note": "note",
    "summary": "summary",
    "createdAt": "created_at",
    "url": "url",
}

# (method, template relative to /api/v1, handler); {id} matches one path segment
_ROUTES = (
    ("GET", "/bookmarks", "_list_bookmarks"),
    ("POST", "/bookmarks", "_create_bookmark"),
    ("GET", "/bookmarks/{id}", "_get_bookmark"),
    ("PATCH", "/bookmarks/{id}", "_update_bookmark"),
    ("DELETE", "/bookmarks/{id}", "_delete_bookmark"),
    ("POST", "/bookmarks/{id}/tags", "_attach_tags"),
    ("DELETE", "/bookmarks/{id}/tags", "_detach_tags"),
    ("GET", "/tags", "_list_tags"),
    ("POST", "/tags", "_create_tag"),
    ("GET", "/tags/{id}", "_get_tag"),
    ("PATCH", "/tags/{id}", "_rename_tag"),
    ("DELETE", "/tags/{id}", "_delete_tag"),
    ("GET", "/users/me", "_me"),
)
_COMPILED = [
    (method, template, handler, re.compile("^" + template.replace("{id}", "([^/]+)") + "$"))
    for method, template, handler in _ROUTES
]


def _resolve(method: str, path: str) -> tuple[str, str | None, list[str]]:
    """(route key, handler name or None, path parameters)."""
    if path == "/api/health":
        return f"{method} /api/health", "_health" if method == "GET" else None, []
    if path.startswith(API_PREFIX + "/"):
        relative = path[len(API_PREFIX) :]
        for route_method, template, handler, pattern in _COMPILED:
            match = pattern.match(relative)
            if match and route_method == method:
                return f"{method} {template}", handler, [unquote(g) for g in match.groups()]
    return f"{method} {path}", None, []


def _route_matches(wanted: str, route: str) -> bool:
    """ "GET /bookmarks" matches that route only; "/bookmarks" matches every method."""
    return wanted == route if " " in wanted else route.split(" ", 1)[1] == wanted


# -- HTTP plumbing ---------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeKarakeep

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake karakeep: connection error", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real server behind its proxy
    # Headers and body go out in two writes; with Nagle on, the body waits for
    # the client's delayed ACK of the headers: ~40 ms added to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length > 0 else b""
            headers = dict(self.headers.items())
            reply = self.server.fake._handle(self.command, self.path, headers, raw_body)
            if reply is None:
                self.close_connection = True
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (timeout) before we answered
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake karakeep: " + format, *args)


# -- helpers ------------------------------------------------------------------------------


def _json(status: int, answer: Any) -> _Reply:
    return _Reply(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})


def _text(status: int, message: str) -> _Reply:
    return _Reply(status, message.encode(), {"Content-Type": "text/plain; charset=UTF-8"})


def _fault_reply(fault: _Fault) -> _Reply:
    if fault.status in (502, 503, 504) and fault.body is None:
        reason = {
            502: "502 Bad Gateway",
            503: "503 Service Unavailable",
            504: "504 Gateway Time-out",
        }
        page = _PROXY_PAGE.format(reason[fault.status])
        return _Reply(fault.status, page.encode(), {"Content-Type": "text/html"})
    message = fault.body if fault.body is not None else _STATUS_TEXT.get(fault.status, "Error")
    return _text(fault.status, message)  # 429 included: no Retry-After, no X-RateLimit-*


def _iso(seconds: int, millis: int = 0) -> str:
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def _parse_date(text: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _read_json(headers: Mapping[str, str], raw_body: bytes) -> Any:
    """The body as Hono's json validator sees it: read only for a JSON content type."""
    if "application/json" not in headers.get("content-type", "") or not raw_body.strip():
        return {}
    try:
        return json.loads(raw_body)
    except (ValueError, RecursionError):
        raise _TextError(400, "Malformed JSON in request body") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Invalid([], "Invalid input: expected object", "invalid_type")
    return body


def _common_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """archived/favourited/title/note/summary/createdAt, checked as zod would."""
    updates: dict[str, Any] = {}
    for key in ("archived", "favourited"):
        if key in fields:
            if not isinstance(fields[key], bool):
                raise _Invalid([key], "Invalid input: expected boolean", "invalid_type")
            updates[key] = fields[key]
    for key, nullable in (("title", True), ("note", False), ("summary", True)):
        if key in fields:
            value = fields[key]
            if not (isinstance(value, str) or (value is None and nullable)):
                raise _Invalid([key], "Invalid input: expected string", "invalid_type")
            if key == "title" and isinstance(value, str) and len(value) > MAX_TITLE:
                raise _Invalid([key], f"Too big: expected string to have <={MAX_TITLE} characters")
            updates[key] = value
    if "createdAt" in fields:
        stamp = _parse_date(fields["createdAt"]) if isinstance(fields["createdAt"], str) else None
        if stamp is None:
            raise _Invalid(["createdAt"], "Invalid input: expected date", "invalid_type")
        updates["createdAt"] = stamp
    return updates


def _query_bool(query: Mapping[str, str], name: str) -> bool | None:
    """Only the literal strings "true"/"false" (zStringBool); 1, yes, ... are a 400."""
    if name not in query:
        return None
    if query[name] not in ("true", "false"):
        raise _Invalid([name], 'Invalid option: expected one of "true"|"false"')
    return query[name] == "true"


def _whole_number(text: str, name: str, *, minimum: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise _Invalid([name], "Invalid input: expected number", "invalid_type") from None
    if value != int(value) or value < minimum:
        raise _Invalid([name], f"{name} must be a whole number >= {minimum}")
    return int(value)


def _query_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    limit = _whole_number(text, "limit", minimum=1)
    if limit > MAX_PAGE:
        raise _Invalid(["limit"], f"Too big: expected number to be <={MAX_PAGE}", "too_big")
    return limit


def _parse_cursor(cursor: str) -> tuple[str, int]:
    """``<id>_<ISO createdAt>``: the first item of the next page."""
    cursor_id, sep, stamp = cursor.partition("_")
    at = _parse_date(stamp) if sep else None
    if at is None:
        raise _Invalid(["cursor"], "Invalid cursor")
    return cursor_id, at


def _after_cursor(bookmark: _Bookmark, cursor_id: str, at: int, desc: bool) -> bool:
    """Inclusive on id, so the cursor row itself starts the next page."""
    earlier = bookmark.created_at < at if desc else bookmark.created_at > at
    return earlier or (bookmark.created_at == at and bookmark.id <= cursor_id)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url


def _normalise_tag(name: str) -> str:
    """normalizeTagName: trim, then strip every leading ``#``."""
    return name.strip().lstrip("#")


def _tag_name(fields: Mapping[str, Any]) -> str:
    raw = fields.get("name")
    name = _normalise_tag(raw) if isinstance(raw, str) else ""
    if not name:
        raise _Invalid(["name"], "Tag name can't be empty")
    return name


def _tag_entries(body: Any) -> list[dict[str, Any]]:
    tags = _object(body).get("tags")
    if not isinstance(tags, list):
        raise _Invalid(["tags"], "Invalid input: expected array", "invalid_type")
    for index, entry in enumerate(tags):
        if not isinstance(entry, dict):
            raise _Invalid(["tags", index], "Invalid input: expected object", "invalid_type")
        if not any(isinstance(entry.get(k), str) and entry[k] for k in ("tagId", "tagName")):
            raise _Invalid(["tags", index], "You must provide either a tagId or a tagName")
        if entry.get("attachedBy", "human") not in ("human", "ai"):
            raise _Invalid(["tags", index, "attachedBy"], "Invalid option")
    return tags


def _by(entries: list[dict[str, Any]], tag_id: str) -> str:
    return next(e.get("attachedBy", "human") for e in entries if e.get("tagId") == tag_id)


def _tag_cursor(page: int) -> str:
    raw = json.dumps({"page": page}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _tag_page(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        page = decoded["page"]
    except (ValueError, TypeError, KeyError):
        raise _TextError(400, "Invalid cursor") from None
    if not isinstance(page, int) or page < 0:
        raise _TextError(400, "Invalid cursor")
    return page


# -- command line ------------------------------------------------------------------------


def seed(server: FakeKarakeep, count: int, *, rng: random.Random | None = None) -> list[str]:
    """Fill ``server`` with ``count`` varied, reproducible bookmarks; returns their ids."""
    rng = rng or random.Random(20250708)
    sites = ["example.com", "blog.example.org", "news.example.net", "www.video.example"]
    tags = ["read-later", "js", "python", "news", "recipes", "work", "long-read"]
    start = server.now - 400 * 86400
    ids = []
    for number in range(count):
        site = rng.choice(sites)
        added = start + rng.randrange(400 * 86400)
        ids.append(
            server.add_bookmark(
                f"https://{site}/post/{number}",
                title=None if rng.random() < 0.3 else f"Post {number} on {site}",
                crawled_title=f"Crawled: post {number}",
                tags=rng.sample(tags, rng.choice((0, 0, 1, 2))),
                archived=rng.random() < 0.25,
                favourited=rng.random() < 0.1,
                created_at=added,
                modified_at=added + rng.randrange(0, 86400),
            )
        )
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rulebot.fake.karakeep",
        description="Run a fake Karakeep server (REST API v1 under /api/v1) to try rules safely.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="0 picks a free port")
    parser.add_argument(
        "--api-key",
        default=None,
        help="the key clients must send (default: $KARAKEEP_API_KEY, else a built-in test key)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="pre-fill N bookmarks")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    args = parser.parse_args(argv)
    if args.seed < 0 or args.latency < 0:
        parser.error("--seed and --latency must not be negative")
    api_key = args.api_key or os.environ.get("KARAKEEP_API_KEY") or DEFAULT_API_KEY
    server = FakeKarakeep(host=args.host, port=args.port, api_key=api_key, latency=args.latency)
    seed(server, args.seed)
    try:
        server.start()
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 1
    print(f"fake Karakeep server at {server.base_url} with {args.seed} bookmarks", flush=True)
    if api_key == DEFAULT_API_KEY:  # never echo a key the user chose
        print(f"  export KARAKEEP_API_KEY={api_key}", flush=True)
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
