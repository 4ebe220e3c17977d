"""The one-pass planner's state (``OnePass``): the library a chunk at a time
through every rule, for ``planner.plan_in_passes``."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from rulebot.library.item import Item
from rulebot.planning.acting import RuleLike, matching, plan_item_rule, quick_selector
from rulebot.planning.grace import Grace
from rulebot.planning.planned import PlannedAction
from rulebot.planning.simulation import Originals, Simulation, url_keys
from rulebot.planning.spool import Spool


class OnePass:
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
        # item rules that can pass over, inline, the matches they would not
        # change (not the keep rule, which holds every match, nor a grace rule)
        self.quick = [
            None if k == self.keep or k in graces or _account_wide(rule) else quick_selector(rule)
            for k, rule in enumerate(rules)
        ]
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
            quick = self.quick[k]
            if quick is None:
                candidates = matching(rule, state, self.now)
                self.matched[rule.name] += len(candidates)
            else:
                count, candidates = quick(state.in_order, self.now)
                self.matched[rule.name] += count
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
            acted = plan_item_rule(rule, candidates, left, state, original, self.now, keep=False)
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


def _account_wide(rule: RuleLike) -> bool:
    return any(a.account_wide for a in rule.actions)


_NO_URLS: frozenset[str] = frozenset()
