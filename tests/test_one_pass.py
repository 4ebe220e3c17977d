"""The one-pass planner (#17): ``plan_in_passes`` over chunks of the library
gives exactly ``make_plan``'s plan, and the store streams the library in the
planner's order."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rulebot.library.store as store_module
from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.planning.planner import make_plan, one_pass_ok, plan_in_passes
from tests.helpers import examples

from .helpers import NOW, rule
from .test_planner import any_conditions, items_strategy

ACTIONS = st.sampled_from(
    [
        "archive",
        "readd",
        "delete",
        "favorite",
        "unfavorite",
        "tags_clear",
        {"tags_add": ["a", "New1"]},
        {"tags_add": ["old2"]},  # a tag a later account-wide action deletes
        {"tags_remove": ["c", "old1"]},
        {"tags_replace": ["d"]},
    ]
)
WIDE = st.sampled_from(
    [
        {"tag_rename": {"old_tag": "old1", "new_tag": "new1"}},
        {"tag_rename": {"old_tag": "A", "new_tag": "a"}},
        {"tag_delete": "old2"},
        {"add": {"url": "https://a.org/5"}},
        {"add": {"url": "https://new.example/x", "tags": ["a"]}},
    ]
)


@st.composite
def rule_sets(draw: st.DrawFn) -> list:
    """Rules that push items every which way, with limits, renames, deletes
    and adds between them (so later rules see what earlier ones did)."""
    rules = []
    count = draw(st.integers(1, 6))
    keep_at = draw(st.one_of(st.none(), st.integers(0, count - 1)))  # one keep_newest rule
    for n in range(count):
        if n != keep_at and draw(st.integers(0, 3)) == 0:
            rules.append(rule(f"w{n}", None, draw(st.lists(WIDE, min_size=1, max_size=2))))
            continue
        where = draw(st.one_of(st.just({}), any_conditions))
        actions = draw(st.lists(ACTIONS, min_size=1, max_size=3))
        limited = keep_at is None or n <= keep_at  # no limit after it (one_pass_ok)
        limit = draw(st.one_of(st.none(), st.integers(0, 4))) if limited else None
        keep = draw(st.integers(1, 4)) if n == keep_at else None
        made = rule(f"r{n}", where, actions, limit=limit, keep_newest=keep)
        if keep is None and draw(st.integers(0, 2)) == 0:  # a grace rule, 0 or 3 days
            made.grace = draw(st.sampled_from([1, 3 * 86400]))  # type: ignore[attr-defined]
        rules.append(made)
    return rules


# some items carry grace marks: due, not yet due, of another rule, or not a date
MARKS = ["rulebot:r0:2026-11-20", "rulebot:r1:2026-12-30", "rulebot:r2:2026-11-26", "rulebot:r0:x"]
marked_items = st.tuples(items_strategy, st.lists(st.sampled_from(MARKS), max_size=3)).map(
    lambda pair: [
        i.replace(tags=(*i.tags, pair[1][n % len(pair[1])]))
        if pair[1] and i.tags is not None and n % 2 == 0
        else i
        for n, i in enumerate(pair[0])
    ]
)


def chunked(items: list[Item], size: int) -> list[list[Item]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    marked_items,
    rule_sets(),
    st.integers(1, 5),
    st.dictionaries(st.sampled_from(["r0", "r1", "r2"]), st.integers(0, 3)),
    st.integers(1, 3),
    st.sampled_from([0, 2, 20_000]),  # spooled to disk from the start, midway, never
    st.booleans(),  # the marks were set by rulebot (recorded in its store) or not
)
def test_one_pass_plans_exactly_what_make_plan_plans(
    items, rules, size, used, release, spill, recorded
) -> None:
    assert one_pass_ok(rules)
    ordered = sorted(items, key=lambda i: i.sort_key)
    live = [i for i in ordered if not i.is_deleted]  # what Store.iter_items yields
    marks: dict[str, dict[str, set[str]]] = {}
    for i in live if recorded else ():
        for tag in i.tags or ():
            if tag.startswith("rulebot:"):
                marks.setdefault(tag.split(":")[1], {}).setdefault(i.item_id, set()).add(tag)
    reference = make_plan(rules, ordered, NOW, used=used, marks=marks)
    passed = plan_in_passes(
        rules, chunked(live, size), NOW, used=used, release=release, spill=spill, marks=marks
    )
    assert passed.dumps() == reference.dumps()
    assert passed.matched == reference.matched
    # read back as objects too, in order, by index and counted without reading
    assert list(passed.actions) == list(reference.actions)
    assert len(passed) == len(reference) and passed.deletes == reference.deletes
    for index in (0, len(reference) // 2, -1) if len(reference) else ():
        assert passed.actions[index] == reference.actions[index]
    assert passed.actions[1:3] == list(reference.actions)[1:3]


def test_rules_that_look_across_the_library_are_left_to_make_plan() -> None:
    keep = rule("k", {}, ["archive"], keep_newest=2)
    assert one_pass_ok([rule("l", {}, ["favorite"], limit=1), keep])
    graced_keep = rule("gk", {}, ["archive"], keep_newest=2)
    graced_keep.grace = 86400  # type: ignore[attr-defined]
    assert not one_pass_ok([graced_keep])
    assert not one_pass_ok([keep, rule("k2", {}, ["delete"], keep_newest=1)])
    assert not one_pass_ok([keep, rule("l", {}, ["favorite"], limit=1)])
    assert not one_pass_ok([rule("d", {"duplicate": {"by": "url"}}, ["delete"])])
    graced = rule("g", {"tag": "x"}, ["delete"])
    graced.grace = 86400  # type: ignore[attr-defined]
    assert one_pass_ok([graced])
    assert one_pass_ok([rule("t", {"tag": "x"}, ["delete"], limit=3)])


IDS = st.one_of(
    st.integers(0, 10**25).map(str),
    st.sampled_from(["0", "00", "007", "7", "70", "", "abc", "a1", "1a", "-1", " 1"]),
    st.text(alphabet="0123456789abcXYZ-_", max_size=6),
)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(IDS, st.one_of(st.none(), st.integers(0, 3)), st.sampled_from([0, 1, 2])),
        unique_by=lambda row: row[0],
        max_size=30,
    ),
    st.integers(1, 7),
    st.booleans(),
)
def test_the_store_streams_the_library_in_sort_key_order(
    tmp_path_factory, rows, size, odd_tag
) -> None:
    path = Path(tmp_path_factory.mktemp("s")) / "s.db"
    # tags out of alphabetical order (they must come back in their own order);
    # tags come as a JSON array from SQLite: separators, quotes, backslashes,
    # brackets and characters outside the BMP must come back as written
    odd = ("z\x1fy", 'q"\\', "[], ", "\U0001f600\u2028") if odd_tag else ("x",)
    spellings = [("d", "B", "a"), (), None, ("c", "a"), odd]
    items = [
        Item(
            item_id=i,
            given_url=f"https://x.org/{n}",
            status=s,
            time_added=t,
            tags=spellings[n % len(spellings)],
        )
        for n, (i, t, s) in enumerate(rows)
    ]
    with Store.open(path) as store:
        store.upsert(items)
        assert store.sql_orderable()
        streamed = [item for chunk in store.iter_items(size) for item in chunk]
        assert all(len(chunk) <= size for chunk in store.iter_items(size))
        assert streamed == store.items()  # the same items, tags and order
        assert [i.item_id for i in streamed] == [
            i.item_id for i in sorted(items, key=lambda i: i.sort_key) if not i.is_deleted
        ]


def test_the_store_streams_tags_right_when_it_forgets_the_tag_lists_it_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass keeps at most ``_TAG_LISTS_KEPT`` tag lists parsed, so its
    memory stays flat on a library whose items each have their own tags;
    forgetting them between chunks must lose and mix up nothing."""
    monkeypatch.setattr(store_module, "_TAG_LISTS_KEPT", 2)
    items = [
        Item(
            str(n),
            given_url=f"https://x.org/{n}",
            time_added=n,
            tags=("shared",) if n % 3 == 0 else (f"t{n % 5}", f"own-{n}"),
        )
        for n in range(1, 60)
    ]
    with Store.open(tmp_path / "s.db") as store:
        store.upsert(items)
        streamed = [item for chunk in store.iter_items(4) for item in chunk]
    assert [(i.item_id, i.tags) for i in streamed] == [(i.item_id, i.tags) for i in items]


