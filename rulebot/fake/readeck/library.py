"""A Readeck user's bookmarks and the deletion records its sync feed reads,
on a clock of microseconds, and how the API shows them."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from rulebot.fake.base import FakeServer
from rulebot.fake.readeck.model import (
    Bookmark,
    ReadeckState,
    ReadeckStatus,
    host,
    iso,
    sorted_labels,
)

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class ReadeckLibrary(FakeServer):
    """The bookmarks of one Readeck user, and the ids of those deleted."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        now: int | None = None,
        rng_seed: int = 20260416,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency)
        self._rng = random.Random(rng_seed)
        self._bookmarks: dict[str, Bookmark] = {}
        self._removed: dict[str, int] = {}  # bookmark_removed: id -> deleted (microseconds)
        self._frozen = None if now is None else now * 1_000_000
        self._last = 0  # every change gets a later stamp than the one before

    # -- clock -----------------------------------------------------------------------
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
        authors: Iterable[str] = (),
        description: str = "",
        published: int | None = None,
        read_progress: int = 0,
        state: int = 0,
        bookmark_id: str | None = None,
    ) -> str:
        """Put a bookmark straight into the library, loaded unless ``state`` says
        otherwise (0 loaded, 1 error, 2 loading: no authors yet, as a create
        leaves it); times in unix seconds."""
        with self._lock:
            bookmark_id = bookmark_id or self._new_id()
            url = url or f"https://example.com/articles/{bookmark_id}"
            stamp = self._stamp() if created is None else created * 1_000_000
            self._bookmarks[bookmark_id] = Bookmark(
                id=bookmark_id,
                url=url,
                title=title,
                created=stamp,
                updated=stamp if updated is None else updated * 1_000_000,
                is_archived=archived,
                is_marked=marked,
                labels=sorted_labels(labels),
                word_count=word_count,
                reading_time=(word_count + 199) // 200 if reading_time is None else reading_time,
                lang=lang,
                type=kind,
                state=state,
                read_progress=read_progress,
                description=description,
                authors=None if state == 2 else list(authors),
                site_name=host(url),
                published=None if published is None else published * 1_000_000,
            )
            return bookmark_id

    def finish_loading(
        self, bookmark_id: str, title: str | None = None, *, error: bool = False
    ) -> None:
        """What the extraction task does to a created bookmark when it is done:
        ``state`` 0 (1 with ``error``), an author list (``[]``), a title if
        none was given, and a new ``updated``."""
        with self._lock:
            bookmark = self._bookmarks[bookmark_id]
            bookmark.state = 1 if error else 0
            bookmark.authors = bookmark.authors or []
            bookmark.text_direction = bookmark.text_direction or "ltr"
            if title is not None and not bookmark.title:
                bookmark.title = title
            bookmark.updated = self._stamp()

    def touch(self, bookmark_id: str, **changes: Any) -> None:
        """Change a bookmark as another client would (bumps ``updated``)."""
        with self._lock:
            bookmark = self._bookmarks[bookmark_id]
            for name, value in changes.items():
                setattr(bookmark, name, sorted_labels(value) if name == "labels" else value)
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
                {k: iso(v) for k, v in self._removed.items()},
            )

    # -- state -----------------------------------------------------------------------
    def _find(self, bookmark_id: str) -> Bookmark:
        bookmark = self._bookmarks.get(bookmark_id)
        if bookmark is None:
            raise ReadeckStatus(404)
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

    def _ordered(self) -> list[Bookmark]:
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

    def _render(self, b: Bookmark, *, detail: bool = False) -> dict[str, Any]:
        site = host(b.url)
        answer: dict[str, Any] = {
            "id": b.id,
            "href": self._href(b.id),
            "created": iso(b.created),
            "updated": iso(b.updated),
            "state": b.state,
            "loaded": b.state != 2,
            "url": b.url,
            "title": b.title,
            "site_name": b.site_name,
            "site": site,
            "authors": None if b.authors is None else list(b.authors),
            "lang": b.lang,
            "text_direction": b.text_direction,
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
        if b.published is not None:  # omitempty: a nil time is no key at all
            answer["published"] = iso(b.published)
        if b.word_count:  # omitempty
            answer["word_count"] = b.word_count
        if b.reading_time:
            answer["reading_time"] = b.reading_time
        if detail and b.read_anchor:  # detail only, omitted when empty
            answer["read_anchor"] = b.read_anchor
        return self._shown(b.id, answer)
