"""A Wallabag server's entries and global tags, and how the API shows them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from rulebot.fake.base import FakeServer
from rulebot.fake.wallabag.model import (
    DEFAULT_EMAIL,
    DEFAULT_USERNAME,
    Entry,
    WallabagError,
    get_int,
    host_of,
    render_date,
    slug,
    split_labels,
)


class WallabagLibrary(FakeServer):
    """Every user's entries, and the tags they share (global, lower-case)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = DEFAULT_USERNAME,
        latency: float = 0.0,
        now: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.username = username  # the user rulebot is configured as
        self._entries: dict[int, Entry] = {}
        self._tags: dict[int, str] = {}  # global: id -> lower-case label
        self._next_entry = self._next_tag = 1

    # -- test helpers ---------------------------------------------------------------
    def add_entry(
        self,
        url: str | None = None,
        title: str | None = None,
        *,
        tags: Iterable[str] = (),
        archived: bool = False,
        starred: bool = False,
        created_at: int | None = None,
        updated_at: int | None = None,
        archived_at: int | None = None,
        starred_at: int | None = None,
        language: str | None = None,
        reading_time: int = 0,
        user: str | None = None,
        entry_id: int | None = None,
    ) -> int:
        """Put an entry straight into the library; ``entry_id`` picks its id
        (any integer, as a damaged or hostile server might send)."""
        with self._lock:
            if entry_id is None:
                entry_id = self._next_entry
            self._next_entry = max(self._next_entry, entry_id + 1)
            stamp = self.now if created_at is None else created_at
            url = url or f"https://example.com/articles/{entry_id}"
            entry = Entry(
                id=entry_id,
                url=url,
                given_url=url,
                title=title,
                user=user or self.username,
                is_archived=archived,
                is_starred=starred,
                archived_at=(archived_at or stamp) if archived else None,
                starred_at=(starred_at or stamp) if starred else None,
                created_at=stamp,
                updated_at=stamp if updated_at is None else updated_at,
                language=language,
                reading_time=reading_time,
            )
            for label in tags:
                self._attach(entry, label)
            self._entries[entry_id] = entry
            return entry_id

    def remove_entry(self, entry_id: int) -> None:
        """A hard delete behind rulebot's back (the web UI, another app)."""
        with self._lock:
            del self._entries[entry_id]

    def touch(self, entry_id: int, **changes: Any) -> None:
        """Change an entry as the web UI would (``updated_at`` bumped)."""
        with self._lock:
            entry = self._entries[entry_id]
            for key, value in changes.items():
                setattr(entry, key, value)
            entry.updated_at = self.now

    @property
    def entries(self) -> dict[int, dict[str, Any]]:
        """Every entry of the configured user, as the API renders it."""
        with self._lock:
            return {
                e.id: self._render(e) for e in self._entries.values() if e.user == self.username
            }

    def labels(self, entry_id: int) -> list[str]:
        with self._lock:
            return sorted(self._tags[t] for t in self._entries[entry_id].tags)

    def tag_id(self, label: str) -> int | None:
        with self._lock:
            return next((tid for tid, name in self._tags.items() if name == label), None)

    # -- state helpers ------------------------------------------------------------------------
    def _find(self, entry_id: str, user: str) -> Entry:
        entry = self._entries.get(get_int(entry_id))
        if entry is None or entry.user != user:  # another user's entry: 404 (HEAD)
            raise WallabagError(404)
        return entry

    def _by_url(self, url: str, user: str) -> Entry | None:
        return next(
            (e for e in self._entries.values() if e.user == user and url in (e.url, e.given_url)),
            None,
        )

    def _attach(self, entry: Entry, label: str) -> None:
        label = label.strip().lower()
        if not label:
            return
        tag_id = self.tag_id(label)
        if tag_id is None:
            tag_id = self._next_tag
            self._next_tag += 1
            self._tags[tag_id] = label
        if tag_id not in entry.tags:
            entry.tags.append(tag_id)

    def _update(self, entry: Entry, form: Mapping[str, Any], *, tags_replace: bool) -> None:
        now = self.now
        for key in ("archive", "starred"):
            if key in form:
                on = str(form[key]).lower() not in ("", "0", "false")
                if key == "archive":
                    entry.is_archived, entry.archived_at = on, now if on else None
                else:
                    entry.is_starred, entry.starred_at = on, now if on else None
        if form.get("title"):
            entry.title = str(form["title"])
        if form.get("language"):
            entry.language = str(form["language"])
        labels = split_labels(str(form.get("tags") or ""))
        if labels:
            if tags_replace:
                entry.tags.clear()
            for label in labels:
                self._attach(entry, label)
        entry.updated_at = now

    def _tag_object(self, tag_id: int) -> dict[str, Any]:
        label = self._tags[tag_id]
        return {"id": tag_id, "label": label, "slug": slug(label)}

    def _tag_objects(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        return [self._tag_object(t) for t in ids]

    def _render(self, entry: Entry, detail: str = "full") -> dict[str, Any]:
        hashed = hashlib.sha1(entry.url.encode()).hexdigest()
        answer = {
            "is_archived": int(entry.is_archived),
            "is_starred": int(entry.is_starred),
            "user_name": entry.user,
            "user_email": DEFAULT_EMAIL,
            "user_id": 1,
            "tags": self._tag_objects(entry.tags),
            "is_public": False,
            "id": entry.id,
            "uid": None,
            "title": entry.title,
            "url": entry.url,
            "hashed_url": hashed,
            "origin_url": None,
            "given_url": entry.given_url,
            "hashed_given_url": hashlib.sha1(entry.given_url.encode()).hexdigest(),
            "archived_at": render_date(entry.archived_at),
            "content": None if detail == "metadata" else f"<p>{entry.title or ''}</p>",
            "created_at": render_date(entry.created_at),
            "updated_at": render_date(entry.updated_at),
            "published_at": None,
            "published_by": None,
            "starred_at": render_date(entry.starred_at),
            "annotations": [],
            "mimetype": "text/html; charset=utf-8",
            "language": entry.language,
            "reading_time": entry.reading_time,
            "domain_name": host_of(entry.url),
            "preview_picture": None,
            "http_status": "200",
            "headers": None,
            "_links": {"self": {"href": f"/api/entries/{entry.id}"}},
        }
        return self._shown(entry.id, answer)
