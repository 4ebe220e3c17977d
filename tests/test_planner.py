from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebot.errors import LimitExceededError
from rulebot.library.item import ARCHIVED, DELETED, UNREAD, Item
from rulebot.planning.planner import Limits, check_limits, make_plan, url_keys
from rulebot.rules.capabilities import plan_fold
from rulebot.sources.screening import apply_one as _apply_one
from tests.helpers import examples

from .helpers import DAY, NOW, item, rule


def sends(plan):
    return [(a.rule, a.send["action"], a.send.get("item_id")) for a in plan.actions]


def test_design_example_archive_stale_read_later() -> None:
    library = [
        item(1, age_days=41, tags=("read-later",)),
        item(2, age_days=5, tags=("read-later",)),
        item(3, age_days=90, tags=("read-later",), status=ARCHIVED),
        item(4, age_days=90, tags=("other",)),
    ]
    r = rule(
        "archive-stale-read-later",
        {"tag": "read-later", "status": "unread", "added": {"older_than": "30d"}},
        ["archive", {"tags_add": ["auto-archived"]}],
    )
    plan = make_plan([r], library, NOW)
    assert [a.send for a in plan.actions] == [
        {"action": "archive", "item_id": "1", "time": NOW},
        {"action": "tags_add", "item_id": "1", "tags": "auto-archived", "time": NOW},
    ]
    assert plan.actions[0].reasons == (
        "tag read-later",
        "status unread",
        "added 41d ago (older than 30d)",
    )
    assert plan.actions[0].item == {
        "item_id": "1",
        "title": "Item 1",
        "url": "https://example.com/1",
        "time_updated": NOW - 41 * DAY,
        # what the actions depend on, checked again by `apply` of a saved plan
        "status": 0,
        "favorite": False,
        "tags": ["read-later"],
    }


def test_later_rules_see_simulated_state() -> None:
    library = [item(1, tags=("x",))]
    first = rule("first", {"tag": "x"}, ["archive"])
    second = rule("second", {"status": "archived"}, [{"tags_add": ["seen"]}])
    third = rule("third", {"status": "unread"}, ["favorite"])
    assert sends(make_plan([first, second, third], library, NOW)) == [
        ("first", "archive", "1"),
        ("second", "tags_add", "1"),
    ]


def test_deleted_item_is_gone_for_later_rules_and_never_a_candidate() -> None:
    library = [item(1), item(2, status=DELETED), item(3, status=3)]
    plan = make_plan(
        [rule("del", {"domain": "example.com"}, ["delete"]), rule("fav", None, ["favorite"])],
        library,
        NOW,
    )
    assert sends(plan) == [("del", "delete", "1")]


def test_actions_after_delete_in_same_rule_are_dropped() -> None:
    plan = make_plan([rule("r", None, ["delete", "archive"])], [item(1)], NOW)
    assert sends(plan) == [("r", "delete", "1")]


def test_order_oldest_first_then_numeric_id() -> None:
    library = [item(10, age_days=5), item(9, age_days=5), item(100, age_days=50)]
    plan = make_plan([rule("r", None, ["archive"])], library, NOW)
    assert [a.item_id for a in plan.actions] == ["100", "9", "10"]


def test_limit_counts_items_that_get_an_action() -> None:
    library = [item(i, age_days=100 - i, status=ARCHIVED if i < 3 else UNREAD) for i in range(1, 8)]
    plan = make_plan([rule("r", None, ["archive"], limit=2)], library, NOW)
    assert [a.item_id for a in plan.actions] == ["3", "4"]


def test_keep_newest_then_limit() -> None:
    library = [item(i, age_days=10 * i) for i in range(1, 7)]  # 1 newest … 6 oldest
    plan = make_plan([rule("r", None, ["archive"], keep_newest=2, limit=3)], library, NOW)
    assert [a.item_id for a in plan.actions] == ["6", "5", "4"]
    plan = make_plan([rule("r", None, ["archive"], keep_newest=5)], library, NOW)
    assert [a.item_id for a in plan.actions] == ["6"]


