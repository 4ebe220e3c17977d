"""The Linkding source end to end against the REAL server (linkding 1.44.1 from
shared/servers/linkding, tests/linkding_server.py): the real CLI, a real
store file, every action's effect checked on the server's own answers, and
what its change feed cannot see (a deletion, a tag renamed or deleted in the
web UI) found by the next sync.

Marked ``linkding``; without the server package these tests skip saying
why, and with ``RULEBOT_REAL_SERVERS=1`` (CI) they fail instead.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from rulebot.library.store import Store
from rulebot.sources.linkding.source import FULL_SCAN_KEY
from tests.linkding_server import Account

from .helpers import rb

pytestmark = pytest.mark.linkding

DAY = 86400
STORE = Path(".rulebot/rulebot.db")

RULES = """\
limits: {max_actions: 500, max_deletes: 25}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: archive-stale
    where: {tag: read-later, status: unread, added: {older_than: 30d}}
    actions: [archive, {tags_add: [auto-archived]}]
  - name: back
    where: {tag: again, status: archived}
    actions: [readd]
  - name: tidy
    where: {tag: to-sort}
    actions: [{tags_remove: [TO-SORT]}]
  - name: replace
    where: {tag: replace-me}
    actions: [{tags_replace: [alpha, Beta]}]
  - name: clear
    where: {tag: clear-me}
    actions: [tags_clear]
  - name: rename-js
    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]
  - name: drop-tmp
    actions: [{tag_delete: tmp}]
  - name: add-docs
    actions: [{add: {url: "https://docs.example/new", title: New docs, tags: [docs]}}]
"""


def configure(account: Account, rules: str = RULES, **settings: object) -> Path:
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    path = Path("rules.yaml")
    path.write_text(f"version: 1\nlinkding: {{base_url: '{account.base_url}'{extra}}}\n{rules}")
    return path


def by_url(account: Account) -> dict[str, dict[str, object]]:
    return {str(b["url"]): b for b in account.bookmarks().values()}


def mirror() -> dict[str, tuple[tuple[str, ...], int]]:
    """The store's mirror: URL -> (tags sorted, status)."""
    with Store.open(STORE) as store:
        return {i.url: (tuple(sorted(i.tags or ())), i.status) for i in store.items()}


def held(account: Account) -> dict[str, tuple[tuple[str, ...], int]]:
    return {
        str(b["url"]): (tuple(sorted(b["tag_names"])), 1 if b["is_archived"] else 0)
        for b in account.bookmarks().values()
    }


