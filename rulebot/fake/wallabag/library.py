"""A Wallabag server's entries and global tags, and how the API shows them."""

from __future__ import annotations

import re
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
    php_empty,
    render_date,
    slug,
    split_labels,
    url_hash,
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
        """``findByUrlAndUserId``: the URL's hash against ``hashed_url`` or ``hashed_given_url``."""
        wanted = url_hash(url)
        return next(
            (
                e
                for e in self._entries.values()
                if e.user == user and wanted in (url_hash(e.url), url_hash(e.given_url))
            ),
            None,
        )

    def _exists(
        self, *, user: str, query: dict[str, str], body: Any, multi: Mapping[str, list[str]]
    ) -> Any:
        """``getEntriesExistsAction``: ``url``/``hashed_url`` answer ``{"exists": …}``,
        ``urls[]``/``hashed_urls[]`` a map keyed by each URL or hash; ``true``/``false``,
        or the entry's id/``null`` with ``return_id``."""
        return_id = not php_empty(query.get("return_id"))
        hashes = [v for k, values in multi.items() if _listed(k, "hashed_urls") for v in values]
        if not php_empty(query.get("hashed_url")):
            hashes.append(query["hashed_url"])
        urls = [v for k, values in multi.items() if _listed(k, "urls") for v in values]
        if not php_empty(query.get("url")):
            urls.append(query["url"])
        url_of = {}
        for url in urls:
            hashes.append(url_hash(url))
            url_of[hashes[-1]] = url
        if not hashes:
            raise WallabagError(404)  # an access-denied exception, turned into a 404
        found: dict[str, int | None] = dict.fromkeys(hashes)
        for entry in self._entries.values():
            if entry.user != user:
                continue
            for hashed in (url_hash(entry.url), url_hash(entry.given_url)):
                if hashed in found:
                    found[hashed] = entry.id
                    break
        results = {url_of.get(h, h): (i if return_id else i is not None) for h, i in found.items()}
        if not php_empty(query.get("url")) or not php_empty(query.get("hashed_url")):
            return {"exists": next(iter(results.values()))}  # the first key's, as PHP does
        return results

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
            "hashed_url": url_hash(entry.url),
            "origin_url": None,
            "given_url": entry.given_url,
            "hashed_given_url": url_hash(entry.given_url),
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


def _listed(key: str, name: str) -> bool:
    """``name[]`` or ``name[N]``: a PHP array parameter in the query string."""
    return re.fullmatch(re.escape(name) + r"\[[^\]]*\]", key) is not None
