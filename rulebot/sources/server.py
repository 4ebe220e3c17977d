"""What every source on a server shares, on the seam of ``sources.base``.

A service's ``source.py`` subclasses ``ServerSource`` (its kind and
capabilities, how to open its client from the settings and the
environment) and ``ServerSession`` (how a unit and an account-wide action
become requests; how its library becomes the mirror, where that is more
than a full scan). Shared here:

- ``connect``: the client, opened with the config's settings (page size,
  timeouts, the longest rate-limit wait, waits told as warnings), and the
  session on it;
- ``sync``: by default a full scan (``sources.syncing``): a service
  without a change feed lists everything, and the mirror becomes that;
- ``apply``: the plan, unit by unit on ``concurrency`` workers
  (``sources.applier``); ``perform`` hands a unit to ``item_unit`` (one
  rule's actions on one item) or ``account_wide``, and an item the server
  no longer has (``sources.client.Gone``) makes the unit moot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Self

from rulebot.sources.applier import Answer, Bulk, Unit, apply_units
from rulebot.sources.client import Gone, ServiceClient
from rulebot.sources.pacing import Cost, TimeBudget, plan_estimate
from rulebot.sources.syncing import Sync, readable, source_id

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Plan, PlannedAction, Result
    from rulebot.rules.capabilities import Capabilities
    from rulebot.rules.config import Config, ServiceSettings
    from rulebot.sources.base import SyncResult
    from rulebot.sources.paging import Bounds


class ServerSession:
    """A server source, connected. ``noun`` names one of its items in
    messages (``"bookmark"``)."""

    kind: ClassVar[str]
    noun: ClassVar[str] = "bookmark"

    def __init__(
        self,
        client: ServiceClient,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock  # this machine's: how far a server's time is believed
        self.logger = logging.getLogger(f"rulebot.{self.kind}")

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    @property
    def source_id(self) -> str:
        return source_id(self.kind, self.settings.base_url)

    # -- sync ---------------------------------------------------------------------
    def recover(self, store: Store, pending: Sequence[JournalAction]) -> None:
        """Nothing to do after a crash: the next sync shows whether they landed."""

    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """A full scan; the mirror becomes exactly what it saw. An item the
        server garbles is reported and kept out of the mirror."""
        scan = Sync(self, store)
        return scan.full(self.read(self.listing(scan.bounds)))

    def listing(self, bounds: Bounds) -> Iterable[Any]:
        """Every item the service holds, as it lists them (a full scan)."""
        raise NotImplementedError

    def to_item(self, raw: Any) -> Item:
        """One listed item as rulebot sees it (``ItemDataError`` when it cannot)."""
        raise NotImplementedError

    def read(self, raws: Iterable[Any]) -> list[Item]:
        """The listed items that read as items (each other one reported)."""
        article = "an" if self.noun[0] in "aeiou" else "a"
        return readable(raws, self.to_item, f"{article} {self.noun}", self.logger)

    # -- apply --------------------------------------------------------------------
    def apply(
        self,
        store: Store,
        plan: Plan,
        *,
        check_stale: bool,
        stop: Callable[[], bool] | None = None,
        progress: bool = False,
    ) -> Result:
        self.prepare(plan)
        return apply_units(
            store,
            plan,
            self.perform,
            kind=self.kind,
            concurrency=self.settings.concurrency,
            requests=lambda: self.client.requests_made,
            check_stale=check_stale,
            stop=stop,
            progress=progress,
            bulk=self.bulk(),
            budget=self.time_budget(),
            cost=self.unit_cost,
        )

    def time_budget(self) -> TimeBudget | None:
        """The config's ``time_budget`` for this apply, from now (None: none)."""
        seconds = self.settings.time_budget
        if seconds is None:
            return None
        return TimeBudget(seconds, self.client.pacer)

    def unit_cost(self, actions: Sequence[PlannedAction]) -> Cost:
        """The requests one unit takes, per rate class (``sources.pacing``):
        one, by default (a paced source says what its units cost)."""
        return {"default": 1}

    def prepare(self, plan: Plan) -> None:
        """What an apply of ``plan`` must know before its first unit (nothing)."""

    def bulk(self) -> Bulk | None:
        """The service's endpoint for several units in one request (none)."""
        return None

    def perform(
        self, unit: Unit, current: Item | None, library: Mapping[str, Item]
    ) -> list[Answer]:
        first = unit[0][1]
        if first.item_id is None:
            return [self.account_wide(first, library)]
        try:
            answer = self.item_unit(first.item_id, [planned for _, planned in unit], current)
        except Gone:
            return [Answer(True, f"the {self.noun} is gone on the server", moot=True)] * len(unit)
        return [answer] * len(unit)

    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        """One rule's actions on one item (``current``: as the mirror has it)."""
        raise NotImplementedError

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
        """``add``, ``tag_rename`` or ``tag_delete`` (``library``: the mirror's
        items it can touch)."""
        raise NotImplementedError


class ServerSource:
    """Where the library lives: a server, whose block in the config is ``settings``."""

    kind: ClassVar[str]
    caps: ClassVar[Capabilities]
    remote = True

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._session: ServerSession | None = None  # while connected

    @classmethod
    def from_config(cls, config: Config) -> Self:
        assert config.service is not None and config.service.kind == cls.kind
        return cls(config.service)

    @property
    def capabilities(self) -> Capabilities:
        return self.caps

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_url": self.settings.base_url}

    def client(self) -> ServiceClient:
        """A client for the configured server (credentials from the
        environment, checked here); ``client_settings`` are its keywords."""
        raise NotImplementedError

    def session(self, client: Any) -> ServerSession:
        """The session on an open ``client``."""
        raise NotImplementedError

    def client_settings(self) -> dict[str, Any]:
        """The config's settings, as every service client takes them."""
        logger = logging.getLogger(f"rulebot.{self.kind}")
        return {
            "page_size": self.settings.page_size,
            "timeout": self.settings.timeout,
            "max_wait": self.settings.max_rate_wait,
            "on_wait": lambda message: logger.warning("%s", message),
        }

    @contextmanager
    def connect(self) -> Iterator[ServerSession]:
        with self.client() as client:
            session = self.session(client)
            self._session = session
            try:
                yield session
            finally:
                self._session = None

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """Every action is native (a service with per-item stand-ins says so)."""
        return plan

    def pacing(self, plan: Plan) -> dict[str, Any] | None:
        """What ``plan`` costs at the service's rate limits, for ``plan.pacing``
        (None: the service declares none, or no session to ask)."""
        session = self._session
        if session is None or session.client.pacer is None:
            return None
        estimate = plan_estimate(
            plan.actions,
            session.unit_cost,
            session.client.pacer.limits,
            self.settings.time_budget,
        )
        return estimate.to_json()
