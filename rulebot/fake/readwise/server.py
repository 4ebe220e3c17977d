"""The fake Readwise Reader server: the v3 routes and their answers
(``specs/readwise-reader.md``), on the documents of :mod:`.model`."""

from __future__ import annotations

import base64
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from rulebot.fake.base import FakeServer, Fault, Reply, Request, Routes, json_reply, parse_iso
from rulebot.fake.readwise.model import (
    CATEGORIES,
    LOCATIONS,
    NEW_READER_URL,
    WRITABLE_LOCATIONS,
    ApiError,
    Document,
    new_id,
)

API_PREFIX = "/api/v3"
DEFAULT_TOKEN = "rw_fake_0c0de0c0de0c0de0c0de0c0de0c0de0c0de0c0de0c0de"
FAULTS = ("status", "drop", "drop_after", "slow", "die")
# the documented limits per token (spec §2): save and update 50/min, all else 20/min
RATE_LIMITS = {"list": 20, "update": 50}
MAX_PAGE = 100
MAX_BULK = 50
THROTTLED = "Request was throttled. Expected available in {n} seconds."

# (method, template relative to /api/v3, handler); the docs' samples leave the
# trailing slash off for update and delete, so both spellings are taken
_ROUTES = Routes(
    (
        ("GET", "/list", "_list"),
        ("POST", "/save", "_save"),
        ("PATCH", "/update/{id}", "_update"),
        ("PATCH", "/bulk_update", "_bulk_update"),
        ("DELETE", "/delete/{id}", "_delete"),
        ("GET", "/tags", "_tags"),
    ),
    prefix=API_PREFIX,
    suffix="/?",
)


