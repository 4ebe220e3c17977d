"""Raindrop.io's plan refinement made as the plan is read (#28) does what it
did holding the plan and the library: ``tests/legacy_raindrop_refine.py`` is
``RaindropSource.refine`` as it was, and both refine the same random plans
on the same random libraries. The streamed one reads ``block`` actions (and
units) at a time, holds ``cache`` changed bookmarks before it writes them
out, and spools the plan past ``spill`` actions; whatever the three, the
refined actions must be the same, in the same order, with the same reasons
(which spellings a tag action names, which rename goes per item, which
units go in bulk), and an unchanged plan must come back as itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.planning.planner import item_ref
from rulebot.planning.spool import Spool, SpooledActions
from rulebot.run.pipeline import _Loaded
from rulebot.sources.raindrop.api import TRASH, UNSORTED
from rulebot.sources.raindrop.refine import refined_plan
from rulebot.sources.refining import lookup

from .legacy_raindrop_refine import legacy_refine

ARCHIVE = 20
TAGS = ["dev", "Dev", "DEV", "go", "Go", "py", "web"]  # case variants on purpose
COLLECTIONS = [UNSORTED, 10, ARCHIVE, TRASH, None]  # None: not known (no bulk form)
T = 1_700_000_000


def moves(action: str, current: Item) -> int | None:
    """RaindropSession.moves with archive_collection 20, readd to Unsorted."""
    here = current.extra.get("collection")
    if action == "archive":
        return None if here == ARCHIVE else ARCHIVE
    return UNSORTED if here == ARCHIVE else None


def unknown_moves(action: str, current: Item) -> int | None:
    raise LookupError("not connected")


@st.composite
def libraries(draw: st.DrawFn) -> list[Item]:
    items = []
    for n in range(draw(st.integers(0, 8))):
        tags = draw(st.none() | st.lists(st.sampled_from(TAGS), max_size=3, unique=True))
        collection = draw(st.sampled_from(COLLECTIONS))
        items.append(
            Item(
                item_id=str(n + 1),
                given_url=f"https://example.com/{n + 1}",
                given_title=f"t{n + 1}",
                time_added=T + draw(st.integers(0, 3)),  # ties: the id decides
                time_updated=T,
                status=2 if draw(st.integers(0, 9)) == 0 else 0,  # a deleted one, at times
                favorite=draw(st.booleans()),
                tags=None if tags is None else tuple(tags),
                extra={} if collection is None else {"collection": collection},
            )
        )
    return items


ITEM_ACTIONS = [
    "favorite",
    "unfavorite",
    "archive",
    "readd",
    "delete",
    "tags_add",
    "tags_remove",
    "tags_clear",
    "tags_replace",
]


@st.composite
def plans(draw: st.DrawFn, items: list[Item]) -> Plan:
    """Units of one rule's actions on one item, and account-wide actions."""
    by_id = {item.item_id: item for item in items}
    ids = [*by_id, "404"]  # an item the library does not have
    actions: list[PlannedAction] = []
    for _ in range(draw(st.integers(0, 14))):
        rule = draw(st.sampled_from(["r1", "r2", "r3"]))
        send: dict[str, Any]
        kind = draw(st.sampled_from(["unit", "unit", "unit", "rename", "delete", "add"]))
        when = T + 100
        if kind == "rename":
            old, new = draw(st.sampled_from(TAGS)), draw(st.sampled_from(TAGS))
            send = {"action": "tag_rename", "old_tag": old, "new_tag": new, "time": when}
            actions.append(PlannedAction(rule, send, None, ("renamed",)))
        elif kind == "delete":
            send = {"action": "tag_delete", "tag": draw(st.sampled_from(TAGS)), "time": when}
            actions.append(PlannedAction(rule, send, None, ("deleted",)))
        elif kind == "add":
            send = {"action": "add", "url": "https://example.com/new", "time": when}
            actions.append(PlannedAction(rule, send, None, ()))
        else:
            item_id = draw(st.sampled_from(ids))
            found = by_id.get(item_id)
            ref = item_ref(found) if found is not None else {"item_id": item_id}
            for name in draw(st.lists(st.sampled_from(ITEM_ACTIONS), min_size=1, max_size=3)):
                send = {"action": name, "item_id": item_id, "time": when}
                if name in ("tags_add", "tags_remove", "tags_replace"):
                    tags = draw(st.lists(st.sampled_from(TAGS), min_size=1, max_size=2))
                    send["tags"] = ",".join(tags)
                actions.append(PlannedAction(rule, send, ref, (f"{rule} matched",)))
    return Plan(created_at=T, actions=actions, source={"kind": "raindrop"})


