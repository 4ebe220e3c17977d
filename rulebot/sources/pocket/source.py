"""Any Pocket v3 server: ``/v3/get`` into the mirror, ``/v3/send`` in batches.

The protocol lives in ``rulebot.sources.pocket.api`` (the client), ``rulebot.sources.pocket.sync`` (the
incremental mirror) and ``rulebot.sources.pocket.sender`` (journaled batches); this module
is the adapter that puts them on the source seam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rulebot.rules.capabilities import POCKET, Capabilities
from rulebot.sources.base import SyncResult

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan, Result
    from rulebot.rules.config import Config
    from rulebot.sources.pocket.api import PocketClient


class PocketSession:
    def __init__(self, config: Config, client: PocketClient) -> None:
        self.config = config
        self.client = client

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    def recover(self, store: Store, pending: Sequence[JournalAction]) -> None:
        from rulebot.sources.pocket.sender import rewind_after_crash

        rewind_after_crash(store, pending)

    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        from rulebot.sources.pocket.sync import sync_store

        synced = sync_store(self.config, store, self.client, full=full, progress=progress)
        return SyncResult(synced.full, synced.received, synced.deleted, synced.requests)

    def apply(
        self,
        store: Store,
        plan: Plan,
        *,
        check_stale: bool,
        stop: Callable[[], bool] | None = None,
        progress: bool = False,
    ) -> Result:
        from rulebot.sources.pocket.sender import apply_remote

        self.client.show_progress = progress  # "sent batch k/n", on a terminal only
        return apply_remote(
            self.config, store, plan, self.client, check_stale=check_stale, stop=stop
        )


class PocketSource:
    kind = "pocket"
    remote = True

    def __init__(self, config: Config) -> None:
        assert config.pocket is not None
        self.config = config
        self.settings = config.pocket

    @property
    def capabilities(self) -> Capabilities:
        return POCKET

    def describe(self) -> dict[str, Any]:
        return {"kind": "pocket", "base_url": self.settings.base_url}

    @contextmanager
    def connect(self) -> Iterator[PocketSession]:
        from rulebot.sources.pocket.sync import connect

        with connect(self.config) as client:
            yield PocketSession(self.config, client)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        return plan  # every action is native /v3/send


def from_config(config: Config) -> PocketSource:
    return PocketSource(config)
