"""The fake Readeck server: its routes under /api and their answers, on the
bookmarks of :mod:`.library`.

Faults (``inject``): "status" answers ``status`` as the server's own error,
rewritten by Accept (502-504 as a proxy's HTML page; ``body`` overrides the
text), "drop", "drop_after", "slow" and "die".
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar
from urllib.parse import urlencode

from rulebot.fake.base import Fault, Reply, Request, Routes, is_http_url, json_reply
from rulebot.fake.readeck import filters, update
from rulebot.fake.readeck.library import ReadeckLibrary
from rulebot.fake.readeck.model import (
    Bookmark,
    FormError,
    ReadeckStatus,
    Unauthorized,
    host,
    iso,
    sorted_labels,
)
from rulebot.fake.readeck.protocol import (
    DEFAULT_PAGE,
    HTML,
    MAX_PAGE,
    PLAIN,
    PROXY_PAGE,
    error_page,
    etag,
    form_answer,
    page_param,
    parse_since,
    read_json,
)

API_PREFIX = "/api"
# distinctive, so tests can grep for it; real tokens are signed, encoded uids
DEFAULT_TOKEN = "rdk_fa4e0c0de0c0de0c0de0c0de0c0de0c0de0c0de"
DELETE_DELAY = 20.0  # seconds: PATCH is_deleted schedules the deletion task
FAULTS = ("status", "drop", "drop_after", "slow", "die")
# GET /api/profile's provider and user: the values of the YAML's example
PROVIDER_ID = "X4bmnMRcnDhQtu5y33qzTp"
ROLES = ("bookmarks:read", "bookmarks:write")
PERMISSIONS = (
    "api:bookmarks:collections:read",
    "api:bookmarks:collections:write",
    "api:bookmarks:export",
    "api:bookmarks:read",
    "api:bookmarks:write",
    "api:opds:read",
    "api:profile:read",
    "api:profile:tokens:delete",
)
USER_CREATED = 1_693_143_131_704_606  # 2023-08-27T13:32:11.704606Z, in microseconds
_ROUTES = Routes(
    (
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
    ),
    prefix=API_PREFIX,
    segment="[a-zA-Z0-9]{18,22}",
)


class FakeReadeck(ReadeckLibrary):
    """The fake server and its state; start with ``with`` or ``start()``."""

    name = "readeck"
    FAULTS: ClassVar[tuple[str, ...]] = FAULTS
    default_headers: ClassVar[Mapping[str, str]] = {"Cache-Control": "private", "Vary": "Accept"}
    routes = _ROUTES

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
        super().__init__(host=host, port=port, latency=latency, now=now, rng_seed=rng_seed)
        self.token = token

    # -- request handling ------------------------------------------------------------
    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.status in (502, 503, 504) and fault.body is None:
            text = f"{fault.status} {HTTPStatus(fault.status).phrase}"
            return Reply(fault.status, PROXY_PAGE.format(text).encode(), dict(HTML))
        if fault.body is not None:
            return Reply(fault.status, fault.body.encode(), dict(PLAIN))
        return error_page(fault.status, request.headers.get("accept", ""))

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        handler, headers = request.handler, request.headers
        accept = headers.get("accept", "")
        try:
            if handler is None:
                raise ReadeckStatus(404)
            if handler != "_info":
                self._authenticate(headers)
            body = read_json(headers, request.raw_body)
            with self._lock:
                self._reap()
                reply: Reply = getattr(self, handler)(
                    *request.params, query=request.query, multi=request.multi, body=body
                )
        except Unauthorized as err:
            reply = error_page(401, accept)
            reply.headers["WWW-Authenticate"] = err.challenge
        except ReadeckStatus as err:
            return error_page(err.status, accept)
        except FormError as err:
            return json_reply(err.status, form_answer(err.fields))
        tag = reply.headers.get("ETag")
        if tag is not None and headers.get("if-none-match") == tag:
            return Reply(304, b"", {"ETag": tag})
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
            raise Unauthorized('Basic realm="Readeck Authentication", Bearer realm="Bearer token"')
        raise Unauthorized('Bearer realm="Bearer token"')

    # -- handlers --------------------------------------------------------------------
    def _info(self, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        version = {"canonical": "0.22.3", "release": "0.22.3", "build": "fake"}
        return json_reply(200, {"version": version, "features": ["oauth"]})

    def _profile(self, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        provider = {
            "name": "bearer token",
            "id": PROVIDER_ID,
            "application": "rulebot fake",
            "roles": list(ROLES),
            "permissions": list(PERMISSIONS),
        }
        user = {
            "username": "fake",
            "email": "fake@example.org",
            "created": iso(USER_CREATED),
            "updated": iso(USER_CREATED),
            "settings": {
                "debug_info": False,
                "reader_settings": {"font": "serif", "font_size": 3, "line_height": 3},
            },
        }
        return json_reply(200, {"provider": provider, "user": user})

    def _list(self, *, query: dict[str, str], multi: dict[str, list[str]], body: Any) -> Reply:
        limit = page_param(query.get("limit"), DEFAULT_PAGE)
        offset = page_param(query.get("offset"), 0)
        if limit > MAX_PAGE:
            raise ReadeckStatus(404)  # GetPageParams fails: the handler answers Not Found
        matches = filters.ListFilter.parse(query, multi, self._clock())
        ids = [i.strip() for i in multi.get("id", []) if i.strip()]
        rows = [b for b in self._ordered() if (not ids or b.id in ids) and matches(b)]
        rows = filters.ordered(rows, multi.get("sort", []), ids)
        page = rows[offset : offset + limit]
        answer = json_reply(200, [self._render(b) for b in page])
        answer.headers.update(self._pagination(query, multi, len(rows), limit, offset))
        answer.headers["ETag"] = etag(answer.body)
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

    def _get(self, bookmark_id: str, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        answer = json_reply(200, self._render(self._find(bookmark_id), detail=True))
        answer.headers["ETag"] = etag(answer.body)
        return answer

    def _sync(self, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        entries: list[tuple[int, dict[str, Any]]] = []
        if "since" in query:
            since = parse_since(query["since"])
            if since is None:
                raise FormError(422, {"since": ["invalid datetime"]})
            cut = since // 1_000_000  # SQLite datetime(): whole seconds on both sides
            for b in self._bookmarks.values():
                if b.updated // 1_000_000 >= cut:
                    entries.append(
                        (b.updated, {"id": b.id, "time": iso(b.updated), "type": "update"})
                    )
            for bid, when in self._removed.items():
                if when // 1_000_000 >= cut:
                    entries.append((when, {"id": bid, "time": iso(when), "type": "delete"}))
        else:
            for b in self._bookmarks.values():
                entries.append((b.updated, {"id": b.id, "time": iso(b.updated), "type": "update"}))
        entries.sort(key=lambda e: e[0], reverse=True)
        answer = json_reply(200, [entry for _, entry in entries])
        answer.headers["ETag"] = etag(answer.body)
        return answer

    def _create(self, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        fields = body if isinstance(body, dict) else {}
        url = fields.get("url")
        errors: dict[str, list[str]] = {}
        if not isinstance(url, str) or not is_http_url(url.strip()):
            errors["url"] = ["field is required" if not url else "invalid URL"]
        title = fields.get("title")
        if title is not None and (not isinstance(title, str) or len(title) > 1024):
            errors["title"] = ["invalid value"]
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(t, str) for t in labels):
            errors["labels"] = ["invalid value"]
        if errors:
            raise FormError(422, errors)
        assert isinstance(url, str)
        stamp = self._stamp()
        bookmark = Bookmark(
            id=self._new_id(),
            url=url.strip().split("#", 1)[0],
            title=title or "",
            created=stamp,
            updated=stamp,
            labels=sorted_labels(labels),
            state=2,  # loading: extraction runs later
            lang="",
            authors=None,  # nil until extraction: JSON null
            site_name=host(url.strip()),
            text_direction="",
        )
        self._bookmarks[bookmark.id] = bookmark  # no duplicate detection
        location = f"{self.base_url}/api/bookmarks/{bookmark.id}"
        reply = json_reply(202, {"status": 202, "message": "Link submited"})
        reply.headers.update({"Location": location, "Bookmark-Id": bookmark.id})
        return reply

    def _update(self, bookmark_id: str, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        bookmark = self._find(bookmark_id)
        fields = body if isinstance(body, dict) else {}
        update.validate(fields)
        changed = update.apply(bookmark, fields)
        if fields.get("is_deleted") is not None:
            wanted = bool(fields["is_deleted"])
            bookmark.delete_at = self._clock() / 1e6 + DELETE_DELAY if wanted else None
            changed["is_deleted"] = wanted
        answer: dict[str, Any] = {"id": bookmark.id, "href": self._href(bookmark.id)}
        if changed:
            bookmark.updated = self._stamp()
            answer.update(changed)
            answer["updated"] = iso(bookmark.updated)
        reply = json_reply(200, answer)
        reply.headers["Location"] = self._href(bookmark.id)
        return reply

    def _delete_bookmark(
        self, bookmark_id: str, *, query: dict[str, str], multi: Any, body: Any
    ) -> Reply:
        self._find(bookmark_id)
        self._delete(bookmark_id)
        return Reply(204)

    def _labels(self, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        counts: dict[str, int] = {}
        for bookmark in self._bookmarks.values():
            for label in bookmark.labels:
                counts[label] = counts.get(label, 0) + 1
        if "name" in query:  # label info: one object (the YAML says an array)
            name = query["name"].strip()
            if not name or name not in counts:
                raise ReadeckStatus(404)
            return json_reply(200, self._label_info(name, counts[name]))
        return json_reply(200, [self._label_info(n, c) for n, c in sorted(counts.items())])

    def _rename_label(self, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        old = query.get("name", "").strip()
        new = body.get("name") if isinstance(body, dict) else None
        if not old:
            raise ReadeckStatus(404)
        if not isinstance(new, str) or not new.strip():
            raise FormError(400, {"name": ["field is required"]})
        touched = [b for b in self._bookmarks.values() if old in b.labels]
        if not touched:
            raise ReadeckStatus(404)
        for bookmark in touched:  # onto an existing label: merged (duplicates dropped)
            bookmark.labels = sorted_labels(new.strip() if t == old else t for t in bookmark.labels)
            bookmark.updated = self._stamp()
        return json_reply(200, {"name": new.strip()})

    def _delete_label(self, *, query: dict[str, str], multi: Any, body: Any) -> Reply:
        name = query.get("name", "").strip()
        touched = [b for b in self._bookmarks.values() if name and name in b.labels]
        if not touched:
            raise ReadeckStatus(404)
        for bookmark in touched:
            bookmark.labels = [t for t in bookmark.labels if t != name]
            bookmark.updated = self._stamp()
        return Reply(204)
