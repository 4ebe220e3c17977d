"""Grace rules: two-phase mark-for-op (``Grace``) and the marks that count."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from rulebot.library.item import Item
from rulebot.library.tagcase import Fold, unicode_lower
from rulebot.planning.acting import Acted, RuleLike, effects, why
from rulebot.planning.planned import PlannedAction
from rulebot.planning.simulation import Originals, Simulation
from rulebot.rules.actions import Action, TagsAdd, TagsRemove
from rulebot.rules.vocab import CompileContext

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import Config

# the grace marks rulebot set, as the journal confirmed them (Store.grace_marks):
# rule -> item id -> marks
Marks = Mapping[str, Mapping[str, Collection[str]]]


def known_marks(config: Config, store: Store) -> Mapping[str, Mapping[str, frozenset[str]]]:
    """The grace marks the config's grace rules set (``Store.grace_marks``)."""
    return store.grace_marks(rule.name for rule in config.rules if rule.grace)


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
            sends, current = effects(steps, item, now)
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
            sends, current = effects([TagsRemove(marks, self.ctx)], entry, self.now)
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
