"""The fake Karakeep server: its routes under /api/v1 and their answers,
on the bookmarks and tags of :mod:`.library`."""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from rulebot.fake.base import (
    Fault,
    Reply,
    Request,
    Routes,
    is_http_url,
    json_reply,
    text_reply,
)
from rulebot.fake.karakeep.checks import (
    DEFAULT_PAGE,
    MAX_TAG_PAGE,
    common_fields,
    entry_attached_by,
    json_object,
    normalise_tag,
    parse_cursor,
    query_bool,
    query_limit,
    read_json,
    tag_cursor,
    tag_entries,
    tag_name,
    tag_page,
    whole_number,
)
from rulebot.fake.karakeep.library import KarakeepLibrary
from rulebot.fake.karakeep.lookup import SEARCH_MODES, SEARCH_ORDERS, check_url, search_matches
from rulebot.fake.karakeep.model import Bookmark, Invalid, TextError, iso

API_PREFIX = "/api/v1"
# The real key format (ak2_<20 hex>_<32 hex>); distinctive so tests can grep for it.
DEFAULT_API_KEY = "ak2_fa4e0000000000000000_0c0de0c0de0c0de0c0de0c0de0c0de0"
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

# (method, template relative to /api/v1, handler); {id} matches one path segment
_ROUTES = Routes(
    (
        ("GET", "/bookmarks", "_list_bookmarks"),
        ("POST", "/bookmarks", "_create_bookmark"),
        ("GET", "/bookmarks/search", "_search_bookmarks"),  # before {id}, as Hono tries them
        ("GET", "/bookmarks/check-url", "_check_url"),
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
    ),
    prefix=API_PREFIX,
)
# the v1 routers that start with authMiddleware (KK:packages/api/routes/*.ts)
_AUTHED = ("bookmarks", "tags", "lists", "highlights", "users", "assets", "admin", "backups")
_ATTRS = {
    "title": "title",
    "archived": "archived",
    "favourited": "favourited",
    "note": "note",
    "summary": "summary",
    "createdAt": "created_at",
    "url": "url",
}


