"""Linkding in the rule language, no server needed: its own flags as
conditions (``marked_unread``, ``shared``) and actions (``mark_read``,
``mark_unread``, ``share``, ``unshare``), unknown or refused on every other
source; favourites refused on Linkding; its tag fold; its config block;
``refine`` spelling renames out per bookmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.library.tagcase import dashed_lower
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.actions import compile_action
from rulebot.rules.capabilities import LINKDING, SOURCES
from rulebot.rules.conditions import compile_where
from rulebot.rules.config import load_config, validate_text
from rulebot.rules.vocab import CompileContext
from rulebot.sources.linkding.source import LinkdingSource

from .helpers import NOW, clear_rulebot_env, item, rb

BLOCKS = {
    "local": "",
    "pocket": "pocket: {base_url: 'https://pocket.example.com'}\n",
    "karakeep": "karakeep: {base_url: 'https://karakeep.example.com'}\n",
    "wallabag": "wallabag: {base_url: 'https://wallabag.example.com'}\n",
    "readeck": "readeck: {base_url: 'https://readeck.example.com'}\n",
    "shaarli": "shaarli: {base_url: 'https://shaarli.example.com'}\n",
    "linkding": "linkding: {base_url: 'https://linkding.example.com'}\n",
}


def problems(source: str, rules: str) -> list[str]:
    text = f"version: 1\n{BLOCKS[source]}rules:\n{rules}"
    return [f"{'error' if p.is_error else 'warning'}: {p}" for p in validate_text(text)]


# -- the flags as conditions ----------------------------------------------------------------


def flagged(unread: bool | None, shared: bool | None) -> Item:
    extra = {k: v for k, v in (("unread", unread), ("shared", shared)) if v is not None}
    return item(1, extra=extra)


@pytest.mark.parametrize(
    ("where", "unread", "shared", "expected"),
    [
        ({"marked_unread": True}, True, False, True),
        ({"marked_unread": True}, False, False, False),
        ({"marked_unread": False}, False, True, True),
        ({"marked_unread": True}, None, None, None),  # another source's item: unknown
        ({"shared": True}, False, True, True),
        ({"shared": False}, False, True, False),
        ({"shared": False}, None, None, None),
        ({"not": {"shared": True}}, None, None, None),  # unknown stays unknown under not
        ({"not": {"shared": True}}, False, False, True),
        ({"any": [{"shared": True}, {"marked_unread": True}]}, True, None, True),
    ],
)
def test_the_flags_match_three_valued(
    where: dict[str, object], unread: bool | None, shared: bool | None, expected: bool | None
) -> None:
    compiled = compile_where(where)
    it = flagged(unread, shared)
    assert compiled.test(it, NOW).matched is expected
    # the compiled selector agrees with the reference: unknown is never selected
    assert (compiled.select([it], NOW) == [it]) is (expected is True)


def test_a_flag_reads_as_a_reason() -> None:
    checked = compile_where({"marked_unread": True, "shared": False}).test(
        flagged(True, False), NOW
    )
    assert [c.reason for c in checked.children] == ["marked unread", "not shared"]
    unknown = compile_where({"shared": True}).test(flagged(None, None), NOW)
    assert unknown.children[0].reason == "shared unknown"


@pytest.mark.parametrize("source", [s for s in BLOCKS if s != "linkding"])
def test_other_sources_never_know_the_flags_and_refuse_their_actions(source: str) -> None:
    found = problems(
        source,
        "  - name: flags\n    where: {marked_unread: true, shared: false}\n"
        "    actions: [mark_read, share]\n",
    )
    name = SOURCES[source].name
    assert any(
        "warning: " in p and "`marked_unread` is never known" in p and name in p for p in found
    ), found
    assert any(f"{name} cannot do `mark_read`" in p for p in found), found
    assert any(f"{name} cannot do `share`" in p for p in found), found


def test_linkding_takes_the_flags_and_refuses_favourites_naming_itself() -> None:
    assert not problems(
        "linkding",
        "  - name: flags\n    where: {status: archived, marked_unread: true, shared: true}\n"
        "    actions: [mark_read, unshare, mark_unread, share]\n",
    )
    found = problems(
        "linkding",
        "  - name: fav\n    where: {favorite: true}\n    actions: [archive]\n"
        "  - name: when\n    where: {favorited: {older_than: 1d}}\n    actions: [archive]\n"
        "  - name: star\n    where: {tag: x}\n    actions: [unfavorite]\n",
    )
    errors = [p for p in found if p.startswith("error")]
    assert any("Linkding has no `favorite`" in p for p in errors), found
    assert any("Linkding has no `favorited`" in p for p in errors), found
    assert any("Linkding cannot do `unfavorite`" in p for p in errors), found
    warned = problems(
        "linkding", "  - name: r\n    where: {read: {older_than: 1d}}\n    actions: [archive]\n"
    )
    assert any("Linkding keeps no read or archived time" in p for p in warned), warned


# -- the flags as actions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "flag", "before", "after"),
    [
        ("mark_read", "unread", True, False),
        ("mark_unread", "unread", False, True),
        ("share", "shared", False, True),
        ("unshare", "shared", True, False),
    ],
)
def test_a_flag_action_sends_its_word_and_changes_only_its_flag(
    word: str, flag: str, before: bool, after: bool
) -> None:
    other = "shared" if flag == "unread" else "unread"
    it = item(7, extra={flag: before, other: True}, status=ARCHIVED)
    effect = compile_action(word).on_item(it, NOW)
    assert effect is not None
    assert effect.send == {"action": word, "item_id": "7", "time": NOW}
    changed = effect.changed[0]
    assert dict(changed.extra) == {flag: after, other: True}
    assert changed.status == ARCHIVED and changed.time_updated == NOW
    assert compile_action(word).on_item(changed, NOW) is None  # a no-op is dropped


def test_a_flag_action_on_an_unknown_flag_is_planned() -> None:
    assert compile_action("mark_read").on_item(item(7), NOW) is not None


def test_undo_puts_a_flag_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reversal of each flag action is the other word of its pair (planned
    on the mirror as the run left it), and a flag changed since is stale."""
    from rulebot.library.store import Store
    from rulebot.run.undo import plan_undo

    monkeypatch.chdir(tmp_path)
    with Store.open(tmp_path / "s.db") as store:
        before = item(1, extra={"unread": True, "shared": False})
        store.upsert([before, item(2, extra={"unread": False, "shared": True})])
        sends = [
            {"action": "mark_read", "item_id": "1", "time": NOW},
            {"action": "unshare", "item_id": "2", "time": NOW},
        ]
        run = store.journal_begin(
            "apply-linkding",
            [{"rule": "r", "send": s} for s in sends],
            source={"kind": "linkding", "base_url": "https://l.example"},
            before=[
                {"item": {"item_id": "1", "status": UNREAD, "tags": []}},
                {"item": {"item_id": "2", "status": UNREAD, "tags": []}},
            ],
        )
        store.journal_mark(run, [0, 1], "confirmed")
        store.journal_finish(run, "ok")
        library = {
            "1": before.replace(extra={"unread": False, "shared": False}),  # as the run left it
            "2": item(2, extra={"unread": False, "shared": True}),  # shared again since
        }
        undo = plan_undo(
            store,
            None,
            library,
            NOW + 60,
            source={"kind": "linkding", "base_url": "https://l.example"},
        )
    assert [a.send["action"] for a in undo.plan.actions] == ["mark_unread"]
    assert any("shared flag changed since" in note for note in undo.stale), undo.stale


