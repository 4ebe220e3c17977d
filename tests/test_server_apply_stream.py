"""The server applier in flat memory (#28) does what it did holding
everything: ``tests/legacy_applier.py`` is the applier as it was, and both
apply the same plans to the same store and the same fake server, whatever
the streamed one holds (``cache``: items each screening library holds),
wherever the plan is (a list, or spooled: screened item by item between
account-wide actions), with and without bulk requests, stale checks, and a
stop, a fatal error or a dead server midway. The server, the mirror, the
journal and the result document must come out the same."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebot.errors import CredentialsError, RulebotError, ServerUnreachable
from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.planning.plan import Plan
from rulebot.planning.planner import make_plan, plan_in_passes
from rulebot.rules.actions import from_send
from rulebot.sources import applier

from . import legacy_applier
from .helpers import NOW
from .test_one_pass import chunked, rule_sets
from .test_planner import items_strategy

FAULTS = [None, "stop", "fatal", "unreachable", "failing"]


class Server:
    """A fake service holding items by id; ``fault`` says what goes wrong
    and from which unit on (``after``: units answered before it)."""

    def __init__(self, items: list[Item], fault: str | None, after: int) -> None:
        self.items = {item.item_id: item for item in items}
        self.fault, self.after = fault, after
        self.units = 0
        self.lock = threading.Lock()
        self.log: list[tuple[str | None, str]] = []  # (item id, action): the sends, in order

    def stop(self) -> bool:
        return self.fault == "stop" and self.units >= self.after

    def answer(self, kind: Any, unit: list[Any]) -> list[Any]:
        with self.lock:
            self.units += 1
            if self.units > self.after and self.fault == "fatal":
                raise CredentialsError("the key was revoked")
            if self.units > self.after and self.fault == "unreachable":
                raise ServerUnreachable("nobody listens")
            answers = []
            for _, planned in unit:
                self.log.append((planned.item_id, planned.name))
                answers.append(self._one(kind, planned))
            return answers

    def _one(self, kind: Any, planned: Any) -> Any:
        if self.fault == "failing" and (planned.item_id or "").endswith("3"):
            return kind(False, "the server said no")
        action = from_send(planned.send, str)
        when = int(planned.send.get("time") or 0)
        if action.account_wide:
            urls = {i.given_url for i in self.items.values() if not i.is_deleted}
            effect = action.on_library(self.items, urls, when)
            for item in effect.changed if effect else []:
                self.items[item.item_id] = item
            if effect is not None and effect.added_url:
                made = Item(item_id=f"new-{len(self.items)}", given_url=effect.added_url)
                self.items[made.item_id] = made
                return kind(True, created=made)
            return kind(True)
        current = self.items.get(str(planned.item_id))
        if current is None or current.is_deleted:
            return kind(True, "gone", moot=True)
        effect = action.on_item(current, when)
        if effect is not None:
            self.items[current.item_id] = effect.changed[0]
        return kind(True)

    def perform(self, kind: Any) -> Any:
        def perform(unit: Any, current: Any, library: Any) -> list[Any]:
            return self.answer(kind, unit)

        return perform


class Bulk:
    """Takes archives and favourites two to a request."""

    size = 2

    def __init__(self, server: Server, kind: Any) -> None:
        self.server, self.kind = server, kind

    def accepts(self, unit: Any, current: Any) -> bool:
        return current is not None and all(p.name in ("archive", "favorite") for _, p in unit)

    def __call__(self, batch: list[Any]) -> list[list[Any]]:
        with self.server.lock:
            self.server.units += 1
            if self.server.units > self.server.after and self.server.fault == "fatal":
                raise CredentialsError("the key was revoked")
        answers = []
        for unit, _ in batch:
            with self.server.lock:
                self.server.log += [(p.item_id, p.name) for _, p in unit]
                answers.append([self.server._one(self.kind, p) for _, p in unit])
        return answers


def run(
    module: Any,
    path: Path,
    live: list[Item],
    plan: Plan,
    *,
    fault: str | None,
    after: int,
    bulk: bool,
    stale: bool,
    **extra: Any,
) -> tuple[Any, ...]:
    """Apply ``plan`` with ``module``'s applier; everything it leaves."""
    server = Server(live, fault, after)
    with Store.open(path) as store:
        store.upsert(live)
        if stale:  # some items changed on the server since the plan was made
            store.upsert([i.replace(time_updated=1) for i in live[::3]])
        try:
            result = module.apply_units(
                store,
                plan,
                server.perform(module.Answer),
                kind="test",
                concurrency=1 if fault else 3,
                requests=lambda: server.units,
                check_stale=stale,
                stop=server.stop,
                bulk=Bulk(server, module.Answer) if bulk else None,
                **extra,
            )
            document: Any = result.dumps()
        except RulebotError as err:
            document = f"{type(err).__name__}: {err}"
        [journal_run] = store.journal_runs()
        journal = [
            (e.index, e.rule, e.send, e.action, e.state, e.error, _sorted_items(e.before))
            for e in store.journal_entries(journal_run.run_id)
        ]
        mirror = store.items(include_deleted=True)
    return document, journal, journal_run.status, mirror, sorted(server.items.items())


