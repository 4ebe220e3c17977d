"""Mirror a Pocket server's library into the store.

The first sync (or ``--full``) pages through ``/v3/get`` with
``state=all&detailType=complete``; later ones ask only for what changed
``since`` the stored cursor and apply deleted stubs. Pages may be shorter
(or longer) than ``count``: ``offset`` advances by what actually arrived, and
only an empty page ends the loop, or a page that brings no item this sync
has not seen already (a server that ignores ``offset`` or repeats its last
page); a server that keeps sending new items well past the ``total`` it
announced, or past what a sync may list when it announced none, is refused
(``rulebot.sources.paging``). The cursor comes from the *first* answer, so changes
made while paging are fetched again next time, and it is saved only when the
whole sync succeeded, in the same transaction as the items. A ``since``
further ahead of this machine's clock than a server's may be is not taken,
and a stored one beyond it makes the sync a full one (``rulebot.sources.cursors``);
a full sync always replaces the cursor (or drops it, with no usable
``since``).

Every entry is checked at this boundary before it becomes an ``Item``: ids
are ASCII digits up to 2^63-1, and every number fits SQLite's integer; an
entry that fails is reported (one warning naming its id, clipped) and
skipped, never stored, so one bad item cannot poison the store.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError, PocketError
from rulebot.http import clip
from rulebot.library.item import Item
from rulebot.sources.cursors import believable, from_the_future
from rulebot.sources.paging import Bounds, Listing
from rulebot.sources.syncing import SOURCE_KEY, write

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import Config
    from rulebot.sources.pocket.api import PocketClient

logger = logging.getLogger("rulebot.sync")

CURSOR_KEY = "since"
MAX_ID = 2**63 - 1  # SQLite's INTEGER, and Pocket's ids
# Fields read as numbers (by Item.from_pocket, or kept in the raw JSON).
NUMERIC_FIELDS = (
    "status",
    "favorite",
    "time_added",
    "time_updated",
    "time_read",
    "time_favorited",
    "word_count",
    "time_to_read",
    "listen_duration_estimate",
    "sort_id",
    "resolved_id",
    "is_article",
    "is_index",
    "has_image",
    "has_video",
)


@dataclass
class SyncResult:
    full: bool
    received: int  # entries received, deleted stubs included
    deleted: int
    requests: int
    cursor: str | None


def connect(config: Config) -> PocketClient:
    """A client for the config's server; credentials come from the environment."""
    from rulebot.sources.pocket.api import PocketClient

    settings = config.pocket
    assert settings is not None

    def tell(message: str) -> None:
        print(f"rulebot: {message}", file=sys.stderr, flush=True)

    return PocketClient.from_env(
        settings.base_url,
        settings.consumer_key_env,
        settings.access_token_env,
        timeout=settings.timeout,
        max_rate_wait=settings.max_rate_wait,
        on_wait=tell,
    )


