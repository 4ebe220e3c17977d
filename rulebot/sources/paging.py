"""One guard for every paged listing: a server cannot keep a sync paging forever.

Each source pages its library its own way (Pocket and Readeck by offset,
Wallabag by page number, Karakeep by cursor, Shaarli by offset without a
total), and each can be fed pages without end: new ids on every page, the
same page again and again, empty pages under a huge announced count, pages
of entries without a readable id. ``Listing`` watches one listing, page by
page, and stops it with the source's own error (naming the server, the
counts and the way out) when

- it has brought more different items than the server announced (Pocket's
  ``total``, Readeck's ``Total-Count``, Wallabag's ``total``), beyond a
  margin for what changes while paging;
- it has brought more than a sync may list: ``max_items`` when the config
  sets it, else the larger of ``MIN_CEILING`` and ``GROWTH`` times what the
  store mirrors (a library does not double between two syncs; a first sync
  of a bigger library sets ``max_items``);
- a page brings no new id (nothing but items already listed, or entries
  without a readable id, or no entry at all before the announced end).

Only ids count as progress, and only readable ones: a page of garbage is
not a page of news. Nothing is stored when a listing is stopped (every sync
writes the mirror only after its listing ended).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

MIN_CEILING = 100_000  # items a sync may list whatever the mirror holds
GROWTH = 2  # ... or this many times what the mirror holds
MARGIN = 0.1  # items beyond an announced total tolerated (changes while paging)


@dataclass(frozen=True)
class Bounds:
    """What a session knows before it lists: how much the store mirrors, and
    the config's ``max_items`` (None: automatic) with its key for messages."""

    mirror: int = 0
    max_items: int | None = None
    setting: str = "max_items"

    @property
    def ceiling(self) -> int:
        """The most items one listing may bring."""
        if self.max_items is not None:
            return self.max_items
        return max(MIN_CEILING, GROWTH * self.mirror)

    def why(self) -> str:
        """The ceiling, explained."""
        if self.max_items is not None:
            return f"{self.setting} is {self.max_items:,}"
        return (
            f"at most the larger of {MIN_CEILING:,} and {GROWTH} times the "
            f"{self.mirror:,} items the store mirrors"
        )


class Listing:
    """One listing of ``noun`` (``"bookmarks"``) by ``label`` (``"GET /bookmarks"``)
    from ``origin``; ``error`` builds the source's exception from a message."""

    def __init__(
        self,
        label: str,
        noun: str,
        *,
        origin: str,
        page_size: int,
        bounds: Bounds | None = None,
        error: Callable[[str], Exception],
    ) -> None:
        self.label, self.noun, self.origin = label, noun, origin
        self.page_size = max(1, page_size)
        self.bounds = bounds or Bounds()
        self._error = error
        self.announced: int | None = None  # the first total the server gave
        self.pages = 0
        self._seen: set[str] = set()
        self._yielded: set[str] = set()

    @property
    def count(self) -> int:
        """Different readable ids listed so far."""
        return len(self._seen)

    @property
    def limit(self) -> int:
        """The most different items this listing may bring, as it stands."""
        ceiling = self.bounds.ceiling
        if self.announced is None:
            return ceiling
        margin = max(self.page_size, math.ceil(self.announced * MARGIN))
        return min(ceiling, self.announced + margin)

    def announce(self, total: int | None) -> None:
        """The server's own count of what the listing holds (the first one
        given is kept: a count that grows page by page moves nothing)."""
        if self.announced is None and total is not None and total >= 0:
            self.announced = total

    def page(self, ids: Iterable[str | None], *, repeat_ends: bool = False) -> int:
        """Count one page by its entries' ids (None: no readable id); the
        number of ids it brought that this listing had not seen. A page with
        none raises, or with ``repeat_ends`` returns 0 for the caller to end
        the listing; so does a listing past its limit."""
        self.pages += 1
        fresh = 0
        entries = 0
        for item_id in ids:
            entries += 1
            if item_id is not None and item_id not in self._seen:
                self._seen.add(item_id)
                fresh += 1
        if fresh == 0 and not repeat_ends:
            if entries:
                plural = "entry" if entries == 1 else "entries"
                what = f"{entries} {plural} listed already or without a readable id"
            else:
                what = "no entry at all, before the end it announced"
            raise self._error(
                f"{self.label}: {self.origin} answered page {self.pages} with nothing new "
                f"({what}) after {self.count:,} {self.noun}; a listing that stops moving "
                "would never end: stopped the sync, nothing was stored"
            )
        if self.count > self.limit:
            raise self._error(self._too_many())
        return fresh

    def once(self, entries: Sequence[Any], ids: Sequence[str | None]) -> Iterator[Any]:
        """``entries`` (with their ``ids``) but those an earlier page brought
        already: pages shift when the library changes while it is listed, and
        each item is passed on once. One without a readable id always is, for
        the caller to report."""
        for entry, item_id in zip(entries, ids, strict=True):
            if item_id is not None:
                if item_id in self._yielded:
                    continue
                self._yielded.add(item_id)
            yield entry

    def _too_many(self) -> str:
        head = (
            f"{self.label}: {self.origin} kept sending new {self.noun}: {self.count:,} "
            f"different ones in {self.pages:,} pages"
        )
        ceiling = self.bounds.ceiling
        if self.announced is not None and self.limit < ceiling:
            return (
                f"{head}, more than the {self.announced:,} it announced; stopped the sync, "
                "nothing was stored"
            )
        return (
            f"{head}, more than a sync may list ({self.bounds.why()}); stopped the sync, "
            "nothing was stored. If the library really holds more, "
            + (
                f"raise {self.bounds.setting} in the config"
                if self.bounds.max_items is not None
                else f"set {self.bounds.setting} in the config to more than it holds"
            )
        )
