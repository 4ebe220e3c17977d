"""A Karakeep user's bookmarks and tags, and how the API shows them."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from rulebot.fake.base import FakeServer
from rulebot.fake.karakeep.model import (
    DEFAULT_USER_ID,
    Bookmark,
    KarakeepState,
    TextError,
    iso,
)

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class KarakeepLibrary(FakeServer):
    """The bookmarks and tags of one Karakeep user."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        now: int | None = None,
        rng_seed: int = 20250708,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.user_id = DEFAULT_USER_ID
        self._rng = random.Random(rng_seed)
        self._bookmarks: dict[str, Bookmark] = {}
        self._tags: dict[str, str] = {}  # id -> name (unique, case-sensitive)

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
            bookmark = Bookmark(
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

    # -- state helpers ------------------------------------------------------------------
    def _find(self, bookmark_id: str) -> Bookmark:
        bookmark = self._bookmarks.get(bookmark_id)
        if bookmark is None:
            raise TextError(404, "Bookmark not found")
        return bookmark

    def _find_tag(self, tag_id: str) -> str:
        if tag_id not in self._tags:
            raise TextError(404, "Tag not found")
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

    def _ordered(self, *, desc: bool) -> list[Bookmark]:
        """createdAt in the requested order, then id descending in both orders."""
        rows = sorted(self._bookmarks.values(), key=lambda b: b.id, reverse=True)
        return sorted(rows, key=lambda b: b.created_at, reverse=desc)

    def _render(self, bookmark: Bookmark, *, include_content: bool = False) -> dict[str, Any]:
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
            "crawledAt": iso(bookmark.first_created_at) if bookmark.crawled else None,
            "crawlStatus": status,
            "author": None,
            "publisher": None,
            "datePublished": None,
            "dateModified": None,
        }
        answer = {  # built fresh on every call: callers may keep or change it
            "id": bookmark.id,
            "createdAt": iso(bookmark.created_at),
            "modifiedAt": None if bookmark.modified_at is None else iso(bookmark.modified_at),
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
            "firstCreatedAt": iso(bookmark.first_created_at),
        }
        return self._shown(bookmark.id, answer)

    def _render_tag(self, tag_id: str) -> dict[str, Any]:
        kinds = [b.tags[tag_id] for b in self._bookmarks.values() if tag_id in b.tags]
        counts = {"ai": kinds.count("ai"), "human": kinds.count("human")}
        return {
            "id": tag_id,
            "name": self._tags[tag_id],
            "numBookmarks": len(kinds),
            "numBookmarksByAttachedType": counts,
        }
