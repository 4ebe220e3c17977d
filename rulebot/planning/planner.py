"""The planner: rules × library × now → Plan. Pure: it reads, never writes.

Semantics (design.md, "Planner semantics"):

- rules run in file order, each seeing the library as earlier rules left
  it (a simulated state); a deleted item is gone for later rules;
- actions that would change nothing are dropped, so planning again right
  after a successful apply plans nothing (except what ``limit`` held back);
- within a rule, items go oldest ``time_added`` first, then by numeric
  ``item_id``; within an item, actions in the order written;
- ``keep_newest: N`` sets aside the N most recently added matches, then
  ``limit: N`` acts on the oldest N of the rest that get at least one action;
- deleted items are never candidates;
- a rule with ``grace`` is two-phase (mark-for-op): a matching item first
  gets the tag ``rulebot:RULE:YYYY-MM-DD`` (the day its actions fall due, in
  the config's timezone); on or after that day, if it still matches and still
  carries the mark, the actions run and the mark goes; a marked item that no
  longer matches loses its mark. Marks are ordinary tag actions in the plan.
  Only a mark rulebot set (``marks``: what the journal confirmed) counts; any
  other is replaced by a fresh one, and the plan says so.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rulebot.bulk import gc_paused
from rulebot.errors import LimitExceededError
from rulebot.library.item import Item
from rulebot.library.tagcase import Fold, unicode_lower
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.planning.spool import Spool
from rulebot.rules.actions import Action, TagsAdd, TagsRemove
from rulebot.rules.capabilities import plan_fold
from rulebot.rules.conditions import Where
from rulebot.rules.vocab import CompileContext

# the grace marks rulebot set, as the journal confirmed them (Store.grace_marks):
# rule -> item id -> marks
Marks = Mapping[str, Mapping[str, Collection[str]]]


class RuleLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def where(self) -> Where | None: ...
    @property
    def actions(self) -> list[Action]: ...
    @property
    def limit(self) -> int | None: ...
    @property
    def keep_newest(self) -> int | None: ...

    # `grace` (seconds) is optional: read with getattr, so plain test doubles still work


def item_ref(item: Item) -> dict[str, Any]:
    """An item as the plan found it: what listings show, and what its actions
    depend on, which ``apply`` of a saved plan checks again (``engine.Seen``):
    a service may change tags without a new ``time_updated`` (Karakeep's tag
    rename keeps ``modifiedAt``)."""
    return {
        "item_id": item.item_id,
        "title": item.title,
        "url": item.url,
        "time_updated": item.time_updated or 0,
        "status": item.status,
        "favorite": item.favorite,
        "tags": None if item.tags is None else list(item.tags),
    }


def url_keys(item: Item) -> set[str]:
    return {u for u in (item.given_url, item.resolved_url) if u}


class Originals(dict[str, Item]):
    """The library as stored before the plan (id -> item). ``ref`` gives an
    item's reference in the plan, made once: all the actions a first run
    plans for one item share one dict (a plan holds 100k+ of them)."""

    def __init__(self, items: Iterable[tuple[str, Item]] | Mapping[str, Item] = ()) -> None:
        super().__init__(items)
        self.refs: dict[str, dict[str, Any]] = {}

    def ref(self, item: Item) -> dict[str, Any]:
        found = self.refs.get(item.item_id)
        if found is None:
            found = self.refs[item.item_id] = item_ref(self.get(item.item_id, item))
        return found


class Simulation:
    """The library as earlier rules left it.

    ``by_id`` serves lookups and account-wide actions; ``in_order`` holds the
    same items oldest first (``None`` where one was deleted), so matching a
    rule is one pass over a list. ``time_added`` and ``item_id`` never change,
    so one sort serves every rule.
    """

    def __init__(self, items: Iterable[Item], *, ordered: bool = False) -> None:
        live = [item for item in items if not item.is_deleted]
        if not ordered:  # Store.items() is already in this order (a refinement of it)
            live.sort(key=_order)
        self.in_order: list[Item | None] = list(live)
        self.position = {item.item_id: index for index, item in enumerate(live)}
        self.by_id = {item.item_id: item for item in live}

    def hide(self, item: Item) -> None:
        """Out of sight of later rules (held back by ``keep_newest`` in one pass)."""
        self.in_order[self.position[item.item_id]] = None
        self.by_id.pop(item.item_id, None)

    def put(self, item: Item) -> None:
        if item.is_deleted:
            self.in_order[self.position[item.item_id]] = None
            self.by_id.pop(item.item_id, None)
        else:
            self.in_order[self.position[item.item_id]] = item
            self.by_id[item.item_id] = item


def _order(item: Item) -> tuple[int, int]:
    item_id = item.item_id
    return (item.time_added or 0, int(item_id) if item_id.isdigit() else 0)


class Urls:
    """The saved URLs of a library (item id -> item), collected only when an
    ``add`` first asks (the library as it is then)."""

    def __init__(self, library: Mapping[str, Item]) -> None:
        self.library = library
        self.seen: set[str] | None = None

    def __contains__(self, url: object) -> bool:
        return url in self._all()

    def add(self, url: str) -> None:
        self._all().add(url)

    def _all(self) -> set[str]:
        if self.seen is None:  # a deleted item (a local apply keeps it so) has no URL saved
            live = (item for item in self.library.values() if not item.is_deleted)
            self.seen = {u for item in live for u in url_keys(item)}
        return self.seen


def make_plan(
    rules: Sequence[RuleLike],
    items: Iterable[Item],
    now: int,
    *,
    config_sha256: str = "",
    source: dict[str, Any] | None = None,
    observe: Callable[[RuleLike, Simulation], None] | None = None,
    used: Mapping[str, int] | None = None,
    timezone: dt.tzinfo = dt.UTC,
    ordered: bool = False,
    marks: Marks | None = None,
) -> Plan:
    """The plan; ``observe(rule, state)`` sees the library as each rule sees it
    (``explain`` uses it to show conditions against the simulated state).
    ``used`` is how many items each rule already acted on in its current
    schedule period (``Usage.items``): its ``limit`` holds per period.
    ``ordered``: ``items`` already come oldest first (``Store.items()``).
    ``marks``: the grace marks rulebot set (``Usage.marks``); no other counts."""
    used = used or {}
    fold = plan_fold(source)  # how the source compares tags, for grace marks
    state = Simulation(items, ordered=ordered)
    original = Originals(state.by_id)
    urls = Urls(state.by_id)  # the dict rules change as they go
    planned: list[PlannedAction] = []
    matched: dict[str, int] = {}
    for rule in rules:
        if observe is not None:
            observe(rule, state)
        if any(a.account_wide for a in rule.actions):
            planned.extend(_plan_account_rule(rule, state, urls, now))
        else:
            candidates = matching(rule, state, now)
            matched[rule.name] = len(candidates)
            left = None if rule.limit is None else max(0, rule.limit - used.get(rule.name, 0))
            if getattr(rule, "grace", None):
                grace = Grace(rule, now, timezone, (marks or {}).get(rule.name), fold)
                planned.extend(_flat(grace.plan(candidates, left, state, original)))
            else:
                acted = _plan_item_rule(rule, candidates, left, state, original, now)
                planned.extend(_flat(acted))
    return _plan(rules, now, planned, matched, config_sha256, source)


def one_pass_ok(rules: Sequence[RuleLike]) -> bool:
    """Whether ``plan_in_passes`` gives ``make_plan``'s answer for these
    rules. ``duplicate`` (groups over the library) needs the whole library;
    so do a second ``keep_newest`` rule, a ``limit`` after one (the items a
    ``keep_newest`` rule holds back go on to later rules late), and
    ``keep_newest`` on a ``grace`` rule."""
    if any(r.where is not None and r.where.library for r in rules):
        return False
    if any(r.keep_newest and getattr(r, "grace", None) for r in rules):
        return False
    keeps = [k for k, rule in enumerate(rules) if rule.keep_newest]
    return len(keeps) <= 1 and not (
        keeps and any(rule.limit is not None for rule in rules[keeps[0] + 1 :])
    )


def plan_in_passes(
    rules: Sequence[RuleLike],
    chunks: Iterable[list[Item]],
    now: int,
    *,
    config_sha256: str = "",
    source: dict[str, Any] | None = None,
    used: Mapping[str, int] | None = None,
    timezone: dt.tzinfo = dt.UTC,
    release: int = 512,
    spill: int | None = None,
    marks: Marks | None = None,
) -> Plan:
    """``make_plan``'s plan, made in one pass over the library a chunk at a
    time (``chunks``: the live items oldest first, as ``Store.iter_items``
    gives them), so the library is never held whole.

    Each chunk goes through the rules in file order, as the whole library
    would: an item rule reads and changes only its own items, a ``limit``
    counts on across chunks (items come oldest first), account-wide actions
    are tallied (items changed, URLs seen) and placed at their rule's
    position at the end, and a ``keep_newest: N`` rule holds its matches
    back (those with N newer matches behind them are acted on, in batches,
    and go on to later rules; the N still held at the end are the ones
    kept), after which each rule's actions are put back in item order. Only for rules
    ``one_pass_ok`` accepts; a property test holds it to ``make_plan``.
    ``release``: held-back items go on in batches of at least this many;
    ``spill``: past this many actions the plan goes to disk (``Spool``;
    default ``spool.SPILL``)."""
    spool = Spool(2 * len(rules), spill)
    graces = {  # grace rules: their marks and due actions, then their unmarks
        k: Grace(rule, now, timezone, (marks or {}).get(rule.name), plan_fold(source))
        for k, rule in enumerate(rules)
        if _grace(rule)
    }
    one_pass = _OnePass(rules, now, used or {}, release, graces, spool)
    position = 0
    with gc_paused():  # a first run makes an action, a send and an item per change
        for chunk in chunks:
            one_pass.chunk(chunk, position)
            position += len(chunk)
        actions = one_pass.finish()
    return _plan(rules, now, actions, one_pass.matched, config_sha256, source)


def _plan(
    rules: Sequence[RuleLike],
    now: int,
    actions: Sequence[PlannedAction],
    matched: dict[str, int],
    config_sha256: str,
    source: dict[str, Any] | None,
) -> Plan:
    return Plan(
        created_at=now,
        actions=actions,
        config_sha256=config_sha256,
        source=source or {"kind": "local"},
        rules=[r.name for r in rules],
        matched=matched,
    )


class _OnePass:
    """The state of one pass: each rule's actions so far, its budget left,
    the account-wide tallies and the keep rule's held-back items."""

    def __init__(
        self,
        rules: Sequence[RuleLike],
        now: int,
        used: Mapping[str, int],
        release: int,
        graces: Mapping[int, Grace],
        spool: Spool,
    ) -> None:
        self.rules, self.now, self.release = rules, now, release
        # grace rules: their marks and due actions first, then (after every
        # chunk's) the unmarks, as make_plan orders them
        self.graces = graces
        # rule k's actions go to part 2k, its unmarks to part 2k + 1, each
        # with the item's place in the library, to restore item order where
        # held-back items went on late
        self.spool = spool
        self.matched = {rule.name: 0 for rule in rules if not _account_wide(rule)}
        self.left = [
            None if r.limit is None else max(0, r.limit - used.get(r.name, 0)) for r in rules
        ]
        self.changed: dict[tuple[int, int], int] = {}  # (rule, action) -> items changed
        self.sends: dict[tuple[int, int], dict[str, Any]] = {}  # (rule, action) -> its send
        self.adds = [
            (k, j, action)
            for k, rule in enumerate(rules)
            if _account_wide(rule)
            for j, action in enumerate(rule.actions)
            if action.name == "add"
        ]
        self.wanted = {action.url for _, _, action in self.adds}  # type: ignore[attr-defined]
        self.seen: set[str] = set()  # of those, the URLs saved when the first add asks
        self.keep = next((k for k, rule in enumerate(rules) if rule.keep_newest), None)
        # the keep rule's newest matches so far: (place, item as it sees it, as stored)
        self.held: deque[tuple[int, Item, Item]] = deque()
        self.late = False  # some held items went on (their actions come late)
        self.releasing = False  # those being planned now

    def chunk(self, items: list[Item], first: int) -> None:
        state = Simulation(items, ordered=True)
        places = {item.item_id: first + n for n, item in enumerate(items)}
        self._rules(state, Originals(state.by_id), places, 0)

    def _rules(
        self, state: Simulation, original: Originals, places: dict[str, int], start: int
    ) -> None:
        for k in range(start, len(self.rules)):
            rule = self.rules[k]
            if _account_wide(rule):
                self._account_wide(k, state)
                continue
            candidates = matching(rule, state, self.now)
            self.matched[rule.name] += len(candidates)
            if k != self.keep:
                self._act(k, candidates, state, original, places)
                continue
            for item in candidates:  # held back; each goes on from here when released
                state.hide(item)
                self.held.append((places[item.item_id], item, original[item.item_id]))
            if len(self.held) >= (rule.keep_newest or 0) + self.release:
                self._release(len(self.held) - (rule.keep_newest or 0), act=True)

    def _act(
        self,
        k: int,
        candidates: list[Item],
        state: Simulation,
        original: Originals,
        places: dict[str, int],
    ) -> None:
        rule, left = self.rules[k], self.left[k]
        grace = self.graces.get(k)
        if grace is None:
            acted = _plan_item_rule(rule, candidates, left, state, original, self.now, keep=False)
        else:
            acted = grace.act(candidates, left, state, original)
        if left is not None:
            self.left[k] = max(0, left - len(acted))
        late = self.releasing
        for item_id, actions in acted:
            self.spool.add(2 * k, places[item_id], actions, late)
        if grace is not None:
            matched = {item.item_id for item in candidates}
            for item_id, actions in grace.unmark(matched, state, original):
                self.spool.add(2 * k + 1, places[item_id], actions, late)

    def _release(self, count: int, *, act: bool) -> None:
        """The ``count`` oldest held items go on, together: the keep rule acts
        on them (``act``: newer matches arrived, so they are not among the
        newest N), then every later rule sees them."""
        assert self.keep is not None
        released = [self.held.popleft() for _ in range(count)]
        state = Simulation([item for _, item, _ in released], ordered=True)
        original = Originals((item.item_id, stored) for _, item, stored in released)
        places = {item.item_id: place for place, item, _ in released}
        self.late = self.releasing = True
        if act:
            self._act(self.keep, list(state.by_id.values()), state, original, places)
        self._rules(state, original, places, self.keep + 1)
        self.releasing = False

    def _account_wide(self, k: int, state: Simulation) -> None:
        for j, action in enumerate(self.rules[k].actions):
            if self.adds and (k, j) == self.adds[0][:2]:  # make_plan collects URLs here
                self.seen.update(
                    u for i in state.by_id.values() for u in url_keys(i) if u in self.wanted
                )
            if action.name == "add":
                continue
            effect = action.on_library(state.by_id, _NO_URLS, self.now)
            if effect is not None:
                for item in effect.changed:
                    state.put(item)
                self.changed[k, j] = self.changed.get((k, j), 0) + len(effect.changed)
                self.sends[k, j] = effect.send  # the same in every chunk

    def finish(self) -> Sequence[PlannedAction]:
        if self.keep is not None:
            kept = self.rules[self.keep].keep_newest or 0
            if len(self.held) > kept:
                self._release(len(self.held) - kept, act=True)
            # the newest N matches: kept aside, yet later rules see them
            self._release(len(self.held), act=False)
        for k, rule in enumerate(self.rules):
            if not _account_wide(rule):
                continue
            for j, action in enumerate(rule.actions):
                if action.name == "add":
                    effect = action.on_library({}, self.seen, self.now)
                    if effect is None:
                        continue
                    self.seen.add(action.url)  # type: ignore[attr-defined]
                    send, why_ = effect.send, ("no item has this URL",)
                elif (count := self.changed.get((k, j), 0)) == 0:
                    continue
                else:
                    send = self.sends[k, j]
                    why_ = (f"changes {count} item{'s' if count != 1 else ''}",)
                self.spool.add(2 * k, 0, [PlannedAction(rule.name, send, None, why_)])
        late = range(2 * (self.keep or 0), 2 * len(self.rules)) if self.late else ()
        return self.spool.finish(late)