def test_an_id_sql_cannot_order_like_python_is_noticed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([Item(item_id="12"), Item(item_id="١٢")])  # Arabic-Indic digits
        assert not store.sql_orderable()


def test_adds_see_the_urls_as_the_first_add_found_them() -> None:
    # make_plan collects the saved URLs when the first add asks; a later
    # delete does not put them back into play for a later add of the same URL
    items = [Item(item_id="5", given_url="https://a.org/5", time_added=1)]
    rules = [
        rule("w0", None, [{"add": {"url": "https://a.org/5"}}]),
        rule("r1", {}, ["delete"]),
        rule("w2", None, [{"add": {"url": "https://a.org/5"}}, {"add": {"url": "https://b.org"}}]),
    ]
    reference = make_plan(rules, items, NOW)
    assert [a.send["action"] for a in reference.actions] == ["delete", "add"]
    for size in (1, 2):
        assert plan_in_passes(rules, chunked(items, size), NOW).dumps() == reference.dumps()


# -- a local apply reads only what its plan can touch --------------------------------


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items_strategy, rule_sets(), st.sampled_from([0, 1, 3, 20_000]), st.booleans())
def test_a_local_apply_ends_where_applying_to_the_whole_library_ends(
    tmp_path_factory, items, rules, cache, spooled
) -> None:
    """Whatever it holds (``cache``: items held before they are written back)
    and wherever the plan is (``spooled``: read back from disk)."""
    from rulebot.sources.local.apply import apply_local

    from .test_planner import apply_in_memory

    live = [i for i in items if not i.is_deleted]
    plan = make_plan(rules, live, NOW)
    expected = sorted(apply_in_memory(plan, live), key=lambda i: i.sort_key)
    if spooled:
        ordered = sorted(live, key=lambda i: i.sort_key)
        plan = plan_in_passes(rules, chunked(ordered, 2), NOW, spill=0)
    with Store.open(Path(tmp_path_factory.mktemp("a")) / "s.db") as store:
        store.upsert(live)
        result = apply_local(store, plan, check_stale=True, cache=cache)
        assert all(o.state == "succeeded" for o in result.outcomes), result.outcomes
        got = store.items()
    assert [i for i in got if not i.is_deleted] == [i for i in expected if not i.is_deleted]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items_strategy, rule_sets(), st.sampled_from([0, 1, 3]))
