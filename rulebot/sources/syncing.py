"""The mirror sync every server source shares: list, read, write once.

A sync lists the service (every item, or what changed since a cursor),
reads each entry into an ``Item`` and writes the mirror in ONE transaction
together with its bookkeeping (which library the mirror holds, the next
cursor), and only after the listing ended: a listing stopped halfway
(``sources.paging``) stores nothing, and an entry the server garbles is
reported and kept out of the mirror, never stored half-read.

- ``Sync.full``: a complete listing; the mirror becomes exactly what it
  brought, and an item it did not bring is gone;
- ``Sync.changes``: an incremental one; what changed is upserted, what the
  service says is gone is deleted;
- ``stored_cursor``: the cursor a sync starts from, refused (the sync is
  then a full one) when it is not unix seconds or lies further ahead than
  this machine can vouch for (``sources.cursors``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from rulebot.errors import ItemDataError
from rulebot.sources.base import SyncResult
from rulebot.sources.cursors import from_the_future
from rulebot.sources.paging import Bounds

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.library.store import Store
    from rulebot.rules.config import ServiceSettings

SOURCE_KEY = "source"  # store meta: which library the mirror holds


class Mirrored(Protocol):
    """What a sync asks of the session it runs for."""

    settings: ServiceSettings

    @property
    def kind(self) -> str: ...

    @property
    def requests_made(self) -> int: ...

    @property
    def source_id(self) -> str: ...


def source_id(kind: str, base_url: str) -> str:
    """Which library a mirror holds (store meta ``source``): another one, or
    none yet, makes the next sync a full one."""
    return f"{kind} {base_url.rstrip('/')}"


def readable(
    raws: Iterable[Any], to_item: Callable[[Any], Item], what: str, logger: logging.Logger
) -> list[Item]:
    """The entries that read as items; each other one (``what``: ``"a
    bookmark"``) is reported and left out."""
    items: list[Item] = []
    for raw in raws:
        try:
            items.append(to_item(raw))
        except ItemDataError as err:
            skipped(logger, what, err)
    return items


def skipped(logger: logging.Logger, what: str, err: ItemDataError) -> None:
    """Reports an entry the server garbled (``what``: ``"a bookmark"``): left out."""
    logger.warning("skipped %s rulebot cannot read: %s", what, err)


def write(
    store: Store,
    items: Iterable[Item],
    *,
    full: bool,
    gone: Iterable[str] = (),
    meta: Mapping[str, str | None],
) -> None:
    """One transaction: with ``full`` the mirror becomes exactly ``items`` (a
    complete listing), else ``items`` are upserted and ``gone`` deleted; then
    the store meta (a key set to None is dropped)."""
    with store.transaction() as conn:
        if full:
            store.replace_all(items, conn)
        else:
            store.upsert(items, conn)
            store.delete(gone, conn)
        for key, value in meta.items():
            if value is None:
                store.delete_meta(key, conn)
            else:
                store.set_meta(key, value, conn)


class Sync:
    """One sync of a server source's mirror: its requests are counted from
    here, and ``bounds`` is what its listing may bring (``sources.paging``)."""

    def __init__(self, session: Mirrored, store: Store) -> None:
        self.session, self.store = session, store
        self.before = session.requests_made
        self.bounds = Bounds(store.count(), session.settings.max_items, f"{session.kind}.max_items")

    def full(self, items: list[Item], meta: Mapping[str, str | None] = {}) -> SyncResult:
        """A complete listing: the mirror becomes exactly ``items``."""
        known = self.store.live_ids()  # ids, not items: the mirror is not held
        seen = {item.item_id for item in items}
        write(self.store, items, full=True, meta={SOURCE_KEY: self.session.source_id, **meta})
        return SyncResult(True, len(items), len(known - seen), self.requests)

    def changes(
        self, items: list[Item], gone: set[str], meta: Mapping[str, str | None] = {}
    ) -> SyncResult:
        """An incremental listing: ``items`` changed, ``gone`` were deleted."""
        write(
            self.store,
            items,
            full=False,
            gone=gone,
            meta={SOURCE_KEY: self.session.source_id, **meta},
        )
        return SyncResult(False, len(items), len(gone), self.requests)

    @property
    def requests(self) -> int:
        return self.session.requests_made - self.before


def stored_cursor(
    store: Store, key: str, what: str, *, clock: Callable[[], float] = time.time
) -> int | None:
    """The cursor stored under ``key`` (unix seconds), or None: there is none,
    it is not a number, or it lies ahead of this machine's clock by more than
    a server's may (``what`` names it in that warning)."""
    text = store.get_meta(key)
    if text is None or not (text.isascii() and text.isdigit() and len(text) <= 12):
        return None
    cursor = int(text)
    return None if from_the_future(cursor, what, clock=clock) else cursor