# -- tags, the config block, refine -------------------------------------------------------


def test_linkding_compares_tags_as_it_stores_them() -> None:
    assert LINKDING.fold is dashed_lower
    assert dashed_lower(" Read Later ") == dashed_lower("read-later") == "read-later"
    assert dashed_lower("Maße") != dashed_lower("masse")  # lower case, never case folding
    ctx = CompileContext(fold=LINKDING.fold)
    has = item(1, tags=("read-later",))
    assert compile_action({"tags_add": ["Read Later"]}, ctx).on_item(has, NOW) is None
    assert compile_where({"tag": "READ LATER"}, ctx).test(has, NOW).matched is True


def test_the_linkding_block_takes_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\nlinkding: {base_url: 'https://l.example/', page_size: 500, "
        "full_scan_every: 2d, token_env: MY_TOKEN, concurrency: 2, max_items: 9}\nrules: []\n"
    )
    config = load_config(path)
    assert config.source_kind == "linkding" and config.service is not None
    assert (config.service.page_size, config.service.concurrency) == (500, 2)
    assert config.service.env == {"token_env": "MY_TOKEN"}
    assert config.service.extra == {"full_scan_every": "2d"}
    text = "version: 1\nlinkding: {base_url: 'https://l.example', page_size: 501}\nrules: []\n"
    assert any("page_size" in str(p) for p in validate_text(text))
    text = (
        "version: 1\nlinkding: {base_url: 'https://l.example', full_scan_every: soon}\nrules: []\n"
    )
    assert any("full_scan_every" in str(p) for p in validate_text(text))


