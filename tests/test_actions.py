from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebot.library.item import ARCHIVED, DELETED, UNREAD
from rulebot.library.tagcase import ascii_lower, unicode_lower
from rulebot.rules.actions import FLAG_ACTIONS, REGISTRY, TagsAdd, compile_action, from_send
from rulebot.rules.conditions.base import Env
from rulebot.rules.vocab import CompileContext, VocabError

from .helpers import NOW, examples, item


def send_of(action, it):
    effect = compile_action(action).on_item(it, NOW)
    return None if effect is None else effect.send


def test_all_twelve_seed_actions_exist() -> None:
    assert set(REGISTRY) - set(FLAG_ACTIONS) == {
        "add", "archive", "readd", "favorite", "unfavorite", "delete",
        "tags_add", "tags_remove", "tags_replace", "tags_clear", "tag_rename", "tag_delete",
    }  # fmt: skip
    # beyond them only a service's own flags (Linkding's), which every other source refuses
    assert set(FLAG_ACTIONS) == {"mark_read", "mark_unread", "share", "unshare"}


@pytest.mark.parametrize(
    ("action", "state", "changes"),
    [
        ("archive", {"status": UNREAD}, {"status": ARCHIVED}),
        ("readd", {"status": ARCHIVED}, {"status": UNREAD}),
        ("favorite", {"favorite": False}, {"favorite": True}),
        ("unfavorite", {"favorite": True}, {"favorite": False}),
        ("delete", {}, {"status": DELETED}),
        ("tags_clear", {"tags": ("a",)}, {"tags": ()}),
    ],
)
def test_bare_words_send_exact_payload_and_change_item(action, state, changes) -> None:
    it = item(229279689, **state)
    effect = compile_action(action).on_item(it, NOW)
    assert effect is not None
    assert effect.send == {"action": action, "item_id": "229279689", "time": NOW}
    for key, value in changes.items():
        assert getattr(effect.changed[0], key) == value
    assert effect.changed[0].time_updated == NOW


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ("archive", {"status": ARCHIVED}),
        ("readd", {"status": UNREAD}),
        ("favorite", {"favorite": True}),
        ("unfavorite", {"favorite": False}),
        ("tags_clear", {"tags": ()}),
        ({"tags_add": ["A"]}, {"tags": ("a",)}),
        ({"tags_remove": ["x"]}, {"tags": ("a",)}),
        ({"tags_replace": ["a", "b"]}, {"tags": ("b", "a")}),
    ],
)
def test_no_op_actions_are_dropped(action, state) -> None:
    assert send_of(action, item(**state)) is None


def test_tags_add_sends_only_missing_tags_in_written_order_as_comma_string() -> None:
    it = item(tags=("Python",))
    assert send_of({"tags_add": ["zeta", "python", "alpha", "ZETA"]}, it) == {
        "action": "tags_add", "item_id": "1", "tags": "zeta,alpha", "time": NOW,
    }  # fmt: skip
    effect = compile_action({"tags_add": "zeta, alpha"}).on_item(it, NOW)
    assert effect is not None and effect.changed[0].tags == ("Python", "zeta", "alpha")


def test_tags_remove_sends_only_present_tags_keeping_case_of_rule() -> None:
    it = item(tags=("JS", "web"))
    effect = compile_action({"tags_remove": ["js", "css"]}).on_item(it, NOW)
    assert effect is not None
    assert effect.send["tags"] == "js"
    assert effect.changed[0].tags == ("web",)


def test_unknown_tags_add_remove_are_skipped_replace_clear_are_sent() -> None:
    # with unknown tags an add/remove may be a no-op; never plan one blind
    assert send_of({"tags_add": ["a"]}, item(tags=None)) is None
    assert send_of({"tags_remove": ["a"]}, item(tags=None)) is None
    effect = compile_action({"tags_replace": ["a", "b"]}).on_item(item(tags=None), NOW)
    assert effect is not None and effect.changed[0].tags == ("a", "b")
    effect = compile_action("tags_clear").on_item(item(tags=None), NOW)
    assert effect is not None and effect.changed[0].tags == ()


def test_tag_rename_is_account_wide() -> None:
    library = {
        "1": item(1, tags=("js", "web")),
        "2": item(2, tags=("JS",)),
        "3": item(3, tags=("rust",)),
        "4": item(4, tags=("js", "javascript")),
    }
    effect = compile_action({"tag_rename": {"old_tag": "js", "new_tag": "javascript"}}).on_library(
        library, set(), NOW
    )
    assert effect is not None
    assert effect.send == {
        "action": "tag_rename",
        "old_tag": "js",
        "new_tag": "javascript",
        "time": NOW,
    }
    after = {i.item_id: i.tags for i in effect.changed}
    # the new name takes the old one's place, so renaming back gives the same list
    assert after == {"1": ("javascript", "web"), "2": ("javascript",), "4": ("javascript",)}