def test_every_action_lands_on_the_server(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = linkding.add("https://a.example/stale", ["Read-Later"], title="Stale")
    linkding.set_added(stale, time.time() - 60 * DAY)
    linkding.add("https://a.example/fresh", ["read-later"], title="Fresh")
    linkding.add("https://a.example/junk", ["junk"])
    linkding.add("https://a.example/again", ["again"], is_archived=True)
    linkding.add("https://a.example/sorted", ["To-Sort", "keep"], is_archived=True)
    linkding.add("https://a.example/replace", ["replace-me", "Alpha"])
    linkding.add("https://a.example/clear", ["clear-me", "x"])
    linkding.add("https://a.example/js", ["js", "web"], unread=True, shared=True)
    linkding.add("https://a.example/tmp", ["tmp", "keep"])
    configure(linkding)

    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["summary"]["failed"] == result["summary"]["skipped"] == 0, out

    after = by_url(linkding)
    assert "https://a.example/junk" not in after
    assert after["https://a.example/stale"]["is_archived"] is True
    assert after["https://a.example/stale"]["tag_names"] == ["Read-Later", "auto-archived"]
    assert after["https://a.example/fresh"]["is_archived"] is False
    assert after["https://a.example/again"]["is_archived"] is False
    assert after["https://a.example/sorted"]["tag_names"] == ["keep"]
    assert after["https://a.example/replace"]["tag_names"] == ["Alpha", "Beta"]  # its spelling kept
    assert after["https://a.example/clear"]["tag_names"] == []
    js = after["https://a.example/js"]
    assert js["tag_names"] == ["javascript", "web"]
    assert (js["unread"], js["shared"]) == (True, True)  # the PATCH left the flags alone
    assert after["https://a.example/tmp"]["tag_names"] == ["keep"]
    docs = after["https://docs.example/new"]
    assert (docs["title"], docs["tag_names"]) == ("New docs", ["docs"])

    assert mirror() == held(linkding)  # the mirror, from confirmed answers only
    code, out, err = rb(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err  # the second run plans nothing
    code, out, err = rb(capsys, "sync", "--full")
    assert code == 0, err
    assert mirror() == held(linkding)


def test_renames_and_tag_deletes_are_planned_per_bookmark(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        linkding.add(f"https://r.example/{n}", ["js", "tmp"] if n else ["web"])
    configure(
        linkding,
        "rules:\n"
        "  - name: rename-js\n    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]\n"
        "  - name: drop-tmp\n    actions: [{tag_delete: tmp}]\n",
    )
    code, out, err = rb(capsys, "plan", "--format", "json")
    assert code == 0, err
    actions = json.loads(out)["actions"]
    names = sorted((a["send"]["action"], a["send"].get("tags")) for a in actions)
    assert names == [
        ("tags_add", "javascript"),
        ("tags_add", "javascript"),
        ("tags_remove", "js"),
        ("tags_remove", "js"),
        ("tags_remove", "tmp"),
        ("tags_remove", "tmp"),
    ]
    assert all("per bookmark: Linkding's API has no tag rename" in a["reasons"][0] for a in actions)
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    # the plan's sync was the full one: this run's is incremental (tags, two lists, two
    # totals), then a GET and a PATCH per unit (one rule on one bookmark)
    assert json.loads(out)["requests"] == 5 + 4 * 2
    assert sorted(tuple(b["tag_names"]) for b in linkding.bookmarks().values()) == [
        ("javascript",),
        ("javascript",),
        ("web",),
    ]


def test_a_rename_of_the_case_alone_is_not_planned_and_says_why(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    linkding.add("https://c.example/1", ["Dev"])
    configure(
        linkding,
        "rules:\n  - name: lower\n    actions: [{tag_rename: {old_tag: Dev, new_tag: dev}}]\n",
    )
    code, out, err = rb(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err
    assert "keeps the first spelling of a tag" in err


def test_tags_compare_as_linkding_stores_them(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    """A space is a `-` to Linkding, and case does not count: `Read Later` is
    the tag `read-later` a bookmark already has, and is added as `Read-Later`
    to one that has no such tag (where the account has none either)."""
    has = linkding.add("https://k.example/has", ["read-later"])
    lacks = linkding.add("https://k.example/lacks", ["other"])
    configure(
        linkding,
        "rules:\n  - name: mark\n    where: {tag: [Read Later]}\n    actions: [{tags_add: [x]}]\n"
        "  - name: later\n    actions: [{tags_add: [Read Later]}]\n    where: {tag: other}\n",
    )
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    after = linkding.bookmarks()
    assert after[str(has)]["tag_names"] == ["read-later", "x"]
    assert after[str(lacks)]["tag_names"] == ["other", "read-later"]  # the account's spelling
    code, out, err = rb(capsys, "plan", "--detailed-exitcode")
    assert code == 2 and "tags_add x" in out, out + err  # now it has the tag: the first rule
    code, out, err = rb(capsys, "run")
    code, out, err = rb(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err


def test_an_add_never_overwrites_a_saved_bookmark(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = linkding.add("https://Docs.example/new/", ["mine"], title="Mine", notes="my notes")
    configure(linkding)
    code, out, err = rb(capsys, "plan", "--format", "json")
    assert code == 0, err
    assert not [a for a in json.loads(out)["actions"] if a["send"]["action"] == "add"]
    assert "Linkding has it saved already as https://Docs.example/new/" in err
    code, out, err = rb(capsys, "run")
    assert code == 0, err
    bookmark = linkding.bookmarks()[str(saved)]
    assert (bookmark["title"], bookmark["notes"], bookmark["tag_names"]) == (
        "Mine",
        "my notes",
        ["mine"],
    )


def test_an_add_saved_by_another_client_since_the_plan_is_left_alone(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(linkding)
    code, out, err = rb(capsys, "plan", "--out", "plan.json")
    assert code == 0, err
    theirs = linkding.add("https://docs.example/new", ["theirs"], title="Theirs")
    code, out, err = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["failed"] == 0
    bookmark = linkding.bookmarks()[str(theirs)]
    assert (bookmark["title"], bookmark["tag_names"]) == ("Theirs", ["theirs"])
    assert len(linkding.bookmarks()) == 1


def test_favourites_are_refused_naming_linkding(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        linkding,
        "rules:\n  - name: fav\n    where: {favorite: true}\n    actions: [archive]\n"
        "  - name: star\n    where: {tag: x}\n    actions: [favorite]\n",
    )
    code, out, err = rb(capsys, "validate")
    assert code == 1
    assert "Linkding has no `favorite`" in out + err
    assert "Linkding cannot do `favorite`" in out + err


def test_an_idle_sync_costs_five_requests_and_sees_every_edit(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [linkding.add(f"https://s.example/{n}", ["t"]) for n in range(3)]
    configure(linkding, "rules: []\n")
    code, out, err = rb(capsys, "sync")
    assert code == 0, err
    assert out.startswith("full sync: 3 received") and "(3 requests)" in out  # tags, 2 lists
    code, out, err = rb(capsys, "sync")
    assert out.startswith("incremental sync:") and "(5 requests)" in out, out
    linkding.patch(ids[0], tag_names=["edited"])
    linkding.patch(ids[1], is_archived=True)
    linkding.add("https://s.example/new", ["new"])
    code, out, err = rb(capsys, "sync")
    assert out.startswith("incremental sync:"), out
    assert mirror() == held(linkding)


def test_a_deletion_turns_the_next_sync_into_a_full_scan(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [linkding.add(f"https://d.example/{n}") for n in range(3)]
    configure(linkding, "rules: []\n")
    rb(capsys, "sync")
    linkding.delete(ids[1])
    linkding.add("https://d.example/new")  # the totals alone would not change
    code, out, err = rb(capsys, "-v", "sync")
    assert code == 0, err
    assert out.startswith("full sync:") and "1 deleted" in out, out
    assert "deleted there, which its change feed never shows" in err
    assert mirror() == held(linkding)


@pytest.mark.parametrize("change", ["rename", "delete"])
def test_a_tag_changed_in_the_web_ui_is_seen_by_the_next_sync(
    linkding: Account, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    linkding.add("https://u.example/1", ["web", "keep"])
    linkding.add("https://u.example/2", ["web"])
    configure(linkding, "rules: []\n")
    rb(capsys, "sync")
    before = {b["id"]: b["date_modified"] for b in linkding.bookmarks().values()}
    if change == "rename":
        linkding.rename_tag_in_ui("web", "www")
    else:
        linkding.delete_tag_in_ui("web")
    # the web UI leaves date_modified alone: modified_since cannot see it
    assert {b["id"]: b["date_modified"] for b in linkding.bookmarks().values()} == before
    code, out, err = rb(capsys, "-v", "sync")
    assert code == 0, err
    assert out.startswith("full sync:"), out
    assert "web UI" in err
    assert mirror() == held(linkding)


def test_full_scan_every_bounds_how_long_incremental_syncs_run(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    linkding.add("https://f.example/1")
    configure(linkding, "rules: []\n", full_scan_every="2d")
    rb(capsys, "sync")
    code, out, _ = rb(capsys, "sync")
    assert out.startswith("incremental sync:"), out
    with Store.open(STORE) as store:
        store.set_meta(FULL_SCAN_KEY, str(int(time.time()) - 3 * DAY))
    code, out, err = rb(capsys, "sync")
    assert code == 0 and out.startswith("full sync:"), out + err


def test_a_refused_token_names_its_variable_and_never_shows_it(
    linkding: Account, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "feedfacefeedfacefeedfacefeedfacefeedface"
    monkeypatch.setenv("LINKDING_TOKEN", wrong)
    configure(linkding, "rules: []\n")
    code, out, err = rb(capsys, "-v", "-v", "sync")
    assert code == 1
    assert "LINKDING_TOKEN" in err and "401" in err
    assert wrong not in out + err
    monkeypatch.delenv("LINKDING_TOKEN")
    code, out, err = rb(capsys, "sync")
    assert code == 1 and "LINKDING_TOKEN" in err


def test_the_token_is_in_no_output_file_or_log(
    linkding: Account, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    linkding.add("https://t.example/1", ["x"])
    configure(
        linkding, "rules:\n  - name: tag\n    where: {tag: x}\n    actions: [{tags_add: [done]}]\n"
    )
    said = []
    for command in (("sync", "--full"), ("plan", "--out", "plan.json"), ("apply", "plan.json")):
        code, out, err = rb(capsys, "-v", "-v", *command)
        assert code == 0, err
        said.append(out + err)
    code, out, err = rb(capsys, "-v", "-v", "undo", "--format", "json")
    assert code == 0, err
    said.append(out + err)
    assert linkding.token not in "".join(said)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert linkding.token.encode() not in path.read_bytes(), path


def test_the_unread_and_shared_flags_are_read_set_and_undone(
    linkding: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    done = linkding.add("https://f.example/done", ["x"], unread=True, is_archived=True)
    rec = linkding.add("https://f.example/rec", ["rec"], unread=True)
    old = linkding.add("https://f.example/old", ["old"], shared=True)
    later = linkding.add("https://f.example/later", ["later-flag"])
    configure(
        linkding,
        "rules:\n"
        "  - name: read-means-archived\n    where: {status: archived, marked_unread: true}\n"
        "    actions: [mark_read]\n"
        "  - name: share-recommended\n    where: {tag: rec, shared: false}\n"
        "    actions: [share, {tags_add: [shared-out]}]\n"
        "  - name: unshare-old\n    where: {tag: old, shared: true}\n    actions: [unshare]\n"
        "  - name: flag-later\n    where: {tag: later-flag, marked_unread: false}\n"
        "    actions: [mark_unread]\n",
    )
    before = linkding.bookmarks()
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["failed"] == 0, out
    after = linkding.bookmarks()

    def flags(held: dict[str, dict[str, Any]], bookmark_id: int) -> tuple[object, ...]:
        b = held[str(bookmark_id)]
        return b["unread"], b["shared"], b["is_archived"], tuple(b["tag_names"])

    assert flags(after, done) == (False, False, True, ("x",))
    assert flags(after, rec) == (True, True, False, ("rec", "shared-out"))
    assert flags(after, old) == (False, False, False, ("old",))
    assert flags(after, later) == (True, False, False, ("later-flag",))
    code, out, err = rb(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err  # the mirror holds the flags as the server does
    code, out, err = rb(capsys, "undo", "--format", "json")
    assert code == 0, err + out
    undone = linkding.bookmarks()
    for bookmark_id in (done, rec, old, later):
        assert flags(undone, bookmark_id) == flags(before, bookmark_id)