def sync_store(
    config: Config,
    store: Store,
    client: PocketClient,
    *,
    full: bool = False,
    progress: bool = False,
) -> SyncResult:
    settings = config.pocket
    assert settings is not None
    source = settings.base_url.rstrip("/")
    cursor = store.get_meta(CURSOR_KEY)
    if store.get_meta(SOURCE_KEY) != source:
        full = True  # a store filled from another server or an export: start over
    if cursor is None:
        full = True
    elif not full and (stored := bounded_int(cursor)) is not None:
        full = from_the_future(stored, "Pocket sync cursor")
    params: dict[str, Any] = {"state": "all", "detailType": "complete", "sort": "oldest"}
    if not full:
        params["since"] = int(cursor) if cursor and bounded_int(cursor) is not None else cursor
    requests_before = client.requests_made
    live: dict[str, Item] = {}
    gone: set[str] = set()
    listing = Listing(
        "/v3/get",
        "items",
        origin=client.base_url,
        page_size=settings.page_size,
        bounds=Bounds(store.count(), settings.max_items, "pocket.max_items"),
        error=PocketError,
    )
    offset, received, new_cursor = 0, 0, None
    show = progress and sys.stderr.isatty()
    while True:
        answer = client.get(**params, count=settings.page_size, offset=offset, total=1)
        if listing.pages == 0:
            new_cursor = _cursor(answer.get("since"), client.clean)
            if new_cursor is not None and believable(int(new_cursor), "Pocket's 'since'") is None:
                new_cursor = None  # the old cursor stays, or the next sync is a full one
            listing.announce(bounded_int(answer.get("total")))
        entries = answer["list"]
        if not entries or answer["status"] == 2:
            break
        # every key counts, readable or not: a page that brings none this sync has
        # not seen ends the paging (ending early at a page of garbage ids would
        # let a full sync drop the rest of the mirror)
        if not listing.page(map(str, entries), repeat_ends=True):
            logger.info("/v3/get: page %d brought nothing new; paging ends here", listing.pages)
            break
        for key, entry in entries.items():
            item = _item(key, entry, client.clean)
            if item is None:
                continue
            if item.is_deleted:
                gone.add(item.item_id)
                live.pop(item.item_id, None)
            else:
                live[item.item_id] = item
                gone.discard(item.item_id)
        offset += len(entries)
        received += len(entries)
        if show:
            print(f"\rrulebot: synced {received} items…", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    meta: dict[str, str | None] = {SOURCE_KEY: source}
    if new_cursor is not None or full:  # no usable `since`: no old cursor outlives a full sync
        meta[CURSOR_KEY] = new_cursor
    write(store, live.values(), full=full, gone=gone, meta=meta)
    requests = client.requests_made - requests_before
    logger.info(
        "%s sync: %d received, %d deleted, %d request%s",
        "full" if full else "incremental",
        received,
        len(gone),
        requests,
        "" if requests == 1 else "s",
    )
    return SyncResult(full, received, len(gone), requests, new_cursor)


def _cursor(since: Any, clean: Callable[[Any, int], str] = clip) -> str | None:
    """The first answer's ``since`` as a cursor; None unless it is unix seconds.

    Anything else (a list, a word) stored as the cursor would be sent back on
    every later sync and refused there: no cursor keeps the old one, or makes
    the next sync a full one.
    """
    seconds = bounded_int(since)
    if seconds is not None:
        return str(seconds)
    if since is not None:
        shown = clean(repr(since), 40) if isinstance(since, (str, int)) else type(since).__name__
        logger.warning("/v3/get: ignoring the server's 'since' %s: not unix seconds", shown)
    return None


def bounded_int(value: Any) -> int | None:
    """A non-negative integer up to 2^63-1 (an int, or a string of ASCII
    digits); None for anything else ("²", 5000 digits, -1, a bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= 19 and text.isascii() and text.isdigit():
            number = int(text)
            return number if number <= MAX_ID else None
    return None


def entry_problem(key: Any, entry: Any) -> str | None:
    """Why a ``/v3/get`` entry must not be stored, or None when it may."""
    if not isinstance(entry, dict):
        return f"it is a {type(entry).__name__}, not an object"
    item_id = entry.get("item_id", key)
    if bounded_int(item_id) is None:
        return "its item_id is not a number of at most 19 ASCII digits"
    for name in NUMERIC_FIELDS:
        value = entry.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, str) and value.strip().startswith("-"):
            value = value.strip()[1:]  # a negative number is odd, but fits
        elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
            value = -value
        if bounded_int(value) is None and not isinstance(value, bool):
            return f"its field {name!r} is not a number that fits 64 bits"
    return None


def _item(key: Any, entry: Any, clean: Callable[[Any, int], str] = clip) -> Item | None:
    """The entry as an Item, or None (with one warning) when it is unusable;
    ``clean`` masks the credentials (a server may echo them) before clipping."""
    problem = entry_problem(key, entry)
    if problem is None:
        try:
            return Item.from_pocket(entry)
        except ItemDataError as err:
            problem = str(err)
    raw_id = entry.get("item_id", key) if isinstance(entry, dict) else key
    shown = clean(str(raw_id), 40) if isinstance(raw_id, (str, int)) else type(raw_id).__name__
    logger.warning("/v3/get: skipped item %s: %s", shown, clean(problem, 200))
    return None