Sizes = st.sampled_from([1, 3, 1_000_000])


def compare(
    plan: Plan,
    items: list[Item],
    move: Callable[[str, Item], int | None],
    library: Any,
    **sizes: int,
) -> Plan:
    """The streamed refinement of ``plan`` against the legacy one."""
    held = {item.item_id: item for item in items}
    expected = legacy_refine(plan, held, move)
    got = refined_plan(plan, library, move, **sizes)
    assert list(got.actions) == list(expected.actions)
    assert (got is plan) == (expected is plan)
    return got


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data(), block=Sizes, cache=Sizes, spill=st.sampled_from([0, 2, 20_000]))
def test_the_streamed_refinement_refines_as_the_held_one_did(
    data: st.DataObject, block: int, cache: int, spill: int
) -> None:
    items = data.draw(libraries())
    plan = data.draw(plans(items))
    move = data.draw(st.sampled_from([moves, unknown_moves]))
    library = lookup({item.item_id: item for item in items})
    compare(plan, items, move, library, block=block, cache=cache, spill=spill)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stores")


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data(), block=Sizes, cache=Sizes)
def test_the_pipeline_library_is_read_from_the_store_never_loaded_whole(
    data: st.DataObject, block: int, cache: int, stores: Path
) -> None:
    """The pipeline's library (``_Loaded``) answers refine's lookups from the
    store: the plan's touchable items as the legacy refine held them."""
    items = data.draw(libraries())
    plan = data.draw(plans(items))
    live = [item for item in items if not item.is_deleted]  # the store's live items

    def load() -> dict[str, Item]:
        raise AssertionError("refine loaded the whole library")

    path = stores / f"{len(list(stores.iterdir()))}.db"
    with Store.open(path) as store:
        store.upsert(items)
        compare(plan, live, moves, _Loaded(load, store), block=block, cache=cache)


def test_a_large_plan_is_refined_onto_disk() -> None:
    """Past ``spill`` actions the refined plan is a spool, not a list; a plan
    that was one already stays one."""
    items = [
        Item(item_id=str(n), given_url=f"https://e.com/{n}", tags=(), extra={"collection": 10})
        for n in range(1, 40)
    ]
    actions = [
        PlannedAction(
            "r", {"action": "favorite", "item_id": item.item_id, "time": T}, item_ref(item)
        )
        for item in items
    ]
    plan = Plan(created_at=T, actions=actions, source={"kind": "raindrop"})
    got = compare(plan, items, moves, lookup({i.item_id: i for i in items}), spill=10)
    assert isinstance(got.actions, SpooledActions)
    assert all(planned.reasons[-1].startswith("in bulk") for planned in got.actions)
    assert got.summary() == plan.summary()
    # a plan the planner spooled stays on disk, however small, and knows its
    # items: the marked one too, without reading it back
    planned = Spool(1, 5)
    for place, action in enumerate(actions):
        planned.add(0, place, [action])
    spooled = replace(plan, actions=planned.finish())
    got = compare(spooled, items, moves, lookup({i.item_id: i for i in items}))
    assert isinstance(got.actions, SpooledActions)
    assert got.actions.items == len(items)