def test_account_wide_rules() -> None:
    library = [item(1, tags=("js",)), item(2, tags=("JS", "web"), given_url="https://x.org/")]
    plan = make_plan(
        [
            rule("rename", None, [{"tag_rename": {"old_tag": "js", "new_tag": "javascript"}}]),
            rule("tagged", {"tag": "javascript"}, [{"tags_add": ["lang"]}]),
            rule(
                "add",
                None,
                [{"add": {"url": "https://x.org/"}}, {"add": {"url": "https://n.org/"}}],
            ),
        ],
        library,
        NOW,
    )
    assert sends(plan) == [
        ("rename", "tag_rename", None),
        ("tagged", "tags_add", "1"),
        ("tagged", "tags_add", "2"),
        ("add", "add", None),
    ]
    assert plan.actions[0].reasons == ("changes 2 items",)
    assert plan.actions[0].item is None


def test_limits_refuse_with_counts() -> None:
    plan = make_plan([rule("r", None, ["delete"])], [item(i) for i in range(1, 6)], NOW)
    check_limits(plan, Limits(max_actions=5, max_deletes=5))
    with pytest.raises(LimitExceededError) as caught:
        check_limits(plan, Limits(max_actions=4, max_deletes=2))
    message = str(caught.value)
    assert "5 actions exceed max_actions 4" in message
    assert "5 deletions exceed max_deletes 2" in message
    assert "--max-deletes 5" in message
    assert caught.value.exit_code == 3


def test_plan_json_round_trip() -> None:
    from rulebot.planning.plan import Plan

    plan = make_plan([rule("r", {"tag": "x"}, ["archive"])], [item(1, tags=("x",))], NOW)
    again = Plan.from_json(plan.to_json())
    assert again.dumps() == plan.dumps()
    assert plan.to_json()["summary"] == {
        "actions": 1,
        "by_action": {"archive": 1},
        "by_rule": {"r": 1},
        "items": 1,
        "deletes": 0,
        "matched": {"r": 1},
    }


# -- properties ------------------------------------------------------------------

TAGS = ["a", "b", "c", "d", "old1", "old2", "new1"]

items_strategy = st.lists(
    st.builds(
        lambda i, age, status, fav, tags, words, dom: Item(
            item_id=str(i),
            given_url=f"https://{dom}/{i}",
            given_title=f"t{i}",
            status=status,
            favorite=fav,
            tags=tags,
            time_added=NOW - age,
            time_updated=NOW - age,
            word_count=words,
        ),
        st.integers(1, 10**6),
        st.integers(0, 800 * DAY),
        st.sampled_from([UNREAD, UNREAD, ARCHIVED, DELETED]),
        st.booleans(),
        st.one_of(st.none(), st.lists(st.sampled_from(TAGS), unique=True, max_size=4).map(tuple)),
        st.one_of(st.none(), st.integers(0, 9000)),
        st.sampled_from(["a.org", "www.b.org", "x.b.org", "c.net"]),
    ),
    max_size=25,
    unique_by=lambda i: i.item_id,
)

stable_conditions: st.SearchStrategy[dict[str, object]] = st.sampled_from(
    [
        {"domain": "b.org"},
        {"added": {"older_than": "30d"}},
        {"added": {"newer_than": "400d"}},
        {"word_count": {"gte": 3000}},
        {"not": {"domain": "c.net"}},
        {"any": [{"domain": "a.org"}, {"word_count": {"lt": 100}}]},
        {"url": {"glob": "*/1*"}},
    ]
)
any_conditions: st.SearchStrategy[dict[str, object]] = st.one_of(
    stable_conditions,
    st.sampled_from(
        [
            {"tag": "a"},
            {"tags": {"none": ["b"]}},
            {"status": "unread"},
            {"favorite": False},
            {"untagged": True},
            {"not": {"tag": "c"}},
        ]
    ),
)


@st.composite
def consistent_actions(
    draw: st.DrawFn,
) -> tuple[str | None, str | None, list[str], list[str]]:
    """Actions that push every item the same way, so a fixpoint exists."""
    status = draw(st.sampled_from([None, "archive", "readd", "delete"]))
    fav = draw(st.sampled_from([None, "favorite", "unfavorite"]))
    adds = draw(st.lists(st.sampled_from(["a", "b"]), unique=True, max_size=2))
    removes = draw(st.lists(st.sampled_from(["c", "d"]), unique=True, max_size=2))
    return status, fav, adds, removes


def actions_for(choice, draw_subset):
    status, fav, adds, removes = choice
    pool = []
    if fav:
        pool.append(fav)
    if adds:
        pool.append({"tags_add": adds})
    if removes:
        pool.append({"tags_remove": removes})
    if status:
        pool.append(status)
    return [a for a in pool if draw_subset(a)] or pool or ["archive"]