# what a rule did, per item it acted on, in order: the item's id and its actions
Acted = list[tuple[str, list[PlannedAction]]]


def _flat(acted: Acted) -> list[PlannedAction]:
    return [action for _, actions in acted for action in actions]


def _grace(rule: RuleLike) -> bool:
    return bool(getattr(rule, "grace", None))


def _account_wide(rule: RuleLike) -> bool:
    return any(a.account_wide for a in rule.actions)


_NO_URLS: frozenset[str] = frozenset()


def matching(rule: RuleLike, state: Simulation, now: int) -> list[Item]:
    """Live items that match ``where``, oldest first."""
    where = rule.where
    if where is None:
        return [item for item in state.in_order if item is not None]
    return where.select(state.in_order, now)


def why(rule: RuleLike, item: Item, now: int) -> tuple[str, ...]:
    """The reasons, built only for items that get an action (strings cost).

    Interned: most items of a rule share them ("tag read-later", "status
    unread"), and a first run can plan 100k+ actions."""
    if rule.where is None:
        return ("every item (no where)",)
    fixed = rule.where.fixed  # the same for every item the rule matches
    if fixed is not None:
        return fixed
    return tuple(map(sys.intern, rule.where.because(item, now)))


def _plan_item_rule(
    rule: RuleLike,
    candidates: list[Item],
    limit: int | None,
    state: Simulation,
    original: Originals,
    now: int,
    *,
    keep: bool = True,
) -> Acted:
    """``keep``: set ``keep_newest`` aside here (one pass does it itself)."""
    if keep and rule.keep_newest:
        # candidates are oldest first, so the newest N are the last N
        kept = {item.item_id for item in candidates[-rule.keep_newest :]}
        candidates = [item for item in candidates if item.item_id not in kept]
    acted: Acted = []
    name, actions = rule.name, rule.actions
    for item in candidates:
        if limit is not None and len(acted) >= limit:
            break
        sends, current = _effects(actions, item, now)
        if sends:
            ref = original.ref(item)
            reasons_ = why(rule, item, now)
            acted.append(
                (item.item_id, [PlannedAction(name, send, ref, reasons_) for send in sends])
            )
            state.put(current)
    return acted


