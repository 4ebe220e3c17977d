"""The seam every backend implements: a ``Source`` and the ``Session`` it opens.

A source is a small adapter: its capabilities (which item fields it knows,
which actions it can do, whether it batches), how its library becomes the
store's mirror (``Session.sync``), and how a plan's actions become requests
(``Session.apply``, journaled before and after each request, the mirror
updated only from confirmed results). Everything else (loading, planning,
limits, rendering, recording runs) is shared: see ``rulebot.run.pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan, Result
    from rulebot.rules.capabilities import Capabilities

# what an applier reports for actions it never sent because it was asked to stop
STOPPED = "not sent: rulebot was asked to stop; the next run plans it again"
# ... and for those it never sent because the server had stopped answering
UNANSWERED = "not sent: the server stopped answering; the next run plans it again"


@dataclass(frozen=True)
class SyncResult:
    full: bool
    received: int
    deleted: int
    requests: int


class Session(Protocol):
    """A source, connected: what one run uses."""

    @property
    def requests_made(self) -> int: ...

    def recover(self, store: Store, pending: Sequence[JournalAction]) -> None:
        """After a crash: ``pending`` are the actions a run sent without
        hearing back, whose runs the pipeline has just closed. A source whose
        next incremental sync could miss whether they landed makes sure it
        will not (Pocket moves its cursor back); the pipeline plans them
        again only if the sync shows they did not."""
        ...

    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Bring the store's mirror in line with the library (a no-op locally)."""
        ...

    def apply(
        self,
        store: Store,
        plan: Plan,
        *,
        check_stale: bool,
        stop: Callable[[], bool] | None = None,
        progress: bool = False,
    ) -> Result:
        """Carry out ``plan``; ``stop`` is asked between requests (the daemon's
        SIGTERM): unsent actions are then reported as skipped (``STOPPED``)."""
        ...


class Source(Protocol):
    """Where the library lives."""

    kind: str  # "local", "pocket", "karakeep", …: the config block's name
    remote: bool  # a server: synced before planning, its runs can be interrupted

    @property
    def capabilities(self) -> Capabilities: ...

    def describe(self) -> dict[str, Any]:
        """``plan.source``: ``{"kind": …, "base_url": …}``."""
        ...

    def connect(self) -> AbstractContextManager[Session]:
        """Open a session (credentials from the environment are checked here)."""
        ...

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """The plan as this source will really carry it out: where the service
        has no native form of an action (a tag rename onto an existing tag),
        the per-item actions that replace it, so the dry run stays exact.
        ``library`` holds at least the items the plan names and every item
        with a tag its account-wide actions name (``screening.touchable``), not
        necessarily the whole mirror. Connected, a source may read (never
        change) the service for what no mirror item shows (Karakeep: its
        tags that no bookmark carries)."""
        ...