def source() -> LinkdingSource:
    from rulebot.rules.config import ServiceSettings

    return LinkdingSource(ServiceSettings("linkding", "https://l.example", 500))


def plan_of(*sends: dict[str, object], items: list[Item]) -> tuple[Plan, dict[str, Item]]:
    library = {i.item_id: i for i in items}
    actions = [PlannedAction("r", {**s, "time": NOW}, None, ("why",)) for s in sends]
    return Plan(created_at=NOW, actions=actions, source={"kind": "linkding"}), library


def test_refine_spells_a_rename_and_a_tag_delete_out_per_bookmark() -> None:
    plan, library = plan_of(
        {"action": "tag_rename", "old_tag": "js", "new_tag": "javascript"},
        {"action": "tag_delete", "tag": "tmp"},
        items=[item(1, tags=("js", "tmp")), item(2, tags=("web",)), item(3, tags=("JS",))],
    )
    refined = source().refine(plan, library)
    shown = [(a.send["action"], a.send.get("item_id"), a.send.get("tags")) for a in refined.actions]
    assert shown == [
        ("tags_remove", "1", "js"),
        ("tags_add", "1", "javascript"),
        ("tags_remove", "3", "JS"),
        ("tags_add", "3", "javascript"),
        ("tags_remove", "1", "tmp"),
    ]
    assert all("per bookmark" in a.reasons[0] for a in refined.actions)


def test_refine_leaves_out_a_rename_linkding_cannot_do(caplog: pytest.LogCaptureFixture) -> None:
    plan, library = plan_of(
        {"action": "tag_rename", "old_tag": "Dev", "new_tag": "dev"},
        {"action": "tag_rename", "old_tag": "read later", "new_tag": "Read-Later"},
        items=[item(1, tags=("Dev", "read-later"))],
    )
    assert source().refine(plan, library).actions == []
    assert caplog.text.count("keeps the first spelling of a tag") == 2


def test_a_config_test_can_give_the_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    Path("rules.yaml").write_text(
        "version: 1\nlinkding: {base_url: 'https://l.example'}\nrules:\n"
        "  - name: read-means-archived\n    where: {status: archived, marked_unread: true}\n"
        "    actions: [mark_read]\n"
        "tests:\n  - name: only the archived unread one\n    items:\n"
        "      - {id: 1, url: 'https://a.example/1', status: archived, marked_unread: true}\n"
        "      - {id: 2, url: 'https://a.example/2', status: archived, marked_unread: false}\n"
        "      - {id: 3, url: 'https://a.example/3', status: archived}\n"
        "    expect:\n      - {action: mark_read, item: 1}\n"
    )
    code, out, err = rb(capsys, "test")
    assert code == 0, out + err