class FakeKarakeep(KarakeepLibrary):
    """The fake server and its state; start with ``with`` or ``start()``."""

    name = "karakeep"
    FAULTS: ClassVar[tuple[str, ...]] = FAULTS
    routes = _ROUTES

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
        super().__init__(host=host, port=port, latency=latency, now=now, rng_seed=rng_seed)
        self.api_key = api_key

    # -- request handling ------------------------------------------------------------
    def _resolve(self, method: str, path: str) -> tuple[str, str | None, list[str]]:
        if path == "/api/health":
            return f"{method} /api/health", "_health" if method == "GET" else None, []
        return super()._resolve(method, path)

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        handler, headers = request.handler, request.headers
        if handler is None and not _behind_auth(request.path):
            return text_reply(404, "404 Not Found")  # Hono's default for unknown routes
        if handler == "_health":
            return json_reply(200, {"status": "ok", "message": "Web app is working"})
        auth = headers.get("authorization", "")
        # The prefix check is exact ("Bearer ", capital B); a bad key falls back
        # to session auth, and with no session the answer is 401.
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] != self.api_key:
            return text_reply(401, "Unauthorized")
        if handler is None:  # under a resource whose router checked the key first
            return text_reply(404, "404 Not Found")
        try:
            body = read_json(headers, request.raw_body)
            with self._lock:
                answer: Reply = getattr(self, handler)(
                    *request.params, query=request.query, body=body
                )
        except TextError as err:
            return text_reply(err.status, err.message)
        except Invalid as err:
            message = json.dumps([err.issue], indent=2)
            zod = {"success": False, "error": {"name": "ZodError", "message": message}}
            return json_reply(400, zod)
        return answer

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.status in (502, 503, 504) and fault.body is None:
            reason = {
                502: "502 Bad Gateway",
                503: "503 Service Unavailable",
                504: "504 Gateway Time-out",
            }
            page = _PROXY_PAGE.format(reason[fault.status])
            return Reply(fault.status, page.encode(), {"Content-Type": "text/html"})
        message = fault.body if fault.body is not None else _STATUS_TEXT.get(fault.status, "Error")
        return text_reply(fault.status, message)  # 429 included: no Retry-After, no X-RateLimit-*

    # -- bookmarks ------------------------------------------------------------------
    def _list_bookmarks(self, *, query: dict[str, str], body: Any) -> Reply:
        archived = query_bool(query, "archived")
        favourited = query_bool(query, "favourited")
        include_content = query_bool(query, "includeContent") or False
        order = query.get("sortOrder", "desc")
        if order not in ("asc", "desc"):
            raise Invalid(["sortOrder"], 'Invalid option: expected one of "asc"|"desc"')
        limit = query_limit(query.get("limit"))
        rows = [
            b
            for b in self._ordered(desc=order == "desc")
            if (archived is None or b.archived == archived)
            and (favourited is None or b.favourited == favourited)
        ]
        if "cursor" in query:
            cursor_id, cursor_at = parse_cursor(query["cursor"])
            rows = [b for b in rows if _after_cursor(b, cursor_id, cursor_at, order == "desc")]
        page, extra = rows[:limit], rows[limit : limit + 1]
        next_cursor = f"{extra[0].id}_{iso(extra[0].created_at)}" if extra else None
        rendered = [self._render(b, include_content=include_content) for b in page]
        return json_reply(200, {"bookmarks": rendered, "nextCursor": next_cursor})

    def _search_bookmarks(self, *, query: dict[str, str], body: Any) -> Reply:
        if "q" not in query:
            raise Invalid(["q"], "Invalid input: expected string, received undefined")
        order = query.get("sortOrder", "relevance")
        if order not in SEARCH_ORDERS:
            raise Invalid(["sortOrder"], 'Invalid option: expected one of "asc"|"desc"|"relevance"')
        if query.get("searchMode", "fts") not in SEARCH_MODES:
            raise Invalid(
                ["searchMode"], 'Invalid option: expected one of "fts"|"semantic"|"hybrid"'
            )
        include_content = query_bool(query, "includeContent") or False
        # `if (!input.limit)`: no limit, or 0, is DEFAULT_NUM_BOOKMARKS_PER_PAGE
        limit = whole_number(query["limit"], "limit", minimum=0) if "limit" in query else 0
        limit = limit or DEFAULT_PAGE
        offset = whole_number(query["cursor"], "cursor", minimum=0) if query.get("cursor") else 0
        hits = [
            b
            for b in self._ordered(desc=order != "asc")
            if search_matches(b, [self._tags[t] for t in b.tags], query["q"])
        ]
        page = hits[offset : offset + limit]
        following = offset + len(page)
        rendered = [self._render(b, include_content=include_content) for b in page]
        more = bool(page) and following < len(hits)
        return json_reply(
            200, {"bookmarks": rendered, "nextCursor": str(following) if more else None}
        )

    def _check_url(self, *, query: dict[str, str], body: Any) -> Reply:
        if "url" not in query:
            raise Invalid(["url"], "Invalid input: expected string, received undefined")
        readable, found = check_url(list(self._bookmarks.values()), query["url"])
        if not readable:  # `new URL()` throws inside the procedure: a 500
            raise TextError(500, "Internal server error")
        return json_reply(200, {"bookmarkId": found})

    def _get_bookmark(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> Reply:
        include_content = query_bool(query, "includeContent") or False
        bookmark = self._find(bookmark_id)
        return json_reply(200, self._render(bookmark, include_content=include_content))

    def _create_bookmark(self, *, query: dict[str, str], body: Any) -> Reply:
        fields = json_object(body)
        if fields.get("type") != "link":
            raise Invalid(["type"], "this fake models link bookmarks only (type: link)")
        url = fields.get("url")
        if not isinstance(url, str) or not is_http_url(url.strip()):
            raise Invalid(["url"], "Only http and https URLs are allowed")
        url = url.strip()
        updates = common_fields(fields)
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
            raise Invalid(["source"], "Invalid option for source")
        existing = next((b for b in self._bookmarks.values() if b.url == url), None)
        if existing is not None:
            return self._resave(existing, updates, source)
        now = self.now
        bookmark = Bookmark(
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
        return json_reply(201, {**rendered, "alreadyExists": False})

    def _resave(self, bookmark: Bookmark, updates: dict[str, Any], source: str) -> Reply:
        """A duplicate link POST (v0.33.1+): un-archives and moves it to the top."""
        if source in ("rss", "import"):
            return json_reply(200, {**self._render(bookmark), "alreadyExists": True})
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
            rendered["createdAt"] = iso(now, millis)
        rendered["modifiedAt"] = iso(now, millis)
        return json_reply(200, {**rendered, "alreadyExists": True})

    def _update_bookmark(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> Reply:
        fields = json_object(body)
        updates = common_fields(fields)
        if "url" in fields:
            url = fields["url"]
            if not isinstance(url, str) or not is_http_url(url.strip()):
                raise Invalid(["url"], "Only http and https URLs are allowed")
            updates["url"] = url.strip()
        bookmark = self._find(bookmark_id)
        for key, value in updates.items():
            setattr(bookmark, _ATTRS[key], value)
        if updates:  # {} is a no-op that still answers 200
            bookmark.modified_at = self.now
        return json_reply(200, self._render(bookmark))  # the full bookmark, not the spec's bare one

    def _delete_bookmark(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> Reply:
        self._find(bookmark_id)
        del self._bookmarks[bookmark_id]  # hard delete: no tombstone
        return Reply(204)

    def _attach_tags(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> Reply:
        entries = tag_entries(body)
        bookmark = self._find(bookmark_id)
        by_id = [e["tagId"] for e in entries if e.get("tagId") in self._tags]
        by_name: list[tuple[str, str]] = []
        for entry in entries:
            name = normalise_tag(entry.get("tagName") or "")
            if name:  # a name that normalizes to "" is skipped silently
                by_name.append((self._tag_for(name), entry.get("attachedBy", "human")))
        attached = list(dict.fromkeys([*by_id, *(tid for tid, _ in by_name)]))
        changed = False
        wanted = [(tid, entry_attached_by(entries, tid)) for tid in by_id] + by_name
        for tag_id, attached_by in wanted:
            if tag_id not in bookmark.tags:  # ON CONFLICT DO NOTHING: attachedBy kept
                bookmark.tags[tag_id] = attached_by
                changed = True
        if changed:
            bookmark.modified_at = self.now
        return json_reply(200, {"attached": attached})

    def _detach_tags(self, bookmark_id: str, *, query: dict[str, str], body: Any) -> Reply:
        entries = tag_entries(body)
        bookmark = self._find(bookmark_id)
        ids = [e["tagId"] for e in entries if e.get("tagId") in self._tags]
        names = {e["tagName"] for e in entries if e.get("tagName")}  # raw: no normalization
        ids += [tid for tid, name in self._tags.items() if name in names]
        detached = list(dict.fromkeys(ids))
        removed = [tid for tid in detached if bookmark.tags.pop(tid, None) is not None]
        if removed:
            bookmark.modified_at = self.now
        return json_reply(200, {"detached": detached})

    # -- tags -------------------------------------------------------------------------
    def _list_tags(self, *, query: dict[str, str], body: Any) -> Reply:
        sort = query.get("sort", "usage")
        if sort not in ("usage", "name", "relevance"):
            raise Invalid(["sort"], 'Invalid option: expected one of "name"|"usage"|"relevance"')
        contains = query.get("nameContains")
        if sort == "relevance" and not contains:
            raise TextError(400, "Relevance sorting requires a nameContains filter")
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
            raise Invalid(["attachedBy"], 'Invalid option: expected one of "ai"|"human"|"none"')
        tags.sort(key=lambda t: t["name"])
        if sort == "usage":
            tags.sort(key=lambda t: -t["numBookmarks"])
        if "limit" not in query:  # no limit: every tag in one answer
            return json_reply(200, {"tags": tags, "nextCursor": None})
        limit = whole_number(query["limit"], "limit", minimum=1)
        if limit > MAX_TAG_PAGE:
            raise TextError(400, f"limit must be at most {MAX_TAG_PAGE}")
        page = tag_page(query.get("cursor"))
        chunk = tags[page * limit : (page + 1) * limit]
        more = len(tags) > (page + 1) * limit
        return json_reply(
            200, {"tags": chunk, "nextCursor": tag_cursor(page + 1) if more else None}
        )

    def _get_tag(self, tag_id: str, *, query: dict[str, str], body: Any) -> Reply:
        self._find_tag(tag_id)
        return json_reply(200, self._render_tag(tag_id))

    def _create_tag(self, *, query: dict[str, str], body: Any) -> Reply:
        name = tag_name(json_object(body))
        if name in self._tags.values():
            raise TextError(400, CREATE_CONFLICT)
        return json_reply(201, {"id": self._tag_for(name), "name": name})

    def _rename_tag(self, tag_id: str, *, query: dict[str, str], body: Any) -> Reply:
        fields = json_object(body)
        self._find_tag(tag_id)
        if "name" not in fields:  # reaches an empty DB update (inferred in karakeep.md)
            raise TextError(500, "Internal server error")
        name = tag_name(fields)
        if any(n == name and tid != tag_id for tid, n in self._tags.items()):
            raise TextError(400, RENAME_CONFLICT)  # no automatic merge
        self._tags[tag_id] = name  # bookmarks' modifiedAt is not bumped
        return json_reply(200, {"id": tag_id, "name": name})

    def _delete_tag(self, tag_id: str, *, query: dict[str, str], body: Any) -> Reply:
        self._find_tag(tag_id)
        del self._tags[tag_id]
        for bookmark in self._bookmarks.values():
            bookmark.tags.pop(tag_id, None)  # cascade; modifiedAt is not bumped
        return Reply(204)

    def _me(self, *, query: dict[str, str], body: Any) -> Reply:
        user = {"id": self.user_id, "name": "Fake User", "email": "fake@example.com"}
        return json_reply(200, {**user, "image": None, "localUser": True})


def _behind_auth(path: str) -> bool:
    """A path under a v1 resource: its router checks the key before routing."""
    parts = path.split("/")  # "", "api", "v1", resource, ...
    return path.startswith(API_PREFIX + "/") and len(parts) > 3 and parts[3] in _AUTHED


def _after_cursor(bookmark: Bookmark, cursor_id: str, at: int, desc: bool) -> bool:
    """Inclusive on id, so the cursor row itself starts the next page."""
    earlier = bookmark.created_at < at if desc else bookmark.created_at > at
    return earlier or (bookmark.created_at == at and bookmark.id <= cursor_id)