def test_case_only_tag_rename_leaves_exactly_the_new_spelling() -> None:
    library = {
        "1": item(1, tags=("Python", "python", "web")),
        "2": item(2, tags=("python",)),
        "3": item(3, tags=("Python",)),
    }
    action = compile_action({"tag_rename": {"old_tag": "python", "new_tag": "Python"}})
    effect = action.on_library(library, set(), NOW)
    assert effect is not None
    after = {i.item_id: i.tags for i in effect.changed}
    assert after == {"1": ("Python", "web"), "2": ("Python",)}
    # and once applied, there is nothing left to do
    library.update({i.item_id: i for i in effect.changed})
    assert action.on_library(library, set(), NOW) is None


def test_tag_rename_of_absent_tag_is_a_no_op() -> None:
    action = compile_action({"tag_rename": {"old_tag": "nope", "new_tag": "x"}})
    assert action.on_library({"1": item(tags=("a",))}, set(), NOW) is None


def test_tag_delete() -> None:
    action = compile_action({"tag_delete": "old"})
    assert action.destructive and action.account_wide
    effect = action.on_library({"1": item(tags=("Old", "keep"))}, set(), NOW)
    assert effect is not None and effect.send == {"action": "tag_delete", "tag": "old", "time": NOW}
    assert effect.changed[0].tags == ("keep",)


def test_add_is_skipped_when_the_url_exists() -> None:
    action = compile_action({"add": {"url": "https://a.org/x", "tags": ["t1", "t2"], "title": "X"}})
    assert action.on_library({}, {"https://a.org/x"}, NOW) is None
    effect = action.on_library({}, set(), NOW)
    assert effect is not None
    assert effect.send == {
        "action": "add", "url": "https://a.org/x", "title": "X", "tags": "t1,t2", "time": NOW,
    }  # fmt: skip


def test_comma_in_tag_list_item_is_an_error_with_index() -> None:
    with pytest.raises(VocabError) as caught:
        compile_action({"tags_add": ["ok", "a,b"]})
    assert caught.value.path == ("tags_add", 1)


@pytest.mark.parametrize(
    "action",
    [
        "archive",
        {"tags_add": ["a", "b"]},
        {"tags_replace": ["x"]},
        {"tag_rename": {"old_tag": "a", "new_tag": "b"}},
        {"tag_delete": "a"},
        {"add": {"url": "https://x.org/", "title": "T", "tags": ["q"]}},
    ],
)
def test_from_send_rebuilds_the_same_action(action) -> None:
    compiled = compile_action(action)
    if compiled.account_wide:
        effect = compiled.on_library({"1": item(tags=("a",))}, set(), NOW)
    else:
        effect = compiled.on_item(item(tags=("q",)), NOW)
    assert effect is not None
    rebuilt = from_send(effect.send, unicode_lower)
    assert type(rebuilt) is type(compiled)
    assert rebuilt.describe() == compiled.describe()


def test_tags_replace_compares_case_insensitively() -> None:
    assert send_of({"tags_replace": ["python"]}, item(tags=("Python",))) is None


def test_tag_delete_error_points_at_the_value() -> None:
    with pytest.raises(VocabError) as caught:
        compile_action({"tag_delete": "a,b"})
    assert caught.value.path == ("tag_delete",)


def test_tag_actions_lower_case_and_never_case_fold() -> None:
    """`masse` and `Maße` are two tags (str.casefold made them one)."""
    library = {
        "1": item(1, tags=("Maße", "x")),
        "2": item(2, tags=("MASSE",)),
        "3": item(3, tags=("masse", "Masse")),
    }
    effect = compile_action({"tag_delete": "masse"}).on_library(library, set(), NOW)
    assert effect is not None
    assert {i.item_id: i.tags for i in effect.changed} == {"2": (), "3": ()}
    assert send_of({"tags_add": ["Maße"]}, item(tags=("masse",)))["tags"] == "Maße"
    assert send_of({"tags_remove": ["masse"]}, item(tags=("Maße",))) is None
    assert send_of({"tags_replace": ["masse"]}, item(tags=("Maße",))) is not None
    added = compile_action({"tags_add": ["Maße", "masse"]})
    assert isinstance(added, TagsAdd) and added.tags == ["Maße", "masse"]


