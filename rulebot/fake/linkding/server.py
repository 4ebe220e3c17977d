"""The fake Linkding server: its REST API under /api and the answers of
``specs/linkding.md``, on one user's bookmarks and tags.

Faults (``inject``): "status" answers ``status`` as Linkding would (a 5xx as
its HTML ``Server Error`` page, anything else as DRF's ``{"detail": …}``;
``body`` overrides the text), "drop", "drop_after", "slow" and "die" (the
plumbing of :mod:`rulebot.fake.base`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode

from rulebot.fake.base import Fault, Reply, Request, Routes, json_reply, text_reply
from rulebot.fake.linkding.library import LinkdingLibrary
from rulebot.fake.linkding.model import (
    MAX_TAG,
    MAX_TITLE,
    MAX_URL,
    Bookmark,
    Problem,
    Tag,
    boolean,
    detail,
    field_error,
    iso,
    parse_filter_time,
    render,
    tag_list,
    tag_names_of,
    text_field,
    valid_url,
)
from rulebot.fake.linkding.search import ParseError, compile_query

API_PREFIX = "/api"
# distinctive, so tests can grep for it; real keys are 40 lower-case hex characters
DEFAULT_TOKEN = "5ec2e7f00dfa4e11c0de5ec2e7f00dfa4e11c0de"
PAGE_SIZE = 100  # DRF's LimitOffsetPagination default; there is no maximum
VERSION = "1.44.1"
FAULTS = ("status", "drop", "drop_after", "slow", "die")
_ROUTES = Routes(
    (
        ("GET", "/", "_root"),
        ("GET", "/bookmarks/", "_list"),
        ("POST", "/bookmarks/", "_create"),
        ("GET", "/bookmarks/archived/", "_list_archived"),
        ("GET", "/bookmarks/shared/", "_list_shared"),
        ("GET", "/bookmarks/check/", "_check"),
        ("GET", "/bookmarks/{id}/", "_get"),
        ("PATCH", "/bookmarks/{id}/", "_patch"),
        ("PUT", "/bookmarks/{id}/", "_put"),
        ("DELETE", "/bookmarks/{id}/", "_delete"),
        ("POST", "/bookmarks/{id}/archive/", "_archive"),
        ("POST", "/bookmarks/{id}/unarchive/", "_unarchive"),
        ("GET", "/tags/", "_tags"),
        ("POST", "/tags/", "_create_tag"),
        ("GET", "/tags/{id}/", "_tag"),
        ("GET", "/user/profile/", "_profile"),
    ),
    prefix=API_PREFIX,
    segment="[0-9]+",
)
_DETAILS = {  # DRF's texts, in the two languages the fake speaks
    "missing": {
        "en": "Authentication credentials were not provided.",
        "de": "Anmeldedaten fehlen.",
    },
    "invalid": {"en": "Invalid token.", "de": "Ungültiges Token"},
    "empty": {
        "en": "Invalid token header. No credentials provided.",
        "de": "Ungültiger Token-Header. Keine Anmeldedaten bereitgestellt.",
    },
    "spaces": {
        "en": "Invalid token header. Token string should not contain spaces.",
        "de": "Ungültiger Token-Header. Token-String sollte keine Leerzeichen enthalten.",
    },
}
_SERVER_ERROR = (
    b'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n'
    b"</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)
_NOT_FOUND = b"<!doctype html><html><body><h1>Not Found</h1></body></html>"


class Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FakeLinkding(LinkdingLibrary):
    """The fake server and one user's library; start with ``with`` or ``start()``."""

    name = "linkding"
    FAULTS: ClassVar[tuple[str, ...]] = FAULTS
    default_headers: ClassVar[Mapping[str, str]] = {
        "Vary": "Accept, Accept-Language, Cookie",
        "X-Frame-Options": "DENY",
    }

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        latency: float = 0.0,
        now: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.token = token

    # -- request handling ---------------------------------------------------------
    def _resolve(self, method: str, path: str) -> tuple[str, str | None, list[str]]:
        return _ROUTES.resolve(method, path)

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.body is not None:
            return text_reply(fault.status, fault.body)
        if fault.status >= 500:
            return Reply(fault.status, _SERVER_ERROR, {"Content-Type": "text/html; charset=utf-8"})
        reply = json_reply(fault.status, {"detail": HTTPStatus(fault.status).phrase})
        if fault.status == 401:
            reply.headers["WWW-Authenticate"] = "Token"
        return reply

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        path = request.path
        if path.startswith(API_PREFIX + "/") and not path.endswith("/"):
            # Django's CommonMiddleware, for every method: the slash is added by a redirect
            query = request.target.partition("?")[2]
            location = path + "/" + (f"?{query}" if query else "")
            return Reply(301, b"", {"Location": location, "Content-Type": "text/html"})
        if request.handler is None:
            allowed = self._allowed(request)
            if allowed is None:
                return Reply(404, _NOT_FOUND, {"Content-Type": "text/html; charset=utf-8"})
            return self._problem(
                detail(405, f'Method "{request.method}" not allowed.'), allow=allowed
            )
        language = _language(request.headers.get("accept-language", ""))
        try:
            if request.handler != "_list_shared":
                self._authenticate(request.headers)
            body = _body(request)
            with self._lock:
                answer: Reply = getattr(self, request.handler)(request, body, *request.params)
        except Unauthorized as err:
            reply = json_reply(401, {"detail": _DETAILS[err.reason][language]})
            reply.headers["WWW-Authenticate"] = "Token"
            return reply
        except Problem as problem:
            return self._problem(problem)
        return answer

    def _allowed(self, request: Request) -> tuple[str, ...] | None:
        """The methods a known path takes (a 405 for the others); None: an unknown path."""
        methods = tuple(
            method
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if _ROUTES.resolve(method, request.path)[1] is not None
        )
        return methods or None

    def _problem(self, problem: Problem, *, allow: Sequence[str] = ()) -> Reply:
        reply = json_reply(problem.status, problem.body)
        if allow:
            reply.headers["Allow"] = ", ".join(allow)
        return reply

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        """DRF's ``TokenAuthentication`` with ``Token`` or ``Bearer``, any case."""
        parts = headers.get("authorization", "").split()
        if not parts or parts[0].lower() not in ("token", "bearer"):
            raise Unauthorized("missing")
        if len(parts) == 1:
            raise Unauthorized("empty")
        if len(parts) > 2:
            raise Unauthorized("spaces")
        if parts[1] != self.token:
            raise Unauthorized("invalid")

    # -- bookmarks ----------------------------------------------------------------
    def _root(self, request: Request, body: Any) -> Reply:
        return json_reply(200, {})

    def _list(self, request: Request, body: Any) -> Reply:
        return self._page(request, [b for b in self.bookmarks.values() if not b.is_archived])

    def _list_archived(self, request: Request, body: Any) -> Reply:
        return self._page(request, [b for b in self.bookmarks.values() if b.is_archived])

    def _list_shared(self, request: Request, body: Any) -> Reply:
        return self._page(request, [])  # sharing is off until the UI turns it on

    def _page(self, request: Request, found: list[Bookmark]) -> Reply:
        found = self._filtered(found, request.query)
        return self._paged(request, [self._render(b) for b in found])

    def _paged(self, request: Request, entries: list[dict[str, Any]]) -> Reply:
        """DRF's ``LimitOffsetPagination``: ``limit`` (default 100, no maximum, a bad
        one the default) and ``offset``; ``next``/``previous`` absolute, built
        from the request's Host, keeping its other parameters."""
        limit = _positive(request.query.get("limit"), PAGE_SIZE)
        offset = _positive(request.query.get("offset"), 0, zero=True)
        host = request.headers.get("host", f"{self.host}:{self.port}")

        def link(at: int | None) -> str:
            params = parse_qs(request.target.partition("?")[2], keep_blank_values=True)
            params["limit"] = [str(limit)]
            if at:
                params["offset"] = [str(at)]
            else:
                params.pop("offset", None)
            return f"http://{host}{request.path}?{urlencode(sorted(params.items()), doseq=True)}"

        after = offset + limit
        answer: dict[str, Any] = {
            "count": len(entries),
            "next": link(after) if after < len(entries) else None,
            "previous": None if offset <= 0 else link(max(0, offset - limit) or None),
            "results": entries[offset:after],
        }
        return json_reply(200, answer)

    def _filtered(self, found: list[Bookmark], query: Mapping[str, str]) -> list[Bookmark]:
        for name, attribute in (("modified_since", "date_modified"), ("added_since", "date_added")):
            since = parse_filter_time(query.get(name) or "") if query.get(name) else None
            if since is not None:
                found = [b for b in found if getattr(b, attribute) > since]
        for flag in ("unread", "shared"):
            wanted = query.get(flag)
            if wanted in ("yes", "no"):
                found = [b for b in found if getattr(b, flag) == (wanted == "yes")]
        if query.get("q"):
            try:
                match = compile_query(query["q"])
            except ParseError:
                return []
            found = [b for b in found if match(b, self._lower_tags(b))]
        sort = query.get("sort")
        if sort in ("title_asc", "title_desc"):
            found.sort(key=lambda b: (b.title or b.url).lower(), reverse=sort == "title_desc")
        else:
            found.sort(key=lambda b: b.date_added, reverse=sort != "added_asc")
        return found

    def _render(self, bookmark: Bookmark) -> dict[str, Any]:
        """A bookmark as the API shows it (with its ``garble``d fields, if any)."""
        return self._shown(bookmark.bookmark_id, render(bookmark, self.tags))

    def _bookmark(self, bookmark_id: str) -> Bookmark:
        found = self.bookmarks.get(int(bookmark_id))
        if found is None:
            raise detail(404, "No Bookmark matches the given query.")
        return found

    def _get(self, request: Request, body: Any, bookmark_id: str) -> Reply:
        return json_reply(200, self._render(self._bookmark(bookmark_id)))

    def _check(self, request: Request, body: Any) -> Reply:
        url = request.query.get("url")
        existing = self._existing(url) if url else None
        metadata = {"url": url, "title": None, "description": None, "preview_image": None}
        answer: dict[str, Any] = {
            "bookmark": self._render(existing) if existing else None,
            "metadata": metadata,
            "auto_tags": [],
        }
        return json_reply(200, answer)

    def _create(self, request: Request, body: Any) -> Reply:
        fields = self._fields(body, require_url=True)
        url = fields.pop("url")
        tags = fields.pop("tag_names", [])
        existing = self._existing(url)
        if existing is not None:
            # merged: every field sent or not (absent: empty), tags replaced, the
            # archive and the stored URL kept; still 201
            for name in ("title", "description", "notes"):
                setattr(existing, name, fields.get(name, ""))
            existing.unread = fields.get("unread", False)
            existing.shared = fields.get("shared", False)
            existing.tag_ids = self._tag_ids(tag_names_of(tags))
            existing.date_modified = self.stamp()
            return self._created(existing)
        added = self.stamp()
        bookmark = Bookmark(self._next_bookmark, url, added, self.stamp())
        self._next_bookmark += 1
        for name, value in fields.items():
            setattr(bookmark, name, value)
        bookmark.tag_ids = self._tag_ids(tag_names_of(tags))
        self.bookmarks[bookmark.bookmark_id] = bookmark
        return self._created(bookmark)

    def _created(self, bookmark: Bookmark) -> Reply:
        reply = json_reply(201, self._render(bookmark))
        reply.headers["Location"] = bookmark.url
        return reply

    def _patch(self, request: Request, body: Any, bookmark_id: str) -> Reply:
        return self._update(self._bookmark(bookmark_id), self._fields(body, require_url=False))

    def _put(self, request: Request, body: Any, bookmark_id: str) -> Reply:
        # as partial as PATCH: only ``url`` is required
        return self._update(self._bookmark(bookmark_id), self._fields(body, require_url=True))

    def _update(self, bookmark: Bookmark, fields: dict[str, Any]) -> Reply:
        url = fields.get("url")
        others = (b for b in self.bookmarks.values() if b is not bookmark)
        if url is not None and url != bookmark.url and any(b.url == url for b in others):
            raise field_error("url", "A bookmark with this URL already exists.")
        tags = fields.pop("tag_names", None)
        for name, value in fields.items():
            setattr(bookmark, name, value)
        if tags is not None:
            bookmark.tag_ids = self._tag_ids(tag_names_of(tags))
        bookmark.date_modified = self.stamp()
        return json_reply(200, self._render(bookmark))

    def _delete(self, request: Request, body: Any, bookmark_id: str) -> Reply:
        del self.bookmarks[self._bookmark(bookmark_id).bookmark_id]
        return Reply(204)

    def _archive(self, request: Request, body: Any, bookmark_id: str) -> Reply:
        return self._set_archived(bookmark_id, True)

    def _unarchive(self, request: Request, body: Any, bookmark_id: str) -> Reply:
        return self._set_archived(bookmark_id, False)

    def _set_archived(self, bookmark_id: str, archived: bool) -> Reply:
        bookmark = self._bookmark(bookmark_id)
        bookmark.is_archived = archived
        bookmark.date_modified = self.stamp()
        return Reply(204)

    def _fields(self, body: Any, *, require_url: bool) -> dict[str, Any]:
        """The writable fields of a bookmark body, checked as the serializer does;
        read-only ones (``id``, the dates …) are ignored."""
        if not isinstance(body, dict):
            raise detail(400, "Invalid data. Expected a dictionary, but got list.")
        fields: dict[str, Any] = {}
        if "url" in body:
            url = text_field("url", body["url"], MAX_URL).strip()
            if not valid_url(url):
                raise field_error("url", "Enter a valid URL.")
            fields["url"] = url
        elif require_url:
            raise field_error("url", "This field is required.")
        for name in ("title", "description", "notes"):
            if name in body:
                fields[name] = text_field(name, body[name], MAX_TITLE if name == "title" else None)
        for name in ("is_archived", "unread", "shared"):
            if name in body:
                fields[name] = boolean(name, body[name])
        if "tag_names" in body:
            fields["tag_names"] = tag_list(body["tag_names"])
        return fields

    # -- tags and the rest ------------------------------------------------------------
    def _tags(self, request: Request, body: Any) -> Reply:
        tags = sorted(self.tags.values(), key=lambda t: t.tag_id)  # no order: SQLite's is id
        return self._paged(request, [_tag_json(tag) for tag in tags])

    def _tag(self, request: Request, body: Any, tag_id: str) -> Reply:
        tag = self.tags.get(int(tag_id))
        if tag is None:
            raise detail(404, "No Tag matches the given query.")
        return json_reply(200, _tag_json(tag))

    def _create_tag(self, request: Request, body: Any) -> Reply:
        """``POST /api/tags/``: not sanitised, unlike ``tag_names``; an existing
        name (any case) is answered as it is, still 201."""
        if not isinstance(body, dict) or "name" not in body:
            raise field_error("name", "This field is required.")
        name = text_field("name", body["name"], MAX_TAG)
        if not name.strip():
            raise field_error("name", "This field may not be blank.")
        tag = self._tag_named(name)
        if tag is None:
            tag = Tag(self._next_tag, name, self.stamp())
            self.tags[tag.tag_id] = tag
            self._next_tag += 1
        return json_reply(201, _tag_json(tag))

    def _profile(self, request: Request, body: Any) -> Reply:
        return json_reply(
            200,
            {
                "theme": "auto",
                "bookmark_date_display": "relative",
                "bookmark_link_target": "_blank",
                "web_archive_integration": "disabled",
                "tag_search": "strict",
                "enable_sharing": False,
                "enable_public_sharing": False,
                "enable_favicons": False,
                "display_url": False,
                "permanent_notes": False,
                "search_preferences": {},
                "version": VERSION,
            },
        )


def _tag_json(tag: Tag) -> dict[str, Any]:
    return {"id": tag.tag_id, "name": tag.name, "date_added": iso(tag.date_added)}


def _positive(value: str | None, default: int, *, zero: bool = False) -> int:
    """DRF's paging numbers: a bad or (for ``limit``) non-positive one is the default."""
    try:
        number = int(value or "")
    except ValueError:
        return default
    return number if number > 0 or (zero and number == 0) else default


def _language(accept: str) -> str:
    return "de" if accept.strip().lower().startswith("de") else "en"


def _body(request: Request) -> Any:
    """JSON or a form (DRF's parsers); another content type is 415."""
    if not request.raw_body:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            return json.loads(request.raw_body)
        except ValueError as err:
            raise detail(400, f"JSON parse error - {err}") from None
    if kind == "application/x-www-form-urlencoded":
        form = parse_qs(request.raw_body.decode(), keep_blank_values=True)
        return {k: (v if k == "tag_names" else v[-1]) for k, v in form.items()}
    raise detail(415, f'Unsupported media type "{kind}" in request.')