class Grace:
    """One grace rule's plan: marks, due actions, unmarks (Cloud Custodian's
    mark-for-op). The mark lives in the library, so it shows in the reading
    app; removing it by hand postpones the action.

    Only a mark rulebot set itself (``known``: the marks the journal confirmed
    per item) starts a grace period. A tag that merely reads as one (typed,
    planted by another client, left from a lost store; in any case, with the
    date in any ISO form) is replaced by a fresh mark, due a whole grace
    period from today, and the plan says so: it never brings an action
    forward."""

    def __init__(
        self,
        rule: RuleLike,
        now: int,
        timezone: dt.tzinfo,
        known: Mapping[str, Collection[str]] | None = None,
        fold: Fold = unicode_lower,
    ) -> None:
        self.rule = rule
        self.now = now
        self.prefix = f"rulebot:{rule.name}:"
        self.known = known or {}
        self.fold = fold  # the source's (rulebot.library.tagcase): marks are tags like any other
        self.ctx = CompileContext(fold=fold)
        today = dt.datetime.fromtimestamp(now, timezone)
        self.today = today.date()
        seconds = int(getattr(rule, "grace", 0) or 0)
        self.due = (today + dt.timedelta(seconds=seconds)).date()

    def marks(self, item: Item) -> list[str]:
        """The item's tags that read as this rule's mark, whoever set them."""
        size = len(self.prefix)
        return [
            tag
            for tag in item.tags or ()
            if self.fold(tag[:size]) == self.fold(self.prefix) and _day(tag[size:]) is not None
        ]

    def due_day(self, marks: Iterable[str]) -> dt.date | None:
        """The earliest day the marks name; None when there are none."""
        days = [day for mark in marks if (day := _day(mark[len(self.prefix) :])) is not None]
        return min(days) if days else None

    def plan(
        self,
        candidates: list[Item],
        limit: int | None,
        state: Simulation,
        original: Originals,
    ) -> Acted:
        acted = self.act(candidates, limit, state, original)
        return acted + self.unmark({item.item_id for item in candidates}, state, original)

    def act(
        self,
        candidates: list[Item],
        limit: int | None,
        state: Simulation,
        original: Originals,
    ) -> Acted:
        """Marks for matching items, and the actions of those due."""
        rule, now = self.rule, self.now
        if rule.keep_newest:
            kept = {item.item_id for item in candidates[-rule.keep_newest :]}
            candidates = [item for item in candidates if item.item_id not in kept]
        acted: Acted = []
        for item in candidates:
            if limit is not None and len(acted) >= limit:
                break
            if item.tags is None:
                continue  # tags unknown: a mark could not be seen again
            marks = self.marks(item)
            set_here = self.known.get(item.item_id, ())
            due = self.due_day(mark for mark in marks if mark in set_here)
            steps: list[Action]
            if due is None:
                mark = f"{self.prefix}{self.due.isoformat()}"
                steps = [TagsAdd([mark], self.ctx)]
                note = f"grace: marked, due {self.due.isoformat()}"
                if marks:  # not rulebot's: replaced (removed first: it may be spelled alike)
                    steps.insert(0, TagsRemove(marks, self.ctx))
                    note = (
                        f"grace: {', '.join(marks)} was not set by rulebot (its store has no "
                        f"record of it), so it does not count: marked afresh, due "
                        f"{self.due.isoformat()}"
                    )
            elif self.today >= due:
                steps = [*rule.actions, TagsRemove(marks, self.ctx)]
                note = f"grace: due {due.isoformat()}"
            else:
                continue  # marked, not yet due
            sends, current = _effects(steps, item, now)
            if sends:
                ref = original.ref(item)
                reasons_ = (*why(rule, item, now), sys.intern(note))
                actions = [PlannedAction(rule.name, send, ref, reasons_) for send in sends]
                acted.append((item.item_id, actions))
                state.put(current)
        return acted

    def unmark(self, matched: set[str], state: Simulation, original: Originals) -> Acted:
        """Marked items that no longer match (not in ``matched``) lose the mark
        (whoever set it: a mark never makes anything happen sooner)."""
        unmarked: Acted = []
        for entry in list(state.in_order):
            if entry is None or entry.item_id in matched:
                continue
            marks = self.marks(entry)
            if not marks:
                continue
            sends, current = _effects([TagsRemove(marks, self.ctx)], entry, self.now)
            ref = original.ref(entry)
            note = "grace: no longer matches, mark removed"
            if sends:
                actions = [PlannedAction(self.rule.name, send, ref, (note,)) for send in sends]
                unmarked.append((entry.item_id, actions))
            state.put(current)
        return unmarked