def test_a_bounded_apply_journals_and_reports_what_a_whole_one_does(
    tmp_path_factory, items, rules, cache
) -> None:
    """The same plan applied twice (the second time every item action is
    stale or done) with a few items held and with all of them, and read
    back from disk (applied item by item between account-wide actions):
    the same stores, journals and result documents."""
    from rulebot.sources.local.apply import apply_local

    live = [i for i in items if not i.is_deleted]
    plan = make_plan(rules, live, NOW)
    ordered = sorted(live, key=lambda i: i.sort_key)
    spooled = plan_in_passes(rules, chunked(ordered, 2), NOW, spill=0)
    assert spooled.dumps() == plan.dumps()
    seen = []
    for held, applied in ((cache, plan), (cache, spooled), (1_000_000, plan)):
        with Store.open(Path(tmp_path_factory.mktemp("b")) / "s.db") as store:
            store.upsert(live)
            results = [
                apply_local(store, applied, check_stale=True, cache=held).dumps() for _ in range(2)
            ]
            journal = [
                [
                    (e.index, e.rule, e.send, e.state, e.before)
                    for e in store.journal_entries(run.run_id)
                ]
                for run in store.journal_runs()
            ]
            seen.append((results, journal, store.items(include_deleted=True)))
    assert seen[0] == seen[1] == seen[2]


def test_a_saved_add_whose_url_was_saved_since_is_skipped(tmp_path: Path) -> None:
    from rulebot.sources.local.apply import apply_local

    rules = [rule("w", None, [{"add": {"url": "https://a.org/5"}}])]
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([Item(item_id="1", given_url="https://b.org/1", time_added=1)])
        plan = make_plan(rules, store.items(), NOW)
        assert [a.send["action"] for a in plan.actions] == ["add"]
        store.upsert([Item(item_id="5", given_url="https://a.org/5", time_added=2)])
        result = apply_local(store, plan, check_stale=True)
        assert [o.state for o in result.outcomes] == ["skipped"]
        assert [i.item_id for i in store.items()] == ["1", "5"]


