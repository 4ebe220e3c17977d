"""grace (mark-for-op), the duplicate condition, `rulebot items` and
`explain URL`: planner units, and the real CLI on the local library and the
fake Karakeep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rulebot.fake.karakeep import FakeKarakeep
from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.planning.planner import make_plan
from rulebot.rules.conditions import compile_where
from rulebot.rules.config import load_config_text

from .helpers import DAY, NOW, clear_rulebot_env, item, rb
from .test_karakeep_source import KEY, T, configure

STORE = Path(".rulebot/rulebot.db")

# -- duplicate ----------------------------------------------------------------------


def dupes(where: dict, items: list[Item]) -> list[str]:
    return [i.item_id for i in compile_where(where).select([None, *items], NOW)]


def test_duplicates_keep_the_oldest_or_newest_and_resolved_urls_count() -> None:
    items = [
        item(1, age_days=30, given_url="https://www.a.com/x/?utm_source=n"),
        item(2, age_days=20, given_url="http://a.com/x#top"),
        item(3, age_days=10, given_url="https://t.co/1", resolved_url="https://a.com/x"),
        item(4, age_days=5, given_url="https://a.com/y"),
    ]
    assert dupes({"duplicate": {"by": "url"}}, items) == ["2", "3"]
    assert dupes({"duplicate": {"by": "url", "keep": "newest"}}, items) == ["1", "2"]
    # groups are formed over the whole library, not only items passing the rest
    assert dupes({"duplicate": {"by": "url"}, "added": {"newer_than": "25d"}}, items) == ["2", "3"]
    where = compile_where({"not": {"duplicate": {"by": "url"}}})
    assert [i.item_id for i in where.select(items, NOW)] == ["1", "4"]
    compiled = compile_where({"duplicate": {"by": "url"}})
    compiled.select(items, NOW)
    assert "duplicate of item 1" in compiled.test(items[1], NOW).children[0].reason


def test_same_time_added_keeps_the_lower_id() -> None:
    items = [
        item(9, age_days=3, given_url="https://a.com"),
        item(7, age_days=3, given_url="a.com/"),
    ]
    assert dupes({"duplicate": {"by": "url"}}, items) == ["9"]


urls = st.sampled_from(
    ["https://a.com/x", "http://www.a.com/x/", "https://a.com/y", "https://b.com"]
)


@given(st.lists(st.tuples(urls, st.integers(0, 5)), min_size=1, max_size=8), st.booleans())
def test_selector_agrees_with_the_reference_evaluation(spec: list, newest: bool) -> None:
    items = [item(n + 1, age_days=age, given_url=u) for n, (u, age) in enumerate(spec)]
    for where in (
        {"duplicate": {"by": "url", "keep": "newest" if newest else "oldest"}},
        {"any": [{"duplicate": {"by": "url"}}, {"tag": "x"}]},
    ):
        compiled = compile_where(where)
        selected = compiled.select([None, *items], NOW)
        assert selected == [i for i in items if compiled.test(i, NOW).matched is True]
        assert selected == [i for i in items if compiled.matches(i, NOW) is True]


def test_duplicate_sees_the_simulated_state_of_earlier_rules() -> None:
    config = load_config_text(
        "version: 1\nrules:\n"
        "  - {name: drop-old, where: {tag: old}, actions: [delete]}\n"
        "  - {name: dedupe, where: {duplicate: {by: url}}, actions: [archive]}\n"
    )
    items = [
        item(1, age_days=30, given_url="https://a.com", tags=("old",)),
        item(2, age_days=20, given_url="https://a.com"),
        item(3, age_days=10, given_url="https://a.com"),
    ]
    plan = make_plan(config.rules, items, NOW)
    assert [(a.rule, a.name, a.item_id) for a in plan.actions] == [
        ("drop-old", "delete", "1"),
        ("dedupe", "archive", "3"),  # 1 is gone: 2 is now the oldest, kept
    ]


# -- grace --------------------------------------------------------------------------

GRACE = """\
version: 1
timezone: Europe/Berlin
rules:
  - name: stale
    where: {tag: news}
    grace: 2d
    actions: [archive]
  - name: inbox
    where: {untagged: true}
    actions: [{tags_add: [inbox]}]