def _day(text: str) -> dt.date | None:
    """The date a mark names, in any ISO 8601 form (``2026-12-03``, ``20261203``)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _effects(actions: Sequence[Action], item: Item, now: int) -> tuple[list[dict[str, Any]], Item]:
    """The sends of ``actions`` on ``item`` in order, and the item afterwards."""
    current = item
    sends = []
    for action in actions:
        if current.is_deleted:
            break
        stepped = action.step(current, now)
        if stepped is None:
            continue
        send, current = stepped
        sends.append(send)
    return sends, current


def _plan_account_rule(
    rule: RuleLike, state: Simulation, urls: Urls, now: int
) -> list[PlannedAction]:
    planned = []
    for action in rule.actions:
        effect = action.on_library(state.by_id, urls, now)
        if effect is None:
            continue
        for changed in effect.changed:
            state.put(changed)
        if effect.added_url:
            urls.add(effect.added_url)
            why = ("no item has this URL",)
        else:
            count = len(effect.changed)
            why = (f"changes {count} item{'s' if count != 1 else ''}",)
        planned.append(PlannedAction(rule.name, effect.send, None, why))
    return planned


@dataclass(frozen=True)
class Limits:
    max_actions: int
    max_deletes: int


@dataclass(frozen=True)
class Usage:
    """What scheduled rules already did in their current schedule period,
    as the journal confirmed it (or a crashed run may have done it), and
    the grace marks rules set (whenever they set them).

    A rule's period starts at its most recent cron time; a rule without a
    schedule has no period beyond the run itself, so it has no usage."""

    items: Mapping[str, int] = field(default_factory=dict)  # rule -> items acted on
    deletes: int = 0  # destructive actions of those rules in their periods
    limits: Mapping[str, int] = field(default_factory=dict)  # rule -> its `limit`
    marks: Marks = field(default_factory=dict)  # grace rule -> item id -> marks it set


def check_limits(plan: Plan, limits: Limits, usage: Usage | None = None) -> None:
    """Fail closed, before anything is sent, with the numbers in the error."""
    usage = usage or Usage()
    over = []
    if len(plan) > limits.max_actions:
        over.append(
            f"{len(plan)} actions exceed max_actions {limits.max_actions} "
            f"(override with --max-actions {len(plan)})"
        )
    deletes = plan.deletes + usage.deletes
    if deletes > limits.max_deletes:
        earlier = f" ({usage.deletes} already this schedule period)" if usage.deletes else ""
        over.append(
            f"{deletes} deletions{earlier} exceed max_deletes {limits.max_deletes} "
            f"(override with --max-deletes {deletes})"
        )
    # the planner keeps each rule within its period's budget; a saved plan
    # (`apply`) may have been made before other runs spent it
    spent = {rule: usage.items.get(rule, 0) for rule in usage.limits}
    planned_items: dict[str, set[str]] = {rule: set() for rule, done in spent.items() if done}
    if planned_items:  # only rules that already spent part of their limit this period
        for action in plan.actions:
            item_id = action.send.get("item_id")
            if item_id is not None and action.rule in planned_items:
                planned_items[action.rule].add(item_id)
    for rule, items in planned_items.items():
        limit, done = usage.limits[rule], spent[rule]
        if items and len(items) + done > limit:
            over.append(
                f"rule {rule} would act on {len(items)} items, but {done} of its limit {limit} "
                "were already acted on this schedule period (plan again)"
            )
    if over:
        raise LimitExceededError(
            "safety limit: " + "; ".join(over) + ". Nothing was sent; raise the limits in the "
            "config's `limits:` or on the command line if this plan is what you want."
        )