@pytest.mark.parametrize("check_stale", [False, True])
@pytest.mark.parametrize("cache", [0, 20_000])
def test_a_plan_that_deletes_an_item_and_adds_its_url_back_adds_it(
    tmp_path: Path, check_stale: bool, cache: int
) -> None:
    # the planner asks whether the URL is saved after the delete (it is not);
    # the apply must ask the same, or it reports the add done and adds nothing.
    # The item has the id an import gives its URL: the new one must not take
    # it (undo brings the old one back), even once the old one is written out
    from rulebot.library.export_reader import item_id_for_url
    from rulebot.sources.local.apply import apply_local

    old = item_id_for_url("https://a.org/5", 0)

    rules = [
        rule("clear", {"url": {"contains": "a.org/5"}}, ["delete"]),
        rule("want", None, [{"add": {"url": "https://a.org/5", "tags": ["back"]}}]),
    ]
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([Item(item_id=old, given_url="https://a.org/5", time_added=2)])
        plan = make_plan(rules, store.items(), NOW)
        assert [a.send["action"] for a in plan.actions] == ["delete", "add"]
        result = apply_local(store, plan, check_stale=check_stale, cache=cache)
        assert [o.state for o in result.outcomes] == ["succeeded", "succeeded"]
        [added] = store.items()
        assert (added.given_url, added.tags) == ("https://a.org/5", ("back",))
        assert added.item_id != old
        again = apply_local(store, plan, check_stale=True)  # the same saved plan twice
        assert [o.state for o in again.outcomes] == ["skipped", "skipped"]
        assert store.items() == [added]


def test_a_saved_rename_of_a_tag_the_plan_itself_adds_is_not_done_already(
    tmp_path: Path,
) -> None:
    from rulebot.sources.local.apply import apply_local

    rules = [
        rule("tag", None, [{"tags_add": ["js"]}]),
        rule("rename", None, [{"tag_rename": {"old_tag": "js", "new_tag": "javascript"}}]),
    ]
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([Item(item_id="1", given_url="https://a.org/1", time_added=1)])
        plan = make_plan(rules, store.items(), NOW)
        assert [a.send["action"] for a in plan.actions] == ["tags_add", "tag_rename"]
        result = apply_local(store, plan, check_stale=True)
        assert [o.state for o in result.outcomes] == ["succeeded", "succeeded"]
        assert store.items()[0].tags == ("javascript",)


# -- a source refines a plan the same from the items it touches as from all --------