@st.composite
def rule_sets(draw: st.DrawFn, conditions: st.SearchStrategy) -> list:
    choice = draw(consistent_actions())
    count = draw(st.integers(1, 4))
    rules = []
    for n in range(count):
        where = draw(st.one_of(st.none(), conditions))
        acts = actions_for(choice, lambda _a: draw(st.booleans()))
        keep = draw(st.one_of(st.none(), st.integers(0, 3)))
        rules.append(rule(f"r{n}", where, acts, keep_newest=keep))
    if draw(st.booleans()):
        rules.append(rule("rename", None, [{"tag_rename": {"old_tag": "old1", "new_tag": "new1"}}]))
    if draw(st.booleans()):
        rules.append(rule("drop", None, [{"tag_delete": "old2"}]))
    return rules


def apply_in_memory(plan, items):
    library = {i.item_id: i for i in items if not i.is_deleted}
    urls = {u for i in library.values() for u in url_keys(i)}
    for planned in plan.actions:
        before = library.get(planned.item_id) if planned.item_id else None
        _apply_one(planned, library, urls, plan_fold(plan.source))
        if before is not None:
            # every planned item action changes something: no no-ops
            after = library.get(planned.item_id)
            assert after is None or after.replace(time_updated=0) != before.replace(
                time_updated=0
            ), planned
    return list(library.values())


FAST = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FAST
@given(items_strategy, rule_sets(stable_conditions))
def test_apply_then_plan_again_is_empty(items, rules) -> None:
    plan = make_plan(rules, items, NOW)
    after = apply_in_memory(plan, items)
    assert make_plan(rules, after, NOW).actions == []


@FAST
@given(items_strategy, st.lists(any_conditions, min_size=1, max_size=2), consistent_actions())
def test_single_rule_reaches_a_fixpoint_with_any_conditions(items, wheres, choice) -> None:
    where = {"all": wheres}
    r = rule("r", where, actions_for(choice, lambda _a: True))
    plan = make_plan([r], items, NOW)
    assert make_plan([r], apply_in_memory(plan, items), NOW).actions == []


@FAST
@given(items_strategy, rule_sets(any_conditions))
def test_planning_is_deterministic_and_never_touches_deleted_items(items, rules) -> None:
    first = make_plan(rules, items, NOW)
    second = make_plan(rules, list(reversed(items)), NOW)
    assert first.dumps() == second.dumps()
    deleted = {i.item_id for i in items if i.is_deleted}
    assert not [a for a in first.actions if a.item_id in deleted]
    apply_in_memory(first, items)  # asserts no planned action is a no-op


# -- a dry run never changes the store (real SQLite file, real CLI) ----------------

DRY_RUN_RULES = [
    "  - name: r1\n    where: {status: unread, added: {older_than: 30d}}\n    actions: [archive]\n",
    "  - name: r2\n    actions: [{tag_rename: {old_tag: a, new_tag: b}}]\n",
    "  - name: r3\n    where: {tag: c}\n    actions: [delete]\n",
    "  - name: r4\n    where: {untagged: true}\n    actions: [{tags_add: [new]}, favorite]\n",
    "  - name: r5\n    actions: [{add: {url: 'https://new.example/x'}}]\n",
]


@settings(max_examples=examples(25), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    items_strategy, st.lists(st.sampled_from(DRY_RUN_RULES), min_size=1, max_size=4, unique=True)
)
def test_a_dry_run_never_changes_the_store(tmp_path_factory, items, rules) -> None:
    import hashlib

    from rulebot.cli import main
    from rulebot.library.store import Store

    work = tmp_path_factory.mktemp("dry")
    config = work / "rules.yaml"
    config.write_text(
        "version: 1\nlimits: {max_actions: 100000, max_deletes: 100000}\nrules:\n" + "".join(rules)
    )
    db = work / "store.db"
    with Store.open(db) as store:
        store.upsert(items)

    def fingerprint() -> str:
        with Store.open(db) as store:
            rows = [repr(i) for i in store.items(include_deleted=True)]
            rows.append(repr([(r, store.last_run(r)) for r in ("r1", "r2", "r3", "r4", "r5")]))
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()

    before = fingerprint()
    for argv in (["plan"], ["run", "--dry-run"], ["plan", "--format", "json"]):
        assert main(["-q", "-c", str(config), "--store", str(db), *argv]) == 0
    assert fingerprint() == before
