"""The fake Wallabag server: the v2 API's routes and their answers, on the
entries of :mod:`.library`, behind the OAuth2 of :mod:`.oauth`.

Faults (``inject``): "status" answers ``status`` as ``{"code", "message"}``
(``body`` overrides the message, where ``{token}`` stands for the caller's
access token), "drop", "drop_after", "slow", "die", and "expire": the
call's access token expires just before the call.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlencode

from rulebot.fake.base import Fault, Reply, Request, Routes, is_http_url, json_reply
from rulebot.fake.wallabag.model import (
    DEFAULT_EMAIL,
    MASS_ACTION_LIMIT,
    STATUS_TEXT,
    Entry,
    WallabagError,
    get_int,
    host_of,
    json_list,
    read_body,
    split_labels,
)
from rulebot.fake.wallabag.oauth import WallabagAccounts

FAULTS = ("status", "drop", "drop_after", "slow", "expire", "die")
# {id} and {tag} match one path segment; ".json" may follow any route
_ROUTES = Routes(
    (
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
    ),
    suffix=r"(?:\.json)?",
    unquote_params=False,
)
_OPEN = {"_version", "_info"}  # no token needed


class FakeWallabag(WallabagAccounts):
    """The fake server and its state; start with ``with`` or ``start()``."""

    name = "wallabag"
    FAULTS: ClassVar[tuple[str, ...]] = FAULTS
    WORKING_FAULTS: ClassVar[tuple[str, ...]] = ("slow", "drop_after", "expire")
    routes = _ROUTES
    log_requests = False  # a request line may carry ?access_token=: never logged

    # -- request handling -------------------------------------------------------------
    def _resolve(self, method: str, path: str) -> tuple[str, str | None, list[str]]:
        if path.rstrip("/") == "/oauth/v2/token" and method in ("GET", "POST"):
            return f"{method} /oauth/v2/token", "_token", []
        return super()._resolve(method, path)

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        headers, query = request.headers, request.query
        if fault is not None and fault.kind == "expire":
            with self._lock:
                token = self._access.get(self._presented(headers, query) or "")
                if token is not None:
                    token.expires = self.now - 1
        with self._lock:
            body = read_body(headers, request.raw_body)
            handler = request.handler
            if handler == "_token":
                return self._token({**query, **body})
            if handler is None:
                return json_reply(404, {"code": 404, "message": "Not Found"})
            user = None
            if handler not in _OPEN:
                user_or_reply = self._authenticate(headers, query, body)
                if isinstance(user_or_reply, Reply):
                    return user_or_reply
                user = user_or_reply
            # only `exists` reads a parameter's every value (its `urls[]` lists)
            extra = {"multi": request.multi} if handler == "_exists" else {}
            try:
                answer = getattr(self, handler)(
                    *request.params, user=user, query=query, body=body, **extra
                )
            except WallabagError as err:
                return json_reply(err.status, {"code": err.status, "message": err.message})
            return json_reply(200, answer)

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        text = fault.body or STATUS_TEXT.get(fault.status, "Error")
        # "{token}" echoes the caller's access token (a leaky server, for audits)
        text = text.replace("{token}", self._presented(request.headers, request.query) or "")
        return json_reply(fault.status, {"code": fault.status, "message": text})

    # -- entries -------------------------------------------------------------------------
    def _list(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        rows = [e for e in self._entries.values() if e.user == user]
        for name, attr in (("archive", "is_archived"), ("starred", "is_starred")):
            if name in query:
                rows = [e for e in rows if getattr(e, attr) == (query[name] not in ("", "0"))]
        since = get_int(query.get("since"))
        if since > 0:
            rows = [e for e in rows if e.updated_at > since]
        if query.get("tags"):
            wanted = query["tags"].split(",")  # not trimmed nor lower-cased
            rows = [e for e in rows if all(w in {self._tags[t] for t in e.tags} for w in wanted)]
        if query.get("domain_name"):
            rows = [e for e in rows if host_of(e.url) == query["domain_name"]]
        detail = query.get("detail", "full")
        if detail not in ("full", "metadata"):
            raise WallabagError(
                400, f'Detail "{detail}" parameter is wrong, allowed: full or metadata'
            )
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise WallabagError(400, f'Order "{order}" parameter is wrong, allowed: asc or desc')
        sort = query.get("sort", "created")
        key = {"created": "id", "updated": "updated_at", "archived": "archived_at"}.get(sort)
        if key is not None:
            rows.sort(key=lambda e: (getattr(e, key) or 0, e.id), reverse=order == "desc")
        page, per_page = get_int(query.get("page", "1")), get_int(query.get("perPage", "30"))
        pages = max(1, -(-len(rows) // per_page)) if per_page >= 1 else 1
        if page < 1 or per_page < 1 or page > pages:
            raise WallabagError(404)
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
        if not is_http_url(url):
            raise WallabagError(400, f"The url '{json.dumps(url)}' is not a valid url\n")
        entry = self._by_url(url, user)
        if entry is None:
            entry = Entry(
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
            entry.title = host_of(url)  # the fake never fetches: the domain, like a failed fetch
        self._update(entry, body, tags_replace=False)
        return self._render(entry)

    def _patch(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        entry = self._find(entry_id, user)
        self._update(entry, body, tags_replace=True)
        return self._render(entry)

    def _delete(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        expect = query.get("expect", "entry")
        if expect not in ("id", "entry"):
            raise WallabagError(400, f'expect parameter value "{expect}" is not valid')
        entry = self._find(entry_id, user)
        rendered = self._render(entry)
        del self._entries[entry.id]
        return {"id": entry.id} if expect == "id" else rendered

    def _entry_tags(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        return self._tag_objects(self._find(entry_id, user).tags)

    def _add_tags(self, entry_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        entry = self._find(entry_id, user)
        labels = split_labels(body.get("tags", ""))
        for label in labels:
            self._attach(entry, label)
        if labels:
            entry.updated_at = self.now
        return self._render(entry)

    def _remove_tag(
        self, entry_id: str, tag_id: str, *, user: str, query: dict[str, str], body: Any
    ) -> Any:
        entry = self._find(entry_id, user)
        number = get_int(tag_id)
        if number not in self._tags:
            raise WallabagError(404)
        if number in entry.tags:
            entry.tags.remove(number)
            entry.updated_at = self.now
        return self._render(entry)

    # -- bulk (JSON in the query string) ---------------------------------------------------
    def _bulk_create(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        urls = json_list(query.get("urls"))
        if len(urls) > MASS_ACTION_LIMIT:
            raise WallabagError(400, "API limit reached")
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
        for url in json_list(query.get("urls")):
            entry = self._by_url(str(url), user)
            if entry is not None:
                del self._entries[entry.id]
            result.append({"url": url, "entry": entry is not None})
        return result

    def _bulk_tag(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        result = []
        for element in json_list(query.get("list")):
            url = str(element.get("url", "")) if isinstance(element, dict) else ""
            entry = self._by_url(url, user)
            if entry is not None:
                labels = split_labels(str(element.get("tags", "")))
                for label in labels:
                    self._attach(entry, label)
                if labels:
                    entry.updated_at = self.now
            result.append({"url": url, "entry": False if entry is None else entry.id})
        return result

    def _bulk_untag(self, *, user: str, query: dict[str, str], body: Any) -> Any:
        result = []
        for element in json_list(query.get("list")):
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
            raise WallabagError(404)
        return found

    def _delete_tag_id(self, tag_id: str, *, user: str, query: dict[str, str], body: Any) -> Any:
        return self._remove_everywhere(get_int(tag_id) or None, user)

    def _remove_everywhere(self, tag_id: int | None, user: str, *, quiet: bool = False) -> Any:
        mine = [e for e in self._entries.values() if e.user == user and tag_id in e.tags]
        if tag_id is None or not mine:
            if quiet:
                return None
            raise WallabagError(404)
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
