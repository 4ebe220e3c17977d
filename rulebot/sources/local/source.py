"""The local library: the store itself, filled from a Pocket export.

No server: ``sync`` has nothing to pull, and a plan is applied in one SQLite
transaction (``local.apply.apply_local``), journaled with the items it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rulebot.rules.capabilities import LOCAL, Capabilities
from rulebot.sources.base import SyncResult

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan, Result


class LocalSession:
    requests_made = 0

    def recover(self, store: Store, pending: Sequence[JournalAction]) -> None:
        """Nothing to do: the next sync shows whether they landed."""

    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        return SyncResult(full=False, received=0, deleted=0, requests=0)

    def apply(
        self,
        store: Store,
        plan: Plan,
        *,
        check_stale: bool,
        stop: Callable[[], bool] | None = None,
        progress: bool = False,
    ) -> Result:
        from rulebot.sources.local.apply import apply_local

        return apply_local(store, plan, check_stale=check_stale)  # one transaction: no stop


class LocalSource:
    kind = "local"
    remote = False

    @property
    def capabilities(self) -> Capabilities:
        return LOCAL

    def describe(self) -> dict[str, Any]:
        return {"kind": "local"}

    @contextmanager
    def connect(self) -> Iterator[LocalSession]:
        yield LocalSession()

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        return plan


def from_config(config: object) -> LocalSource:
    return LocalSource()