def _sorted_items(before: dict[str, Any] | None) -> dict[str, Any] | None:
    """An account-wide action's items in id order (held whole, they came in
    the order the store listed them)."""
    if before is None or "items" not in before:
        return before
    return {**before, "items": sorted(before["items"], key=lambda s: s["item_id"])}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items_strategy,
    rule_sets(),
    st.sampled_from([1, 3, 1_000_000]),
    st.booleans(),
    st.sampled_from(FAULTS),
    st.integers(0, 6),
    st.booleans(),
    st.booleans(),
)
def test_the_streamed_applier_does_what_the_whole_one_did(
    tmp_path_factory, items, rules, cache, spooled, fault, after, bulk, stale
) -> None:
    live = [i for i in items if not i.is_deleted]
    plan = make_plan(rules, live, NOW)
    if spooled:
        ordered = sorted(live, key=lambda i: i.sort_key)
        plan = plan_in_passes(rules, chunked(ordered, 2), NOW, spill=0)
    common = {"fault": fault, "after": after, "bulk": bulk, "stale": stale}
    directory = Path(tmp_path_factory.mktemp("apply"))
    whole = run(legacy_applier, directory / "whole.db", live, plan, **common)
    streamed = run(applier, directory / "streamed.db", live, plan, cache=cache, **common)
    assert streamed[0] == whole[0]  # the result document (or the error)
    assert streamed[1] == whole[1]  # the journal: states, errors, what undo restores
    assert streamed[2:] == whole[2:]  # the run's status, the mirror, the server


def test_a_bulk_unit_is_its_items_only_one_before_any_account_wide_unit(tmp_path: Path) -> None:
    """Blocks of units (``applier.BLOCK``) do not change which go in bulk:
    an item with a second unit far away, in another block, does not."""
    live = [Item(item_id=str(n), given_url=f"https://a.org/{n}", tags=("x",)) for n in range(9)]
    from rulebot.planning.plan import PlannedAction

    def planned(rule: str, item: Item, name: str, **send: Any) -> PlannedAction:
        ref = {"item_id": item.item_id, "time_updated": 0}
        return PlannedAction(rule, {"action": name, "item_id": item.item_id, **send}, ref)

    actions = [planned("r1", item, "archive") for item in live]
    actions += [planned("r2", live[0], "favorite"), planned("r2", live[8], "favorite")]
    actions.append(PlannedAction("w", {"action": "tag_delete", "tag": "x"}, None))
    actions += [planned("r3", live[4], "favorite")]
    plan = Plan(1, actions, source={"kind": "test"}, rules=["r1", "r2", "w", "r3"])
    original = applier.BLOCK
    try:
        applier.BLOCK = 2
        server = Server(live, None, 0)
        with Store.open(tmp_path / "s.db") as store:
            store.upsert(live)
            applier.apply_units(
                store,
                plan,
                server.perform(applier.Answer),
                kind="test",
                concurrency=1,
                requests=lambda: server.units,
                check_stale=False,
                bulk=Bulk(server, applier.Answer),
                cache=1,
            )
    finally:
        applier.BLOCK = original
    # 1-3, 5-7 in bulk (three requests); 0, 8 (a second unit) and 4 (after
    # the account-wide one) one by one, in plan order
    by_one = [entry for entry in server.log if entry[0] in ("0", "4", "8") or entry[0] is None]
    assert server.log[:6] == [(str(n), "archive") for n in (1, 2, 3, 5, 6, 7)], server.log
    assert by_one == server.log[6:]
    assert server.units == 3 + 5 + 1 + 1


