"""A Shaarli's links, tags and history, and how the API shows them."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rulebot.fake.base import FakeServer
from rulebot.fake.shaarli.model import (
    ApiError,
    Draft,
    Event,
    Link,
    at,
    atom,
    clean_tags,
    clean_url,
    lower_ascii,
    php_compare,
    php_key,
    small_hash,
)
from rulebot.fake.shaarli.search import search

HISTORY_RETENTION = 2678400  # seconds: 31 days (History::$retentionTime)
NO_MARKDOWN = "nomarkdown"  # a special tag the tag list leaves out


class ShaarliLibrary(FakeServer):
    """The links and history of one Shaarli (its owner is the API's user)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        now: int | None = None,
        title: str = "Test Shaarli",
        default_private: bool = False,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency, now=now)
        self.title = title  # general.title, shown by /info
        self.default_private = default_private  # privacy.default_private_links
        self._links: dict[int, Link] = {}  # in stored order
        self._history: list[Event] = []  # newest first
        # the oldest event's time: a change filters the history only when one
        # is past retention (a first run of 10,000 links took 322 s refiltering
        # every event on every request)
        self._oldest = float("inf")

    # -- test helpers --------------------------------------------------------------
    def add_link(
        self,
        url: str = "",
        title: str = "",
        *,
        tags: Iterable[str] = (),
        description: str = "",
        private: bool = False,
        created: int | datetime | None = None,
        updated: int | datetime | None = None,
    ) -> int:
        """Save a link as ``POST /links`` would (URL and tags cleaned, a
        ``CREATED`` event); 409 (the URL is saved) raises ``ApiError``."""
        draft = Draft(
            url=clean_url(url),
            title=title.strip(),
            description=description,
            tags=clean_tags(list(tags)),
            private=private,
            created=at(created) if isinstance(created, int) else created,
            updated=at(updated) if isinstance(updated, int) else updated,
        )
        with self._lock:
            if self._by_url(draft.url) is not None:
                raise ApiError(409, f"a link already has {draft.url}")
            return self._insert(draft).id

    def links(self, visibility: str = "all") -> list[dict[str, Any]]:
        """Every link as ``GET /links?limit=all`` shows it, newest first."""
        with self._lock:
            return [self._render(link, self.base_url + "/") for link in self._listed(visibility)]

    def link(self, link_id: int) -> dict[str, Any]:
        with self._lock:
            return self._render(self._find(link_id), self.base_url + "/")

    def tags(self) -> list[dict[str, Any]]:
        """The tag list as ``GET /tags`` shows it."""
        with self._lock:
            return [{"name": name, "occurrences": n} for name, n in self._tag_counts("all")]

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_event(e) for e in self._history]

    # -- state helpers -----------------------------------------------------------------
    def _find(self, link_id: int) -> Link:
        link = self._links.get(link_id)
        if link is None:
            raise ApiError(404, "Link not found")
        return link

    def _by_url(self, url: str) -> Link | None:
        """``findByUrl``: the exact stored URL string; notes (no URL) never match."""
        if not url:
            return None
        return next((link for link in self._links.values() if link.url == url), None)

    def _listed(self, visibility: str = "all", **filters: Any) -> list[Link]:
        """Sticky first, then ``created`` newest first (in one second: the
        highest id first, as the real server was seen to do), filtered."""
        ordered = sorted(
            self._links.values(), key=lambda link: (link.created, link.id), reverse=True
        )
        ordered.sort(key=lambda link: not link.sticky)
        return search(ordered, visibility=visibility, **filters)

    def _insert(self, draft: Draft) -> Link:
        """``BookmarkFileService::add``: the next id (max + 1, from 0), the short
        URL from the creation date and id, a note's URL and the title fallback."""
        link_id = max(self._links) + 1 if self._links else 0
        created = draft.created or at(self.now)
        shorturl = small_hash(created, link_id)
        link = Link(
            id=link_id,
            url=draft.url,
            shorturl=shorturl,
            title=draft.title,
            description=draft.description,
            tags=list(draft.tags),
            private=draft.private,
            created=created,
            updated=draft.updated,
        )
        _validate(link)
        self._links[link_id] = link
        self._record("CREATED", link_id)
        return link

    def _save(self, link: Link, *, record: bool = True) -> None:
        """``BookmarkFileService::set``: validated, ``updated`` now, an ``UPDATED`` event."""
        _validate(link)
        link.updated = at(self.now)
        if record:
            self._record("UPDATED", link.id)

    def _record(self, event: str, link_id: int | str) -> None:
        """``History::addEvent``: newest first; entries past 31 days dropped."""
        now = at(self.now)
        self._history.insert(0, Event(event, now, link_id))
        self._oldest = min(self._oldest, now.timestamp())
        cut = self.now - HISTORY_RETENTION
        if self._oldest < cut:  # something to drop: filtered whole, as Shaarli does
            self._history = [e for e in self._history if e.at.timestamp() >= cut]
            self._oldest = min((e.at.timestamp() for e in self._history), default=float("inf"))

    def _tag_counts(self, visibility: str) -> list[tuple[int | str, int]]:
        """``bookmarksCountPerTag``: case variants merged (ASCII ``strtolower``),
        the spelling met first walking newest first shown; by count, then name
        (PHP SORT_REGULAR). A tag spelled as a decimal integer is a PHP int
        key, renumbered 0, 1, … by ``array_multisort``: the name is that number."""
        counts: dict[int | str, int] = {}
        spelling: dict[str, int | str] = {}
        for link in self._listed(visibility):
            for tag in link.tags:
                if not tag or tag == NO_MARKDOWN:
                    continue
                folded = lower_ascii(tag)
                if folded not in spelling:
                    spelling[folded] = php_key(tag)
                    counts[spelling[folded]] = 0
                counts[spelling[folded]] += 1

        def order(a: tuple[int | str, int], b: tuple[int | str, int]) -> int:
            return (b[1] - a[1]) or php_compare(a[0], b[0])

        ranked = sorted(counts.items(), key=functools.cmp_to_key(order))
        renumbered: list[tuple[int | str, int]] = []
        next_int = 0
        for key, count in ranked:
            if isinstance(key, int):
                key, next_int = next_int, next_int + 1
            renumbered.append((key, count))
        return renumbered

    def _render(self, link: Link, index_url: str) -> dict[str, Any]:
        """``ApiUtils::formatLink``: a note's URL made absolute on the index URL."""
        url = link.url
        if link.is_note:
            url = index_url.rstrip("/") + "/" + url.lstrip("/")
        answer = {  # built fresh on every call: callers may keep or change it
            "id": link.id,
            "url": url,
            "shorturl": link.shorturl,
            "title": link.title,
            "description": link.description,
            "tags": list(link.tags),
            "private": link.private,
            "created": atom(link.created),
            "updated": "" if link.updated is None else atom(link.updated),
        }
        return self._shown(link.id, answer)


def _validate(link: Link) -> None:
    """``Bookmark::validate``: no URL makes a note; no title takes the URL."""
    if not link.url:
        link.url = f"/shaare/{link.shorturl}"
    if not link.title:
        link.title = link.url


def _event(event: Event) -> dict[str, Any]:
    return {"event": event.event, "datetime": atom(event.at), "id": event.id}