"""


def plan_of(
    items: list[Item], now: int, marks: dict | None = None
) -> list[tuple[str, str, str, str]]:
    config = load_config_text(GRACE)
    plan = make_plan(config.rules, items, now, timezone=config.timezone, marks=marks)
    return [(a.rule, a.name, str(a.send.get("tags", "")), a.reasons[-1]) for a in plan.actions]


SET = {"stale": {"1": {"rulebot:stale:2026-11-28"}}}  # the mark rulebot set on item 1


def test_grace_marks_then_acts_when_due_then_unmarks() -> None:
    late = NOW + 23 * 3600  # 05:00 UTC on the 27th is 06:00 in Berlin … 23h later: next day
    fresh = item(1, tags=("news",))
    assert plan_of([fresh], NOW) == [
        ("stale", "tags_add", "rulebot:stale:2026-11-28", "grace: marked, due 2026-11-28")
    ]
    marked = item(1, tags=("news", "rulebot:stale:2026-11-28"))
    assert plan_of([marked], late, SET) == []  # not yet due
    assert plan_of([marked], NOW + 2 * DAY, SET) == [
        ("stale", "archive", "", "grace: due 2026-11-28"),
        ("stale", "tags_remove", "rulebot:stale:2026-11-28", "grace: due 2026-11-28"),
    ]
    gone = item(1, tags=("other", "rulebot:stale:2026-11-28"))  # no longer matches
    assert plan_of([gone], NOW) == [
        (
            "stale",
            "tags_remove",
            "rulebot:stale:2026-11-28",
            "grace: no longer matches, mark removed",
        )
    ]


@pytest.mark.parametrize(
    "planted",
    [
        "rulebot:stale:2020-01-01",
        "RULEBOT:STALE:2020-01-01",  # upper case
        "rulebot:stale:20200101",  # the basic date format
        "rulebot:stale:2026-11-28",  # the very mark rulebot would set, but it did not
    ],
)
def test_a_mark_rulebot_did_not_set_starts_the_grace_period_afresh(planted: str) -> None:
    """A mark typed by hand, planted by another client or left from a lost
    store never brings the action forward: it is replaced by a fresh mark,
    due a whole grace period from today, and the plan says why."""
    planted_item = item(1, tags=("news", planted))
    why = (
        f"grace: {planted} was not set by rulebot (its store has no record of it), "
        "so it does not count: marked afresh, due 2026-11-28"
    )
    assert plan_of([planted_item], NOW) == [
        ("stale", "tags_remove", planted, why),
        ("stale", "tags_add", "rulebot:stale:2026-11-28", why),
    ]
    # a mark rulebot set on another item, or set by another rule, does not vouch for it
    elsewhere = {"stale": {"2": {planted}}, "inbox": {"1": {planted}}}
    assert [a[1] for a in plan_of([planted_item], NOW, elsewhere)] == ["tags_remove", "tags_add"]
    # next to rulebot's own mark, a planted earlier date changes nothing: not due yet
    both = item(1, tags=("news", "rulebot:stale:2026-11-28", "rulebot:stale:2020-01-01"))
    assert plan_of([both], NOW + DAY, SET) == []
    # when rulebot's own mark falls due, every mark goes with the action
    assert [a[:3] for a in plan_of([both], NOW + 2 * DAY, SET)] == [
        ("stale", "archive", ""),
        ("stale", "tags_remove", "rulebot:stale:2026-11-28,rulebot:stale:2020-01-01"),
    ]


def test_the_due_day_is_in_the_configs_timezone() -> None:
    just_before_midnight_berlin = 1795733940  # 2026-11-26T22:59:00Z = 23:59 in Berlin
    assert plan_of([item(1, tags=("news",))], just_before_midnight_berlin)[0][2] == (
        "rulebot:stale:2026-11-28"
    )
    assert plan_of([item(1, tags=("news",))], just_before_midnight_berlin + 120)[0][2] == (
        "rulebot:stale:2026-11-29"
    )


def test_an_item_with_only_a_mark_is_still_untagged() -> None:
    only_mark = item(2, tags=("rulebot:other:2026-11-28",))
    assert plan_of([only_mark], NOW) == [("inbox", "tags_add", "inbox", "untagged")]
    where = compile_where({"untagged": False})
    assert where.select([only_mark], NOW) == [] and where.test(only_mark, NOW).matched is False


def test_grace_needs_item_actions_and_a_duration() -> None:
    from rulebot.rules.config import validate_text

    problems = validate_text(
        "version: 1\nrules:\n  - {name: a, grace: 7d, actions: [{tag_delete: x}]}\n"
        "  - {name: b, grace: 7, where: {tag: x}, actions: [archive]}\n"
    )
    text = "\n".join(str(p) for p in problems)
    assert "grace delays a rule's item actions" in text and "[$.rules[0].grace]" in text
    assert "did you mean '7d'" in text


@pytest.fixture
def karakeep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKarakeep]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("KARAKEEP_API_KEY", KEY)
    with FakeKarakeep(now=T, api_key=KEY) as fake:
        yield fake


def test_grace_on_karakeep_marks_in_the_library_then_archives(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    news = karakeep.add_bookmark("https://n.example/1", "News", tags=["news"])
    karakeep.add_bookmark("https://n.example/1?utm_source=x", "Copy", tags=[])
    configure(
        karakeep,
        "rules:\n  - name: stale\n    where: {tag: news}\n    grace: 1d\n    actions: [archive]\n"
        "  - name: dedupe\n    where: {duplicate: {by: url}}\n    actions: [delete]\n",
    )
    code, _, err = rb(capsys, "run", "--now", "2026-11-26T06:00:00Z")
    assert code == 0, err
    assert "rulebot:stale:2026-11-27" in sorted(karakeep.state.tag_names(news))
    assert len(karakeep.state.bookmarks) == 1  # the copy went
    karakeep.now = T + DAY
    code, _, err = rb(capsys, "run", "--now", "2026-11-27T06:00:00Z")
    assert code == 0, err
    assert karakeep.state.bookmarks[news]["archived"] is True
    assert karakeep.state.tag_names(news) == ["news"]


def test_grace_on_karakeep_a_mark_left_from_a_lost_store_does_not_count(
    karakeep: FakeKarakeep, capsys: pytest.CaptureFixture[str]
) -> None:
    news = karakeep.add_bookmark("https://n.example/1", "News", tags=["news"])
    configure(
        karakeep,
        "rules:\n  - name: stale\n    where: {tag: news}\n    grace: 1d\n    actions: [archive]\n",
    )
    code, _, err = rb(capsys, "run", "--now", "2026-11-26T06:00:00Z")
    assert code == 0, err
    assert "rulebot:stale:2026-11-27" in karakeep.state.tag_names(news)
    for path in STORE.parent.iterdir():  # the store is lost; the mark stays in the library
        path.unlink()
    karakeep.now = T + DAY
    code, _, err = rb(capsys, "run", "--now", "2026-11-27T06:00:00Z")
    assert code == 0, err
    assert karakeep.state.bookmarks[news]["archived"] is False  # not acted on: marked afresh
    assert sorted(karakeep.state.tag_names(news)) == ["news", "rulebot:stale:2026-11-28"]
    karakeep.now = T + 2 * DAY
    code, _, err = rb(capsys, "run", "--now", "2026-11-28T06:00:00Z")
    assert code == 0, err
    assert karakeep.state.bookmarks[news]["archived"] is True  # the new store's own mark
    assert karakeep.state.tag_names(news) == ["news"]


PURGE = """\
version: 1
rules:
  - name: purge
    where: {tag: old}
    grace: 7d
    actions: [delete]
