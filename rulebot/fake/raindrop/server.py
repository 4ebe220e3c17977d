"""The fake Raindrop.io server: its routes under /rest/v1 and their answers,
on the raindrops, collections and tags of :mod:`.library`."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from rulebot.fake.base import Fault, Reply, Request, Routes, is_http_url, json_reply, text_reply
from rulebot.fake.raindrop.library import RaindropLibrary
from rulebot.fake.raindrop.model import ALL, TRASH, UNSORTED, ApiError, Raindrop, iso, parse_date

API_PREFIX = "/rest/v1"
# test tokens look like UUIDs in the docs' examples; distinctive so tests can grep for it
DEFAULT_TOKEN = "ae261404-11r4-47c0-bce3-e18a423da828"
FAULTS = ("status", "drop", "drop_after", "slow")
MAX_PERPAGE = 50
DEFAULT_PERPAGE = 25  # reported in 2022 (raindrop.md §6)
RATE_LIMIT = 120  # requests per minute per user; 60 on /tags/{id} (2025)
_SORTS = {
    "created": lambda r: r.created,
    "lastUpdate": lambda r: r.last_update,
    "title": lambda r: r.title.lower(),
    "domain": lambda r: r.domain,
    "sort": lambda r: r.id,
}
_DATE_TERM = re.compile(r"^(created|lastUpdate):([<>]?)(\d{4}-\d{2}(?:-\d{2})?)$")
_CLOUDFLARE = "<html><head><title>{0}</title></head><body><h1>{0}</h1>cloudflare</body></html>"

_ROUTES = Routes(
    (
        ("GET", "/user", "_user"),
        ("GET", "/collections", "_root_collections"),
        ("GET", "/collections/childrens", "_child_collections"),
        ("GET", "/raindrops/{cid}", "_list"),
        ("PUT", "/raindrops/{cid}", "_update_many"),
        ("DELETE", "/raindrops/{cid}", "_remove_many"),
        ("GET", "/raindrop/{id}", "_get"),
        ("POST", "/raindrop", "_create"),
        ("PUT", "/raindrop/{id}", "_update"),
        ("DELETE", "/raindrop/{id}", "_remove"),
        ("GET", "/tags", "_tags"),
        ("GET", "/tags/{cid}", "_tags"),
        ("PUT", "/tags", "_rename_tags"),
        ("PUT", "/tags/{cid}", "_rename_tags"),
        ("DELETE", "/tags", "_delete_tags"),
        ("DELETE", "/tags/{cid}", "_delete_tags"),
        ("POST", "/import/url/exists", "_exists"),
    ),
    prefix=API_PREFIX,
)


class FakeRaindrop(RaindropLibrary):
    """The fake server and its state; start with ``with`` or ``start()``.

    ``rate_limit``: requests a (fake-clock) minute may take before a 429 with
    ``Retry-After`` (None: never enforced; the headers are always sent)."""

    name = "raindrop"
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
        rate_limit: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.token = token
        self.rate_limit = rate_limit
        # whether a tag rename or delete bumps each raindrop's lastUpdate (unconfirmed)
        self.bump_on_tag_edits = True
        self._minute = (0, 0)  # (the fake clock's minute, requests in it)

    # -- request handling ------------------------------------------------------------
    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        if request.handler is None:  # Express's own page, not JSON (raindrop.md §1)
            page = f"<pre>Cannot {request.method} {request.path}</pre>"
            return Reply(404, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.token}":
            return text_reply(401, "Unauthorized")
        with self._lock:
            limited = self._count()
        if limited is not None:
            return limited
        try:
            body = _read_json(request)
            with self._lock:
                answer: Any = getattr(self, request.handler)(
                    *request.params, query=request.query, body=body
                )
        except ApiError as err:
            return self._with_rate(json_reply(err.status, err.answer()))
        return self._with_rate(json_reply(200, answer))

    def _count(self) -> Reply | None:
        """Count this request in its minute; a 429 past ``rate_limit``."""
        minute = self.now // 60
        seen = self._minute[1] + 1 if self._minute[0] == minute else 1
        self._minute = (minute, seen)
        if self.rate_limit is not None and seen > self.rate_limit:
            reply = json_reply(429, {"result": False, "status": 429, "errorMessage": "Too many"})
            reply.headers["Retry-After"] = str(60 - self.now % 60)  # no X-RateLimit-Reset (§3)
            return reply
        return None

    def _with_rate(self, reply: Reply) -> Reply:
        limit = self.rate_limit or RATE_LIMIT
        reply.headers["x-ratelimit-limit"] = str(limit)
        reply.headers["x-ratelimit-remaining"] = str(max(0, limit - self._minute[1]))
        reply.headers["x-ratelimit-reset"] = str((self.now // 60 + 1) * 60)
        return reply

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        if fault.status == 401 and fault.body is None:
            return text_reply(401, "Unauthorized")
        if fault.status in (502, 503, 504) and fault.body is None:
            page = _CLOUDFLARE.format(f"{fault.status} error")
            return Reply(fault.status, page.encode(), {"Content-Type": "text/html"})
        message = fault.body if fault.body is not None else "error"
        return json_reply(
            fault.status, {"result": False, "status": fault.status, "errorMessage": message}
        )

    # -- user and collections ------------------------------------------------------------
    def _user(self, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        """The token's user, with the fields a recorded ``GET /user`` has."""
        joined = iso(self.now - 400 * 86400)
        roots = [c.id for c in self._collections.values() if c.parent is None]
        user = {
            "_id": self.user_id,
            "email": "fake@example.com",
            "email_MD5": "0" * 32,
            "fullName": "Fake User",
            "name": "fake",
            "password": True,
            "pro": False,
            "groups": [
                {"title": "My Collections", "hidden": False, "sort": 0, "collections": roots}
            ],
            "files": {"used": 0, "size": 100_000_000, "lastCheckpoint": joined},
            "config": {"raindrops_view": "list", "raindrops_sort": "-created", "lang": "en_US"},
            "registered": joined,
            "lastAction": iso(self.now),
            "lastVisit": iso(self.now),
            "lastUpdate": iso(self.now),
        }
        return {"result": True, "user": user}

    def _root_collections(self, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        roots = [c for c in self._collections.values() if c.parent is None]
        return {"result": True, "items": [self._render_collection(c) for c in roots]}

    def _child_collections(self, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        nested = [c for c in self._collections.values() if c.parent is not None]
        return {"result": True, "items": [self._render_collection(c) for c in nested]}

    # -- raindrops: lists and bulk --------------------------------------------------------
    def _list(self, cid: str, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        collection = _collection_id(cid)
        self._check_collection(collection)
        page = _whole(query.get("page", "0"), "page")
        perpage = min(
            MAX_PERPAGE, max(1, _whole(query.get("perpage", str(DEFAULT_PERPAGE)), "perpage"))
        )
        sort = query.get("sort", "-created")
        field = sort.lstrip("-")
        if field not in _SORTS:
            raise ApiError(400, f"invalid sort {sort}", "sort")
        rows = self._in(collection, nested=query.get("nested") == "true")
        rows = _searched(rows, query.get("search", ""), collection)
        rows.sort(key=lambda r: r.id, reverse=True)
        rows.sort(key=_SORTS[field], reverse=sort.startswith("-"))
        chunk = rows[page * perpage : (page + 1) * perpage]
        items = [self._render(r) for r in chunk]
        return {"result": True, "items": items, "count": len(rows), "collectionId": collection}

    def _scoped(self, cid: str, query: dict[str, str], body: Any) -> tuple[int, list[Raindrop]]:
        """The raindrops a bulk call acts on: ``ids`` and/or ``search``, within ``cid``."""
        collection = _collection_id(cid)
        self._check_collection(collection)
        fields = _object(body)
        rows = self._in(collection, nested=query.get("nested") == "true")
        if "ids" in fields:
            ids = fields["ids"]
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise ApiError(400, "ids must be an array of numbers")
            rows = [r for r in rows if r.id in set(ids)]
        rows = _searched(rows, query.get("search", ""), collection)
        return collection, rows

    def _update_many(self, cid: str, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        collection, rows = self._scoped(cid, query, body)
        fields = _object(body)
        if collection == ALL and "ids" not in fields and query.get("dangerAll") != "true":
            raise ApiError(400, "to update all raindrops please specify *dangerAll*", 400)
        move = _target(fields)
        tags = fields.get("tags")
        if tags is not None and (
            not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
        ):
            raise ApiError(400, "tags must be an array of strings")
        important = fields.get("important")
        if important is not None and not isinstance(important, bool):
            raise ApiError(400, "important must be a boolean")
        if move is not None:
            self._check_collection(move)
        for raindrop in rows:
            if important is not None:
                raindrop.important = important
            if tags == []:
                raindrop.tags = []  # [] removes every tag
            elif tags:  # appends ($addToSet: an exact spelling once)
                raindrop.tags.extend(t for t in dict.fromkeys(tags) if t not in raindrop.tags)
            if move is not None:
                raindrop.collection = move
            raindrop.last_update = self._stamp()
            raindrop.version += 1
        return {"result": True, "modified": len(rows)}

    def _remove_many(self, cid: str, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        collection, rows = self._scoped(cid, query, body)
        for raindrop in rows:
            if collection == TRASH:
                del self._raindrops[raindrop.id]  # from Trash: for good
            else:
                self._to_trash(raindrop)
        return {"result": True, "modified": len(rows)}

    # -- one raindrop ----------------------------------------------------------------
    def _get(self, raindrop_id: str, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        raindrop = self._find(raindrop_id)
        return {"result": True, "item": self._render(raindrop, listed=False), "author": True}

    def _create(self, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        fields = _object(body)
        link = fields.get("link")
        if not isinstance(link, str) or not is_http_url(link):
            raise ApiError(400, "link is required", "link")
        collection = _target(fields)
        if collection is None or collection in (ALL, TRASH):
            collection = UNSORTED  # a bare number is ignored (developer-site issue 3)
        self._check_collection(collection)
        stamp = self._stamp()
        raindrop = Raindrop(
            id=self._new_id(),
            link=link,  # stored exactly as sent, never deduplicated
            title=str(fields.get("title") or link),
            collection=collection,
            created=parse_date(fields.get("created")) or stamp,
            last_update=parse_date(fields.get("lastUpdate")) or stamp,
            excerpt=str(fields.get("excerpt") or ""),
            note=str(fields.get("note") or ""),
        )
        self._edit(raindrop, fields, create=True)
        self._raindrops[raindrop.id] = raindrop
        return {"result": True, "item": self._render(raindrop, listed=False, created=True)}

    def _update(self, raindrop_id: str, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        raindrop = self._find(raindrop_id)
        fields = _object(body)
        self._edit(raindrop, fields)
        move = _target(fields)
        if move is not None:
            self._check_collection(move)
            raindrop.collection = move
            raindrop.removed = move == TRASH
        if fields.get("removed") is False and raindrop.collection == TRASH:
            raindrop.collection, raindrop.removed = UNSORTED, False
        raindrop.last_update = parse_date(fields.get("lastUpdate")) or self._stamp()
        raindrop.version += 1
        return {"result": True, "item": self._render(raindrop, listed=False)}

    def _edit(self, raindrop: Raindrop, fields: dict[str, Any], *, create: bool = False) -> None:
        if "tags" in fields:
            tags = fields["tags"]
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ApiError(400, "tags must be an array of strings", "tags")
            raindrop.tags = list(dict.fromkeys(tags))  # the whole list (inferred)
        if "important" in fields:
            if not isinstance(fields["important"], bool):
                raise ApiError(400, "important must be a boolean", "important")
            raindrop.important = fields["important"]
        for key in ("title", "excerpt", "note") if not create else ():
            if isinstance(fields.get(key), str):
                setattr(raindrop, key, fields[key])
        if isinstance(fields.get("type"), str):
            raindrop.type = fields["type"]

    def _remove(self, raindrop_id: str, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        raindrop = self._find(raindrop_id)
        if raindrop.collection == TRASH:
            del self._raindrops[raindrop.id]  # a second delete is for good
            return {"result": True}
        self._to_trash(raindrop)
        return {"result": True, "item": {**self._render(raindrop, listed=False), "order": 0}}

    def _to_trash(self, raindrop: Raindrop) -> None:
        raindrop.collection, raindrop.removed = TRASH, True
        raindrop.last_update = self._stamp()

    # -- tags -------------------------------------------------------------------------
    def _tags(self, cid: str = "0", *, query: dict[str, str], body: Any) -> dict[str, Any]:
        collection = _collection_id(cid)
        self._check_collection(collection)
        return {"result": True, "items": self._tag_list(self._in(collection))}

    def _tag_names(self, body: Any) -> list[str]:
        tags = _object(body).get("tags")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            raise ApiError(400, "tags must be a non-empty array of strings", "tags")
        return tags

    def _rename_tags(self, cid: str = "0", *, query: dict[str, str], body: Any) -> dict[str, Any]:
        """Rename (one name) or merge (several) onto ``replace``. Names match
        exactly (whether the service matches case-insensitively is
        unconfirmed: a client sends every spelling); each raindrop changed
        has its ``lastUpdate`` bumped (unconfirmed: a sync must not depend
        on it, see ``bump_on_tag_edits``)."""
        names = set(self._tag_names(body))
        new = _object(body).get("replace")
        if not isinstance(new, str) or not new:
            raise ApiError(400, "replace must be a tag name", "replace")
        for raindrop in self._in(_collection_id(cid)):
            if names & set(raindrop.tags):
                renamed = [new if t in names else t for t in raindrop.tags]
                raindrop.tags = list(dict.fromkeys(renamed))
                self._bumped(raindrop)
        return {"result": True}

    def _delete_tags(self, cid: str = "0", *, query: dict[str, str], body: Any) -> dict[str, Any]:
        names = set(self._tag_names(body))
        for raindrop in self._in(_collection_id(cid)):
            if names & set(raindrop.tags):
                raindrop.tags = [t for t in raindrop.tags if t not in names]
                self._bumped(raindrop)
        return {"result": True}

    def _bumped(self, raindrop: Raindrop) -> None:
        if self.bump_on_tag_edits:
            raindrop.last_update = self._stamp()

    def _exists(self, *, query: dict[str, str], body: Any) -> dict[str, Any]:
        urls = _object(body).get("urls")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ApiError(400, "urls must be an array of strings")
        found = [r for r in self._in(ALL) if r.link in set(urls)]
        duplicates = [{"link": r.link, "_id": r.id} for r in found]
        answer: dict[str, Any] = {"result": bool(found), "ids": [r.id for r in found]}
        return {**answer, "duplicates": duplicates, **({"id": found[0].id} if found else {})}


def _read_json(request: Request) -> Any:
    if not request.raw_body.strip():
        return {}
    try:
        return json.loads(request.raw_body)
    except (ValueError, RecursionError):
        raise ApiError(400, "Unexpected token in JSON") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be an object")
    return body


def _collection_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ApiError(404, "Not found") from None


def _whole(text: str, name: str) -> int:
    if not text.isdigit():
        raise ApiError(400, f"{name} must be a number", name)
    return int(text)


def _target(fields: dict[str, Any]) -> int | None:
    """A move: ``collection: {"$id": N}`` (documented) or a flat ``collectionId``
    (the web app's); a bare number in ``collection`` is ignored."""
    collection = fields.get("collection")
    if isinstance(collection, dict) and isinstance(collection.get("$id"), int):
        return int(collection["$id"])
    flat = fields.get("collectionId")
    return flat if isinstance(flat, int) and not isinstance(flat, bool) else None


def _searched(rows: list[Raindrop], search: str, collection: int) -> list[Raindrop]:
    """The app's search syntax, as far as a sync uses it: ``lastUpdate:>DATE``,
    ``created:<DATE``…, ``#tag``, ``❤️``, and words in the title or link.
    Trash is never in search results."""
    terms = search.split()
    if terms and collection != TRASH:
        rows = [r for r in rows if r.collection != TRASH]
    for term in terms:
        dated = _DATE_TERM.match(term)
        if dated:
            field, op, day = dated.groups()
            stamp = parse_date(day + ("-01" if len(day) == 7 else "") + "T00:00:00Z") or 0
            attr = "created" if field == "created" else "last_update"
            if op == ">":
                rows = [r for r in rows if getattr(r, attr) >= stamp + 86400]
            elif op == "<":
                rows = [r for r in rows if getattr(r, attr) < stamp]
            else:
                rows = [r for r in rows if stamp <= getattr(r, attr) < stamp + 86400]
        elif term.startswith("#") and len(term) > 1:
            rows = [r for r in rows if term[1:] in r.tags]  # same case, as recorded
        elif term == "❤️":
            rows = [r for r in rows if r.important]
        else:
            rows = [r for r in rows if term.lower() in (r.title + " " + r.link).lower()]
    return rows