def _planned(rule: str, item_id: str, name: str, **send: Any) -> Any:
    from rulebot.planning.plan import PlannedAction

    ref = {"item_id": item_id, "time_updated": NOW - 5}
    return PlannedAction(rule, {"action": name, "item_id": item_id, "time": NOW, **send}, ref)


def _wide(rule: str, name: str, **send: Any) -> Any:
    from rulebot.planning.plan import PlannedAction

    return PlannedAction(rule, {"action": name, "time": NOW, **send}, None)


HAND_MADE = {
    # an account-wide action sees the tags earlier item actions gave, held or written out
    "tagged, then the tag deleted": [
        *[_planned("r1", str(n), "tags_add", tags="old2") for n in range(5)],
        _wide("w", "tag_delete", tag="old2"),
        _planned("r3", "2", "tags_add", tags="old2"),
        _wide("w2", "tag_rename", old_tag="old2", new_tag="new2"),
    ],
    # a deleted item stays in the library, deleted, once written out
    "deleted, then acted on": [
        _planned("r1", "1", "delete"),
        _planned("r1", "2", "archive"),
        _wide("w", "tag_delete", tag="x"),
        _planned("r3", "1", "archive"),
        _planned("r3", "2", "tags_add", tags="y"),
    ],
    # what an add creates is in the library for later questions
    "added, then renamed": [
        _wide("w", "add", url="https://new.example/x", tags="fresh"),
        _planned("r1", "3", "tags_add", tags="fresh"),
        _wide("w2", "tag_rename", old_tag="fresh", new_tag="ripe"),
        _wide("w3", "add", url="https://a.org/4"),
    ],
}


@pytest.mark.parametrize("cache", [1, 3, 1_000_000])
@pytest.mark.parametrize("case", sorted(HAND_MADE))
@pytest.mark.parametrize("stale", [False, True])
def test_hand_made_plans_screen_and_journal_as_the_whole_library_did(
    tmp_path: Path, cache: int, case: str, stale: bool
) -> None:
    live = [
        Item(
            item_id=str(n),
            given_url=f"https://a.org/{n}",
            tags=("x",) if n % 2 else (),
            time_added=NOW - 5,
            time_updated=NOW - 5,
        )
        for n in range(6)
    ]
    plan = Plan(NOW, HAND_MADE[case], source={"kind": "test"}, rules=[])
    common: dict[str, Any] = {"fault": None, "after": 0, "bulk": False, "stale": stale}
    whole = run(legacy_applier, tmp_path / "whole.db", live, plan, **common)
    streamed = run(applier, tmp_path / "streamed.db", live, plan, cache=cache, **common)
    assert streamed == whole


@pytest.mark.parametrize("cache", [1, 1_000_000])
def test_an_add_after_a_delete_of_its_url_is_sent_even_after_another_add(
    tmp_path: Path, cache: int
) -> None:
    """The one place it differs from the applier that held everything: that
    one collected the saved URLs when the first add asked (as the planner
    does) and a later delete did not take its item's URL out, so a saved
    plan edited to delete an item and add its URL back, after some other
    add, skipped the add. Each add now asks of the library as the plan's
    earlier actions leave it, as the local apply does; a plan the planner
    made never has such an add (the planner leaves it out)."""
    live = [Item(item_id=str(n), given_url=f"https://a.org/{n}") for n in range(3)]
    actions = [
        _wide("w", "add", url="https://new.example/x"),
        _planned("r", "1", "delete"),
        _wide("w2", "add", url="https://a.org/1"),
    ]
    plan = Plan(NOW, actions, source={"kind": "test"}, rules=[])
    common: dict[str, Any] = {"fault": None, "after": 0, "bulk": False, "stale": False}
    whole = run(legacy_applier, tmp_path / "whole.db", live, plan, **common)
    streamed = run(applier, tmp_path / "streamed.db", live, plan, cache=cache, **common)
    assert [row[4] for row in whole[1]] == ["confirmed", "confirmed", "skipped"]
    assert [row[4] for row in streamed[1]] == ["confirmed", "confirmed", "confirmed"]
    assert "https://a.org/1" in {i.given_url for _, i in streamed[4] if not i.is_deleted}