class FakeReadwise(FakeServer):
    """The fake server and its documents; start with ``with`` or ``start()``.

    ``rate_limits``: requests per minute per class, as the service counts them
    (None: no limits; a test paces on rulebot's side alone)."""

    name = "readwise"
    FAULTS: ClassVar[tuple[str, ...]] = FAULTS
    routes = _ROUTES

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        latency: float = 0.0,
        now: int | None = None,
        rate_limits: Mapping[str, int] | None = RATE_LIMITS,
        rng_seed: int = 20250708,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.token = token
        self.rate_limits = dict(rate_limits or {})
        self.docs: dict[str, Document] = {}
        self._rng = random.Random(rng_seed)
        self._tick = 0  # orders changes within one second of a frozen clock
        self._windows: dict[str, deque[float]] = {}
        self._rate_lock = threading.Lock()

    # -- the library, as another client (or a test) changes it -------------------
    def add_document(
        self,
        url: str,
        *,
        title: str = "",
        tags: Iterable[str] = (),
        location: str = "new",
        category: str = "article",
        created_at: float | None = None,
        updated_at: float | None = None,
        word_count: int | None = None,
        parent_id: str | None = None,
        summary: str = "",
        site_name: str = "",
    ) -> str:
        with self._lock:
            now = float(self.now)
            created = created_at if created_at is not None else now
            doc = Document(
                new_id(self._rng),
                url,
                title=title,
                summary=summary,
                site_name=site_name,
                category=category,
                location=location,
                word_count=word_count,
                parent_id=parent_id,
                created_at=created,
                saved_at=created,
                last_moved_at=created,
                updated_at=updated_at if updated_at is not None else created,
            )
            doc.set_tags(list(tags), created)
            self.docs[doc.id] = doc
            return doc.id

    def change(self, doc_id: str, **fields: Any) -> None:
        """Change a document as the app would (``tags`` a list of names); it is updated now."""
        with self._lock:
            doc = self.docs[doc_id]
            now = self._stamp()
            if "tags" in fields:
                doc.set_tags(list(fields.pop("tags")), now)
            if "location" in fields and fields["location"] != doc.location:
                doc.last_moved_at = now
            for key, value in fields.items():
                setattr(doc, key, value)
            doc.updated_at = now

    def remove(self, doc_id: str) -> None:
        with self._lock:
            del self.docs[doc_id]

    def _stamp(self) -> float:
        """Now, and later than any change before it (a frozen clock still orders changes)."""
        self._tick += 1
        return float(self.now) + self._tick / 1_000_000

    # -- request handling ------------------------------------------------------------
    def _resolve(self, method: str, path: str) -> tuple[str, str | None, list[str]]:
        if path.rstrip("/") == "/api/v2/auth":
            return f"{method} /api/v2/auth", "_auth" if method == "GET" else None, []
        return super()._resolve(method, path)

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        handler = request.handler
        if handler is None:
            return Reply(404, b"<h1>Not Found</h1>", {"Content-Type": "text/html"})
        auth = request.headers.get("authorization", "")
        if auth != f"Token {self.token}":
            return json_reply(401, {"detail": "Invalid token."})
        waited = self._throttled(_rate_class(request.method, handler))
        if waited:
            reply = json_reply(429, {"detail": THROTTLED.format(n=waited)})
            reply.headers["Retry-After"] = str(waited)
            return reply
        if handler == "_auth":
            return Reply(204)
        try:
            body = _json_body(request)
            with self._lock:
                status, answer = getattr(self, handler)(
                    *request.params, query=request.query, multi=request.multi, body=body
                )
        except ApiError as err:
            return json_reply(err.status, err.body)
        if status == 204:
            return Reply(204)
        return json_reply(status, answer)

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.status == 429:
            n = fault.retry_after or 1
            return json_reply(
                429, {"detail": THROTTLED.format(n=n)}, headers={"Retry-After": str(n)}
            )
        body = fault.body if fault.body is not None else json.dumps({"detail": "Server Error"})
        return Reply(fault.status, body.encode(), {"Content-Type": "application/json"})

    def _throttled(self, rate_class: str) -> int:
        """Seconds until a request of ``rate_class`` is allowed (0: now; counted)."""
        limit = self.rate_limits.get(rate_class)
        if not limit:
            return 0
        with self._rate_lock:
            now = time.monotonic()
            window = self._windows.setdefault(rate_class, deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                return max(1, math.ceil(window[0] + 60 - now))
            window.append(now)
            return 0

    # -- routes ---------------------------------------------------------------------
    def _list(self, *, query: dict[str, str], multi: dict[str, list[str]], body: Any) -> Any:
        docs = list(self.docs.values())
        if "id" in query:
            docs = [d for d in docs if d.id == query["id"]]
        if "updatedAfter" in query:
            after = parse_iso(query["updatedAfter"])
            if after is None:
                raise ApiError(400, {"updatedAfter": ["Enter a valid date/time."]})
            docs = [d for d in docs if d.updated_at > after.timestamp()]
        if "location" in query:
            if query["location"] not in LOCATIONS:
                raise ApiError(400, {"location": [f'"{query["location"]}" is not a valid choice.']})
            docs = [d for d in docs if d.location == query["location"]]
        if "category" in query:
            if query["category"] not in CATEGORIES:
                raise ApiError(400, {"category": [f'"{query["category"]}" is not a valid choice.']})
            docs = [d for d in docs if d.category == query["category"]]
        wanted = multi.get("tag", [])
        if len(wanted) > 5:
            raise ApiError(400, {"tag": ["At most 5 tags."]})
        for tag in wanted:
            if tag == "":
                docs = [d for d in docs if not d.tags]
            else:
                docs = [d for d in docs if tag in d.tags]
        limit = _limit(query.get("limit"))
        # newest first, by (created, id): a keyset cursor never skips or repeats
        docs.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        start = 0
        if query.get("pageCursor"):
            key = _cursor_key(query["pageCursor"])
            start = next((i for i, d in enumerate(docs) if (d.created_at, d.id) < key), len(docs))
        page = docs[start : start + limit]
        more = start + limit < len(docs)
        html = query.get("withHtmlContent") == "true"
        return 200, {
            "count": len(docs),
            "nextPageCursor": _cursor(page[-1]) if more and page else None,
            "results": [self._shown(d.id, d.to_json(html=html)) for d in page],
        }

    def _save(self, *, query: dict[str, str], multi: Any, body: Any) -> Any:
        body = _object(body)
        url = body.get("url")
        if not isinstance(url, str) or not url.strip():
            raise ApiError(400, {"url": ["This field is required."]})
        existing = next((d for d in self.docs.values() if d.source_url == url), None)
        if existing is not None:  # the url identifies the document: the existing one
            return 200, {"id": existing.id, "url": NEW_READER_URL.format(id=existing.id)}
        location = body.get("location", "new")
        if location not in WRITABLE_LOCATIONS:
            location = "new"  # a location the user has not enabled: their default
        category = body.get("category", "article")
        if category not in CATEGORIES:
            raise ApiError(400, {"category": [f'"{category}" is not a valid choice.']})
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ApiError(400, {"tags": ["Expected a list of items."]})
        now = self._stamp()
        doc = Document(
            new_id(self._rng),
            url,
            title=str(body.get("title") or ""),
            summary=str(body.get("summary") or ""),
            author=str(body.get("author") or ""),
            category=category,
            location=location,
            notes=str(body.get("notes") or ""),
            created_at=now,
            updated_at=now,
            saved_at=now,
            last_moved_at=now,
        )
        doc.set_tags(tags, now)
        self.docs[doc.id] = doc
        return 201, {"id": doc.id, "url": NEW_READER_URL.format(id=doc.id)}

    def _update(self, doc_id: str, *, query: Any, multi: Any, body: Any) -> Any:
        doc = self.docs.get(doc_id)
        if doc is None:
            raise ApiError(404, {"detail": "Not found."})
        self._apply_update(doc, _object(body))
        return 200, {"id": doc.id, "url": NEW_READER_URL.format(id=doc.id)}

    def _apply_update(self, doc: Document, body: Mapping[str, Any]) -> None:
        if "location" in body and body["location"] not in WRITABLE_LOCATIONS:
            raise ApiError(400, {"location": [f'"{body["location"]}" is not a valid choice.']})
        if "tags" in body and (
            not isinstance(body["tags"], list) or not all(isinstance(t, str) for t in body["tags"])
        ):
            raise ApiError(400, {"tags": ["Expected a list of items."]})
        if "seen" in body and not isinstance(body["seen"], bool):
            raise ApiError(400, {"seen": ["Must be a valid boolean."]})
        now = self._stamp()
        for key in ("title", "author", "summary", "image_url", "published_date", "category"):
            if key in body:
                setattr(doc, key, body[key])
        if "location" in body and body["location"] != doc.location:
            doc.location, doc.last_moved_at = body["location"], now
        if "seen" in body:
            doc.first_opened_at = (doc.first_opened_at or now) if body["seen"] else None
            doc.last_opened_at = now if body["seen"] else None
        if "tags" in body:
            doc.set_tags(body["tags"], now)
        doc.updated_at = now

    def _bulk_update(self, *, query: Any, multi: Any, body: Any) -> Any:
        updates = _object(body).get("updates")
        if not isinstance(updates, list) or not updates:
            raise ApiError(400, {"updates": ["This field is required."]})
        if len(updates) > MAX_BULK:
            raise ApiError(
                400, {"updates": [f"Ensure this field has no more than {MAX_BULK} elements."]}
            )
        results = []
        for update in updates:
            doc = self.docs.get(str(update.get("id"))) if isinstance(update, dict) else None
            if doc is None:
                results.append(
                    {"id": update.get("id") if isinstance(update, dict) else None, "success": False}
                )
                continue
            self._apply_update(doc, update)
            results.append({"id": doc.id, "success": True})
        return 200, {"results": results}  # the real body is unconfirmed (spec §7)

    def _delete(self, doc_id: str, *, query: Any, multi: Any, body: Any) -> Any:
        if doc_id not in self.docs:
            raise ApiError(404, {"detail": "Not found."})
        del self.docs[doc_id]
        return 204, None

    def _tags(self, *, query: dict[str, str], multi: Any, body: Any) -> Any:
        names: dict[str, str] = {}
        for doc in self.docs.values():
            for key, value in doc.tags.items():
                names.setdefault(key, str(value.get("name", key)))
        keys = sorted(names)
        limit = _limit(query.get("limit"))
        start = int(query["pageCursor"]) if query.get("pageCursor", "").isdigit() else 0
        page = keys[start : start + limit]
        more = start + limit < len(keys)
        return 200, {
            "count": len(keys),
            "nextPageCursor": str(start + limit) if more else None,
            "results": [{"key": key, "name": names[key]} for key in page],
        }


def _rate_class(method: str, handler: str) -> str:
    return "update" if handler in ("_save", "_update") else "list"


def _json_body(request: Request) -> Any:
    if not request.raw_body:
        return None
    try:
        return json.loads(request.raw_body)
    except ValueError:
        raise ApiError(400, {"detail": "JSON parse error"}) from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, {"non_field_errors": ["Invalid data. Expected a dictionary."]})
    return body


def _limit(text: str | None) -> int:
    if text is None:
        return MAX_PAGE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise ApiError(400, {"limit": [f"Ensure this value is between 1 and {MAX_PAGE}."]})
    return int(text)


def _cursor(doc: Document) -> str:
    return base64.urlsafe_b64encode(f"{doc.created_at!r}|{doc.id}".encode()).decode()


def _cursor_key(cursor: str) -> tuple[float, str]:
    try:
        stamp, doc_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(stamp), doc_id
    except ValueError:
        raise ApiError(400, {"pageCursor": ["Invalid cursor."]}) from None
