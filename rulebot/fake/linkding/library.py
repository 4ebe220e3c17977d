"""The fake Linkding's library: one user's bookmarks and tags on a clock with
microseconds, and the edits another client makes (the API's, and the web
UI's tag rename and delete, which leave ``date_modified`` alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rulebot.fake.base import FakeServer
from rulebot.fake.linkding.model import Bookmark, Tag, normalize_url, render, tag_names_of


class LinkdingLibrary(FakeServer):
    """The state behind the routes (``FakeLinkding``); every change under ``_lock``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        now: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.bookmarks: dict[int, Bookmark] = {}
        self.tags: dict[int, Tag] = {}
        self._next_bookmark = self._next_tag = 1  # AUTOINCREMENT: never reused
        self._tick = (0, 0)  # (second, microseconds handed out in it)

    def stamp(self) -> datetime:
        """Now, with microseconds that grow within the clock's second: two
        changes never share a time, as two ``timezone.now()`` calls do not."""
        with self._lock:
            second, used = self._tick
            now = self.now
            used = used + 1 if second == now else 0
            self._tick = (now, used)
            return datetime.fromtimestamp(now, UTC) + timedelta(microseconds=used)

    def add_bookmark(
        self,
        url: str,
        title: str = "",
        tags: Sequence[str] = (),
        *,
        archived: bool = False,
        unread: bool = False,
        shared: bool = False,
        description: str = "",
        notes: str = "",
        added: float | None = None,
        modified: float | None = None,
    ) -> int:
        """A bookmark as another client (or an import, with ``added``) saves one."""
        with self._lock:
            now = self.stamp()
            bookmark = Bookmark(
                self._next_bookmark,
                url,
                _at(added) if added is not None else now,
                _at(modified) if modified is not None else now,
                title,
                description,
                notes,
                archived,
                unread,
                shared,
            )
            self._next_bookmark += 1
            bookmark.tag_ids = self._tag_ids(tag_names_of(list(tags)))
            self.bookmarks[bookmark.bookmark_id] = bookmark
            return bookmark.bookmark_id

    def touch(self, bookmark_id: int, **fields: Any) -> None:
        """An edit through the API or the UI's forms: ``tags`` replaces the set;
        ``date_modified`` becomes now."""
        with self._lock:
            bookmark = self.bookmarks[bookmark_id]
            if "tags" in fields:
                bookmark.tag_ids = self._tag_ids(tag_names_of(list(fields.pop("tags"))))
            for name, value in fields.items():
                setattr(bookmark, name, value)
            bookmark.date_modified = self.stamp()

    def remove(self, bookmark_id: int) -> None:
        """A hard delete: the bookmark goes, its tags stay."""
        with self._lock:
            del self.bookmarks[bookmark_id]

    def rename_tag(self, old: str, new: str) -> None:
        """The web UI's tag editor: the tag row renamed (sanitised), every
        bookmark's ``date_modified`` left alone, invisible to ``modified_since``."""
        with self._lock:
            tag = self._tag_named(old)
            if tag is not None:
                tag.name = new.strip().replace(" ", "-")

    def delete_tag(self, name: str) -> None:
        """The web UI's tag delete: the tag and its links go, ``date_modified`` stays."""
        with self._lock:
            tag = self._tag_named(name)
            if tag is None:
                return
            del self.tags[tag.tag_id]
            for bookmark in self.bookmarks.values():
                if tag.tag_id in bookmark.tag_ids:
                    bookmark.tag_ids.remove(tag.tag_id)

    def tag_names(self, bookmark_id: int) -> list[str]:
        with self._lock:
            return render(self.bookmarks[bookmark_id], self.tags)["tag_names"]

    def _tag_named(self, name: str) -> Tag | None:
        """The tag called ``name``, any case (the first one, as ``iexact`` finds it)."""
        return next((t for t in self.tags.values() if t.name.lower() == name.lower()), None)

    def _tag_ids(self, names: list[str]) -> list[int]:
        """``get_or_create_tags``: an existing tag of that name, any case, keeps its
        spelling; a new one is made."""
        ids: list[int] = []
        for name in names:
            tag = self._tag_named(name)
            if tag is None:
                tag = Tag(self._next_tag, name, self.stamp())
                self.tags[tag.tag_id] = tag
                self._next_tag += 1
            if tag.tag_id not in ids:
                ids.append(tag.tag_id)
        return ids

    def _existing(self, url: str) -> Bookmark | None:
        """``Bookmark.query_existing``: the first bookmark whose URL normalises alike."""
        wanted = normalize_url(url)
        return next((b for b in self.bookmarks.values() if b.url_normalized == wanted), None)

    def _lower_tags(self, bookmark: Bookmark) -> frozenset[str]:
        return frozenset(self.tags[i].name.lower() for i in bookmark.tag_ids if i in self.tags)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