def test_tag_actions_compare_ascii_letters_only_with_shaarlis_fold() -> None:
    ctx = CompileContext(fold=ascii_lower)
    both = item(tags=("ÉTÉ", "été", "DEV"))
    effect = compile_action({"tags_remove": ["été", "dev"]}, ctx).on_item(both, NOW)
    assert effect is not None and effect.changed[0].tags == ("ÉTÉ",)
    assert compile_action({"tags_add": ["Été"]}, ctx).on_item(both, NOW) is not None
    rename = compile_action({"tag_rename": {"old_tag": "été", "new_tag": "summer"}}, ctx)
    renamed = rename.on_library({"1": both}, set(), NOW)
    assert renamed is not None and renamed.changed[0].tags == ("ÉTÉ", "summer", "DEV")
    # a saved plan's action is rebuilt with the same fold: the applier agrees
    rebuilt = from_send(renamed.send, ascii_lower).on_library({"1": both}, set(), NOW)
    assert rebuilt is not None and rebuilt.changed == renamed.changed
    loose = from_send(renamed.send, unicode_lower).on_library({"1": both}, set(), NOW)
    assert loose is not None and loose.changed[0].tags == ("summer", "DEV")


@pytest.mark.parametrize(
    ("kind", "given", "stored"),
    [
        ("local", " Video ", " Video "),
        ("pocket", " Video ", "video"),
        ("wallabag", " Video ", "video"),
        ("karakeep", " ##Video ", "Video"),
        ("shaarli", " -Video ", "Video"),
        ("shaarli", "--Video", "-Video"),
        ("readeck", "Video", "Video"),
    ],
)
def test_each_source_says_how_it_stores_a_tag(kind: str, given: str, stored: str) -> None:
    from rulebot.rules.capabilities import SOURCES

    assert SOURCES[kind].stored_tag(given) == stored


def test_a_plan_shows_tags_as_the_service_stores_them_and_says_so() -> None:
    from rulebot.planning.plan import Plan, PlannedAction
    from rulebot.rules.capabilities import KARAKEEP, LOCAL, POCKET
    from rulebot.sources.refining import as_stored

    def plan(*sends: dict[str, str]) -> Plan:
        actions = [PlannedAction("r", dict(send)) for send in sends]
        return Plan(created_at=0, actions=actions, rules=["r"])

    given = plan(
        {"action": "tags_add", "item_id": "1", "tags": "#,Video"},
        {"action": "tag_rename", "old_tag": "a", "new_tag": "#b"},
        {"action": "tags_remove", "item_id": "1", "tags": "#c"},  # names a tag it has: as is
    )
    shown = as_stored(given, KARAKEEP)
    assert [a.send.get("tags", a.send.get("new_tag")) for a in shown.actions] == [
        "Video",
        "b",
        "#c",
    ]
    assert "Karakeep drops the tag '#' (nothing is left of it)" in shown.actions[0].reasons
    assert as_stored(given, LOCAL) is given
    long = plan({"action": "tags_add", "item_id": "1", "tags": "a-tag-of-thirty-characters-xx"})
    [action] = as_stored(long, POCKET).actions
    assert action.send["tags"] == "a-tag-of-thirty-characters-xx"  # said, not cut
    assert any("first 25 characters" in why for why in action.reasons)


# -- Action.unchanged: the planner's inline "changes nothing" --------------------

ITEM_ACTIONS = [
    "archive", "readd", "favorite", "unfavorite", "delete", "tags_clear",
    "mark_read", "mark_unread", "share", "unshare",
    {"tags_add": ["a", "NEW"]}, {"tags_add": ["B"]},
    {"tags_remove": ["a", "zz"]}, {"tags_remove": ["É"]},
    {"tags_replace": ["b", "A"]}, {"tags_replace": ["a", "a "]},
]  # fmt: skip
live_items = st.builds(
    lambda status, fav, tags, flags: item(7, status=status, favorite=fav, tags=tags, extra=flags),
    st.sampled_from([UNREAD, ARCHIVED]),
    st.sampled_from([True, False, None]),
    st.one_of(
        st.none(), st.lists(st.sampled_from(["a", "A", "b", "new", "é", "É", "a "])).map(tuple)
    ),
    st.dictionaries(st.sampled_from(["unread", "shared"]), st.sampled_from([True, False, None])),
)


@pytest.mark.parametrize("fold", [unicode_lower, ascii_lower])
@pytest.mark.parametrize("written", ITEM_ACTIONS, ids=str)
@settings(max_examples=examples(150), deadline=None, derandomize=True)
@given(it=live_items)
def test_unchanged_is_true_exactly_when_step_changes_nothing(written, fold, it) -> None:
    """The planner passes an item by when ``unchanged`` says so
    (``acting.quick_selector``), without calling ``step``: the two agree."""
    action = compile_action(written, CompileContext(fold=fold))
    env = Env()
    expression = action.unchanged(env)
    assert expression is not None, f"{written}: every item action says when it changes nothing"
    verdict = eval(expression, dict(env.names), {"i": it})
    assert verdict == (action.step(it, NOW) is None), (written, it)
