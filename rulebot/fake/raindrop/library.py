"""A Raindrop.io user's raindrops, collections and tags, and how the API shows them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rulebot.fake.base import FakeServer
from rulebot.fake.raindrop.model import (
    ALL,
    DEFAULT_USER_ID,
    TRASH,
    UNSORTED,
    ApiError,
    Collection,
    Raindrop,
    iso,
)

FIRST_ID = 1_210_213_800  # ids look like the recorded ones (`1210213872`)


class RaindropLibrary(FakeServer):
    """The raindrops, collections and tags of one Raindrop.io user."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        now: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.user_id = DEFAULT_USER_ID
        self._raindrops: dict[int, Raindrop] = {}
        self._collections: dict[int, Collection] = {}
        self._next_id = FIRST_ID
        self._tick = 0  # milliseconds added to the clock: updates in one second stay ordered

    # -- test helpers --------------------------------------------------------------
    def add_raindrop(
        self,
        link: str,
        title: str | None = None,
        *,
        tags: Iterable[str] = (),
        important: bool = False,
        collection: int = UNSORTED,
        created: float | None = None,
        last_update: float | None = None,
        type: str = "link",
    ) -> int:
        """Put a raindrop straight into the library (tags stored as given)."""
        with self._lock:
            stamp = self._stamp() if created is None else created
            raindrop = Raindrop(
                id=self._new_id(),
                link=link,
                title=title or link,
                collection=collection,
                created=stamp,
                last_update=stamp if last_update is None else last_update,
                tags=list(dict.fromkeys(tags)),
                important=important,
                type=type,
            )
            self._raindrops[raindrop.id] = raindrop
            return raindrop.id

    def add_collection(self, title: str, parent: int | None = None) -> int:
        with self._lock:
            collection = Collection(self._new_id(), title, parent, self.now)
            self._collections[collection.id] = collection
            return collection.id

    def touch(self, raindrop_id: int, **changes: Any) -> None:
        """Another client's edit: set fields, bump ``lastUpdate``."""
        with self._lock:
            raindrop = self._raindrops[raindrop_id]
            for name, value in changes.items():
                setattr(raindrop, name, value)
            raindrop.last_update = self._stamp()
            raindrop.version += 1

    def purge(self, raindrop_id: int) -> None:
        """Gone for good (deleted from Trash, or Trash emptied): no trace left."""
        with self._lock:
            self._raindrops.pop(raindrop_id, None)

    @property
    def raindrops(self) -> dict[int, dict[str, Any]]:
        """Every raindrop outside Trash, as GET renders it."""
        with self._lock:
            return {
                r.id: self._render(r, listed=False)
                for r in self._raindrops.values()
                if r.collection != TRASH
            }

    @property
    def trash(self) -> dict[int, dict[str, Any]]:
        with self._lock:
            return {
                r.id: self._render(r, listed=False)
                for r in self._raindrops.values()
                if r.collection == TRASH
            }

    # -- state helpers ------------------------------------------------------------------
    def _stamp(self) -> float:
        self._tick = (self._tick + 1) % 1000
        return self.now + self._tick / 1000

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _find(self, raindrop_id: str) -> Raindrop:
        raindrop = self._raindrops.get(int(raindrop_id)) if raindrop_id.isdigit() else None
        if raindrop is None:
            raise ApiError(404, "Not found")
        return raindrop

    def _in(self, collection: int, *, nested: bool = False) -> list[Raindrop]:
        """The raindrops a collection id scopes (0: all but Trash)."""
        if collection == ALL:
            return [r for r in self._raindrops.values() if r.collection != TRASH]
        scope = {collection}
        if nested:
            scope |= self._descendants(collection)
        return [r for r in self._raindrops.values() if r.collection in scope]

    def _descendants(self, collection: int) -> set[int]:
        found: set[int] = set()
        frontier = {collection}
        while frontier:
            children = {c.id for c in self._collections.values() if c.parent in frontier}
            frontier = children - found
            found |= children
        return found

    def _check_collection(self, collection: int) -> None:
        if collection not in (ALL, UNSORTED, TRASH) and collection not in self._collections:
            raise ApiError(404, "Not found")

    def _render(self, raindrop: Raindrop, *, listed: bool = True, created: bool = False) -> dict:
        """A raindrop as the API shows it; ``listed``: as a list shows it
        (``important`` left out when false), ``created``: as a create answers
        (``creatorRef`` a bare user id)."""
        creator: Any = (
            self.user_id
            if created
            else {
                "_id": self.user_id,
                "name": "fake",
                "avatar": "",
                "email": "fake@example.com",
            }
        )
        answer: dict[str, Any] = {
            "_id": raindrop.id,
            "link": raindrop.link,
            "title": raindrop.title,
            "excerpt": raindrop.excerpt,
            "note": raindrop.note,
            "type": raindrop.type,
            "user": {"$ref": "users", "$id": self.user_id},
            "cover": "",
            "media": [],
            "tags": list(raindrop.tags),
            "removed": raindrop.removed,
            "collection": {
                "$ref": "collections",
                "$id": raindrop.collection,
                "oid": raindrop.collection,
            },
            "highlights": [],
            "created": iso(raindrop.created),
            "lastUpdate": iso(raindrop.last_update),
            "domain": raindrop.domain,
            "creatorRef": creator,
            "sort": raindrop.id,
            "collectionId": raindrop.collection,
            "reminder": {"date": None},
        }
        if raindrop.important or not listed:
            answer["important"] = raindrop.important  # often absent from lists when false
        if not listed:
            answer["__v"] = raindrop.version
        return self._shown(raindrop.id, answer)

    def _render_collection(self, collection: Collection) -> dict[str, Any]:
        return {
            "_id": collection.id,
            "title": collection.title,
            "description": "",
            "slug": collection.title.lower().replace(" ", "-"),
            "count": len(self._in(collection.id)),
            "cover": [],
            "color": "",
            "public": False,
            "view": "list",
            "sort": collection.id,
            "expanded": True,
            "parent": None if collection.parent is None else {"$id": collection.parent},
            "user": {"$id": self.user_id},
            "creatorRef": {"_id": self.user_id, "name": "fake"},
            "access": {"for": self.user_id, "level": 4, "root": False, "draggable": True},
            "author": True,
            "created": iso(collection.created),
            "lastUpdate": iso(collection.created),
            "lastAction": iso(collection.created),
        }

    def _tag_list(self, raindrops: Iterable[Raindrop]) -> list[dict[str, Any]]:
        """``GET /tags``: case variants grouped into one entry (spelled in lower
        case, as the recorded ``chinese`` for 32 ``Chinese`` and 2 ``chinese``),
        count descending, ties by name."""
        counts: dict[str, int] = {}
        for raindrop in raindrops:
            for tag in {t.lower() for t in raindrop.tags}:
                counts[tag] = counts.get(tag, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"_id": name, "count": count} for name, count in ordered]
