"""Mirror a Pocket server's library into the store.

The first sync (or ``--full``) pages through ``/v3/get`` with
``state=all&detailType=complete``; later ones ask only for what changed
``since`` the stored cursor and apply deleted stubs. Pages may be shorter
(or longer) than ``count``: ``offset`` advances by what actually arrived, and
only an empty page ends the loop. The cursor comes from the *first* answer,
so changes made while paging are fetched again next time, and it is saved
only when the whole sync succeeded, in the same transaction as the items.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rulebot.errors import PocketError
from rulebot.item import Item

if TYPE_CHECKING:
    from rulebot.config import Config
    from rulebot.pocket import PocketClient
    from rulebot.store import Store

logger = logging.getLogger("rulebot.sync")

CURSOR_KEY = "since"
SOURCE_KEY = "source"
MAX_PAGES = 1_000_000  # a server that never sends an empty page must not loop forever


@dataclass
class SyncResult:
    full: bool
    received: int  # entries received, deleted stubs included
    deleted: int
    requests: int
    cursor: str | None


def connect(config: Config) -> PocketClient:
    """A client for the config's server; credentials come from the environment."""
    from rulebot.pocket import PocketClient

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
    params: dict[str, Any] = {"state": "all", "detailType": "complete", "sort": "oldest"}
    if not full:
        params["since"] = int(cursor) if cursor and cursor.isdigit() else cursor
    requests_before = client.requests_made
    live: dict[str, Item] = {}
    gone: set[str] = set()
    offset, received, new_cursor = 0, 0, None
    show = progress and sys.stderr.isatty()
    for page in range(MAX_PAGES):
        answer = client.get(**params, count=settings.page_size, offset=offset)
        if page == 0:
            new_cursor = _cursor(answer.get("since"))
        entries = answer["list"]
        if not entries or answer["status"] == 2:
            break
        for entry in entries.values():
            item = Item.from_pocket(entry)
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
    else:
        raise PocketError("/v3/get: the server never sent an empty page; giving up the sync")
    if show:
        print(file=sys.stderr)
    with store.transaction() as conn:
        if full:
            store.replace_all(live.values(), conn)
        else:
            store.upsert(live.values(), conn)
            store.delete(gone, conn)
        if new_cursor is not None:
            store.set_meta(CURSOR_KEY, new_cursor, conn)
        store.set_meta(SOURCE_KEY, source, conn)
    requests = client.requests_made - requests_before
    logger.info(
        "%s sync: %d received, %d deleted, %d requests",
        "full" if full else "incremental",
        received,
        len(gone),
        requests,
    )
    return SyncResult(full, received, len(gone), requests, new_cursor)


def _cursor(since: Any) -> str | None:
    """The first answer's ``since`` as a cursor; None unless it is unix seconds.

    Anything else (a list, a word) stored as the cursor would be sent back on
    every later sync and refused there: no cursor keeps the old one, or makes
    the next sync a full one.
    """
    if isinstance(since, int) and not isinstance(since, bool) and since >= 0:
        return str(since)
    if isinstance(since, str) and since.strip().isdigit():
        return since.strip()
    if since is not None:
        logger.warning("/v3/get: ignoring the server's 'since' %r: not unix seconds", since)
    return None