"""
PLANTED = ["rulebot:purge:2020-01-01", "RULEBOT:PURGE:2020-01-01", "rulebot:purge:20200101"]


def test_planted_marks_delete_nothing_on_the_first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mark typed into the library (any case, any ISO date form) is no
    mark of rulebot's: the first run marks the item afresh and says so; only
    a whole grace period later is it deleted."""
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    Path("rules.yaml").write_text(PURGE)
    with Store.open(STORE) as store:
        store.upsert([item(n + 1, tags=("old", mark)) for n, mark in enumerate(PLANTED)])
    code, out, err = rb(capsys, "plan", "--now", "2026-11-26T06:00:00Z", "--format", "json")
    assert code == 0, err
    planned = json.loads(out)["actions"]
    assert [a["send"]["action"] for a in planned] == ["tags_remove", "tags_add"] * 3
    for mark, action in zip(PLANTED, planned[::2], strict=True):
        assert action["send"]["tags"] == mark
        assert f"{mark} was not set by rulebot" in action["reasons"][-1]
    code, out, err = rb(capsys, "run", "--now", "2026-11-26T06:00:00Z")
    assert code == 0, err
    assert "Applied: 6 succeeded" in out  # the marks replaced, nothing deleted
    with Store.open(STORE) as store:
        assert [i.tags for i in store.items()] == [("old", "rulebot:purge:2026-12-03")] * 3
    code, _, err = rb(capsys, "run", "--now", "2026-12-02T06:00:00Z")
    assert code == 0, err
    with Store.open(STORE) as store:
        assert store.count() == 3  # not yet due
    code, _, err = rb(capsys, "run", "--now", "2026-12-03T06:00:00Z")
    assert code == 0, err
    with Store.open(STORE) as store:
        assert store.count() == 0  # due by the marks rulebot set