RENAMES = st.lists(
    st.sampled_from(
        [
            {"tag_rename": {"old_tag": "old1", "new_tag": "new1"}},
            {"tag_rename": {"old_tag": "a", "new_tag": "B"}},
            {"tag_rename": {"old_tag": "c", "new_tag": "d"}},
            {"tag_delete": "old2"},
            {"tag_delete": "A"},
        ]
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items_strategy, st.lists(ACTIONS, min_size=1, max_size=2), any_conditions, RENAMES)
def test_every_source_refines_from_the_touchable_items_as_from_the_whole_library(
    tmp_path_factory, items, actions, where, renames
) -> None:
    from rulebot.sources.karakeep.source import KarakeepSource
    from rulebot.sources.readeck.source import ReadeckSource
    from rulebot.sources.screening import touchable
    from rulebot.sources.shaarli.source import ShaarliSource
    from rulebot.sources.wallabag.source import WallabagSource

    live = [i for i in items if not i.is_deleted]
    rules = [rule("r", where, actions), rule("w", None, renames)]
    plan = make_plan(rules, live, NOW)
    with Store.open(Path(tmp_path_factory.mktemp("r")) / "s.db") as store:
        store.upsert(live)
        subset = touchable(store, plan.actions)
    whole = {i.item_id: i for i in live}
    for kind in (KarakeepSource, WallabagSource, ReadeckSource, ShaarliSource):
        source = object.__new__(kind)  # refine reads only the plan and the library
        assert source.refine(plan, subset).dumps() == source.refine(plan, whole).dumps(), kind


def test_a_grace_rule_marks_then_unmarks_across_chunks_as_make_plan_does() -> None:
    graced = rule("g", {"tag": "a"}, ["archive"])
    graced.grace = 3 * 86400  # type: ignore[attr-defined]
    items = [
        Item(item_id="1", given_url="https://a.org/1", tags=("a",), time_added=1),
        Item(
            item_id="2",
            given_url="https://a.org/2",
            tags=("b", "rulebot:g:2026-11-20"),
            time_added=2,
        ),
        Item(
            item_id="3",
            given_url="https://a.org/3",
            tags=("a", "rulebot:g:2026-11-20"),
            time_added=3,
        ),
        Item(item_id="4", given_url="https://a.org/4", tags=("a",), time_added=4),
    ]
    marks = {"g": {"2": {"rulebot:g:2026-11-20"}, "3": {"rulebot:g:2026-11-20"}}}  # set by rulebot
    reference = make_plan([graced], items, NOW, marks=marks)
    assert [(a.send["action"], a.item_id) for a in reference.actions] == [
        ("tags_add", "1"),  # marked
        ("archive", "3"),  # due
        ("tags_remove", "3"),
        ("tags_add", "4"),
        ("tags_remove", "2"),  # no longer matches: unmarked, after the rule's other actions
    ]
    for size in (1, 2, 3):
        passed = plan_in_passes([graced], chunked(items, size), NOW, marks=marks)
        assert passed.dumps() == reference.dumps()


@pytest.mark.parametrize("cache", [0, 2, 20_000])
def test_an_account_wide_action_sees_the_tags_earlier_actions_of_the_apply_gave(
    tmp_path: Path, cache: int
) -> None:
    """The store's tag lookup finds the items this apply tagged: they are
    written back before an account-wide action asks, however many are held."""
    from rulebot.sources.local.apply import apply_local

    rules = [
        rule("tag", None, [{"tags_add": ["old2"]}]),
        rule("untag", None, [{"tag_delete": "old2"}]),
    ]
    with Store.open(tmp_path / "s.db") as store:
        store.upsert([Item(item_id=str(n), given_url=f"https://a.org/{n}") for n in range(5)])
        plan = make_plan(rules, store.items(), NOW)
        assert [a.name for a in plan.actions] == ["tags_add"] * 5 + ["tag_delete"]
        result = apply_local(store, plan, check_stale=False, cache=cache)
        assert result.count("succeeded") == 6
        assert [i.tags for i in store.items()] == [()] * 5


@pytest.mark.parametrize("fails", ["open", "write"])
def test_a_full_disk_under_the_spool_is_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """A disk cannot be filled here for real: the temporary file is made to
    fail as a full disk fails (on creation, or on a write)."""
    import errno
    import tempfile

    from rulebot.errors import RulebotError

    class Full:
        closed = False

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self.closed = True

    def temporary_file() -> Full:
        if fails == "open":
            raise OSError(errno.ENOSPC, "No space left on device")
        return Full()

    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    items = [Item(item_id=str(n), given_url=f"https://a.org/{n}") for n in range(1, 600)]
    rules = [rule("tag", None, [{"tags_add": ["x"]}])]
    with pytest.raises(RulebotError, match="No space left on device; nothing was changed"):
        plan_in_passes(rules, chunked(items, 100), NOW, spill=0)


def test_a_spooled_plan_closes_its_file_when_it_goes() -> None:
    """The temporary file is closed by its owner going (the spool while
    planning, the plan's actions after), not left to the garbage collector."""
    import gc

    from rulebot.planning.planned import PlannedAction
    from rulebot.planning.spool import Spool

    def spilled() -> Spool:
        spool = Spool(1, limit=0)
        send = {"action": "archive", "item_id": "1"}
        spool.add(0, 0, [PlannedAction("r", send, None, ("why",))])
        assert spool.file is not None
        return spool

    abandoned = spilled()  # planning stopped before finish: the spool owns it
    file = abandoned.file
    assert file is not None
    del abandoned
    gc.collect()
    assert file.closed

    spool = spilled()
    file = spool.file
    assert file is not None
    actions = spool.finish()
    del spool
    gc.collect()
    assert not file.closed  # handed on: the plan still reads it
    assert [action.send["action"] for action in actions] == ["archive"]
    del actions
    gc.collect()
    assert file.closed


@pytest.mark.parametrize("kind", ["not", "all", "any"])
def test_a_where_nested_past_the_parser_plans_in_one_pass_as_make_plan_does(kind: str) -> None:
    """The one pass's selector that passes unchanged matches over
    (``acting.quick_selector``) cannot be compiled for a ``where`` nested past
    Python's parser limits; the rule goes the general way, with the same plan."""
    where: dict = {"tag": "x"}
    for _ in range(100):
        where = {"not": where} if kind == "not" else {kind: [where]}
    rules = [rule("deep", where, [{"tags_add": ["seen"]}, "archive"])]
    items = [
        Item(str(n), given_url=f"https://a.org/{n}", time_added=n, tags=tags)
        for n, tags in enumerate([("x",), ("y",), None, ("x", "seen"), ()], start=1)
    ]
    reference = make_plan(rules, items, NOW)
    assert reference.actions  # something to plan, whichever way the nesting reads
    assert plan_in_passes(rules, chunked(items, 2), NOW).dumps() == reference.dumps()