# -- items and explain --------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    Path("rules.yaml").write_text(GRACE)
    with Store.open(STORE) as store:
        store.upsert(
            [
                item(1, tags=("news",), given_url="https://www.a.com/story?utm_source=x"),
                item(2, tags=(), given_url="https://b.com/x"),
                item(3, tags=("news", "tech"), given_url="https://c.com/y"),
            ]
        )
    return tmp_path


def test_items_with_where_rule_formats_and_limit(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = rb(capsys, "items", "--where", "{tag: news}")
    assert code == 0 and out.splitlines()[-1] == "2 items"
    code, out, _ = rb(capsys, "items", "--rule", "inbox", "--format", "json")
    assert [row["item_id"] for row in json.loads(out)] == ["2"]
    code, out, _ = rb(capsys, "items", "--where", "{}", "--format", "csv", "--limit", "1")
    assert out.splitlines()[0].startswith("item_id,status") and len(out.splitlines()) == 2
    code, _, err = rb(capsys, "items", "--where", "{tag: news, statuss: unread}")
    assert code == 1 and "--where, column 13: unknown key 'statuss'" in err
    assert "Traceback" not in err
    code, _, err = rb(capsys, "items", "--where", "{tag: [a")
    assert code == 1 and "--where" in err
    code, _, err = rb(capsys, "items", "--rule", "nope")
    assert code == 1 and "no rule named 'nope'" in err


def test_items_where_takes_a_bare_mapping_as_a_rule_file_writes_it(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--where 'tag: news'` was a YAML error (only `{tag: news}` worked)."""
    _, braced, _ = rb(capsys, "items", "--where", "{tag: news}", "--format", "json")
    for bare in (
        "tag: news",
        "  tag: news  ",
        "tag: news, status: unread",
        "tag: news\nstatus: unread",
    ):
        code, out, err = rb(capsys, "items", "--where", bare, "--format", "json")
        assert (code, err) == (0, ""), bare
        assert json.loads(out) == json.loads(braced), bare
    code, out, _ = rb(capsys, "items", "--where", "tag: tech", "--format", "json")
    assert [row["item_id"] for row in json.loads(out)] == ["3"]
    # errors still name the column of the argument as typed, or its line
    code, _, err = rb(capsys, "items", "--where", "tag: news, statuss: unread")
    assert code == 1 and "--where, column 12: unknown key 'statuss'" in err
    code, _, err = rb(capsys, "items", "--where", "tag: news\n  statuss: unread")
    assert code == 1 and "--where, line 2" in err and "Traceback" not in err
    code, _, err = rb(capsys, "items", "--where", "tag: news\nstatuss: unread")
    assert code == 1 and "--where, line 2, column 1: unknown key 'statuss'" in err


def test_explain_takes_a_url(local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = rb(capsys, "explain", "http://a.com/story", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["item"]["item_id"] == "1"
    code, _, err = rb(capsys, "explain", "https://nowhere.example/")
    assert code == 1 and "no item with the URL" in err
