"""The Raindrop.io source end to end: the real CLI against the fake
Raindrop.io on 127.0.0.1 and a real store file; what the config makes
possible (archive only with an archive collection), what goes in bulk and
what the plan says of it, Trash as deletion, creates never doubled, tags
compared as the service groups them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rulebot.fake.raindrop import TRASH, UNSORTED, FakeRaindrop
from rulebot.library.store import Store
from rulebot.sources.raindrop.source import FULL_SCAN_KEY

from .helpers import clear_rulebot_env, rb

T = 1_795_672_800  # 2026-11-26T06:00:00Z
NOW = "2026-11-26T06:00:00Z"
DAY = 86400
TOKEN = "rd-SECRET-0b1c2d3e4f5a6b7c8d9e"


@pytest.fixture
def raindrop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRaindrop]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("RAINDROP_TOKEN", TOKEN)
    with FakeRaindrop(now=T, token=TOKEN) as fake:
        yield fake


def configure(fake: FakeRaindrop, rules: str, **settings: object) -> Path:
    extra = "".join(f", {k}: {v}" for k, v in settings.items())
    path = Path("rules.yaml")
    block = f"raindrop: {{base_url: '{fake.base_url}'{extra}}}\n"
    path.write_text(f"version: 1\n{block}limits: {{max_actions: 500, max_deletes: 50}}\n{rules}")
    return path


def test_without_an_archive_collection_status_and_archive_are_refused(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(
        raindrop,
        "rules:\n  - name: a\n    where: {status: unread}\n    actions: [archive]\n"
        "  - name: f\n    where: {tag: x}\n    actions: [favorite]\n",
    )
    code, out, err = rb(capsys, "validate")
    assert code != 0
    said = out + err
    assert "archive_collection" in said and "`archive`" in said and "`status`" in said
    assert "rule f" not in said  # favourite is `important`: always there


def test_archive_by_collection_title_and_favorite_in_bulk(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = raindrop.add_collection("Archive")
    reading = raindrop.add_collection("Reading")
    ids = [
        raindrop.add_raindrop(
            f"https://a.example/{n}", tags=["read-later"], collection=reading, created=T - 60 * DAY
        )
        for n in range(3)
    ]
    lone = raindrop.add_raindrop("https://b.example/x", tags=["Rust"], created=T - DAY)
    configure(
        raindrop,
        "rules:\n  - name: archive-stale\n    where: {tag: read-later, status: unread, "
        "added: {older_than: 30d}}\n    actions: [archive, favorite, {tags_add: [auto]}]\n"
        "  - name: untag\n    where: {tag: rust}\n    actions: [{tags_remove: [RUST]}]\n",
        archive_collection="Archive",
    )
    code, out, err = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    bulk = [a for a in plan["actions"] if any("in bulk" in r for r in a["reasons"])]
    assert {a["send"]["item_id"] for a in bulk} == {str(i) for i in ids}
    code, out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    held = raindrop.raindrops
    for raindrop_id in ids:
        assert held[raindrop_id]["collectionId"] == archive
        assert held[raindrop_id]["important"] is True
        assert held[raindrop_id]["tags"] == ["read-later", "auto"]
    assert held[lone]["tags"] == []  # `RUST` removes `Rust`: compared as the service groups tags
    assert raindrop.calls("PUT /raindrops/{cid}") == 1  # three bookmarks, one request
    assert raindrop.calls("PUT /raindrop/{id}") == 1  # the removal: per item
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 0, out


def test_delete_moves_to_trash_and_never_deletes_for_good(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = [raindrop.add_raindrop(f"https://j.example/{n}", tags=["junk"]) for n in range(2)]
    configure(raindrop, "rules:\n  - name: purge\n    where: {tag: junk}\n    actions: [delete]\n")
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert set(raindrop.trash) == set(junk)  # in Trash, not gone
    assert all(raindrop.trash[i]["removed"] for i in junk)
    # what another client trashed meanwhile is never deleted again (that would be for good)
    other = raindrop.add_raindrop("https://j.example/other", tags=["junk"])
    rb(capsys, "sync")
    raindrop.touch(other, collection=TRASH, removed=True)
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert other in raindrop.trash


def test_delete_permanently_when_the_config_asks(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = raindrop.add_raindrop("https://j.example/1", tags=["junk"])
    configure(
        raindrop,
        "rules:\n  - name: purge\n    where: {tag: junk}\n    actions: [delete]\n",
        delete_permanently="true",
    )
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert junk not in raindrop.trash and junk not in raindrop.raindrops


def test_add_checks_the_mirror_and_a_lost_answer_is_looked_up(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    raindrop.add_raindrop("https://docs.example/old")
    configure(
        raindrop,
        "rules:\n  - name: add\n    actions:\n"
        '      - {add: {url: "https://docs.example/old"}}\n'
        '      - {add: {url: "https://docs.example/new", tags: [Docs]}}\n',
    )
    raindrop.inject("drop_after", route="POST /raindrop")  # created, the answer lost
    code, _out, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    links = [r["link"] for r in raindrop.raindrops.values()]
    assert sorted(links) == ["https://docs.example/new", "https://docs.example/old"]
    assert raindrop.calls("POST /raindrop") == 1  # never sent again: it had landed
    assert raindrop.calls("POST /import/url/exists") == 1


def test_a_rename_merges_every_spelling_in_one_request(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    a = raindrop.add_raindrop("https://t.example/a", tags=["JS", "web"])
    b = raindrop.add_raindrop("https://t.example/b", tags=["js"])
    c = raindrop.add_raindrop("https://t.example/c", tags=["javascript", "js"])
    configure(
        raindrop,
        "rules:\n  - name: rename\n    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]\n",
    )
    code, out, err = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert code == 0, err
    [rename] = json.loads(out)["actions"]
    assert any("PUT /tags merges 'JS', 'js'" in reason for reason in rename["reasons"])
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    held = raindrop.raindrops
    assert held[a]["tags"] == ["javascript", "web"]
    assert held[b]["tags"] == held[c]["tags"] == ["javascript"]
    assert raindrop.calls("PUT /tags") == 1


def test_a_rename_that_would_leave_a_case_variant_goes_per_item(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    both = raindrop.add_raindrop("https://t.example/a", tags=["JavaScript", "js"])
    configure(
        raindrop,
        "rules:\n  - name: rename\n    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]\n",
    )
    code, out, err = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert code == 0, err
    names = [a["send"]["action"] for a in json.loads(out)["actions"]]
    assert "tag_rename" not in names and "tags_remove" in names
    code, _, err = rb(capsys, "run", "--now", NOW)
    assert code == 0, err
    assert raindrop.raindrops[both]["tags"] == ["JavaScript"]


def test_an_incremental_sync_reads_only_what_changed(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(120):
        raindrop.add_raindrop(f"https://s.example/{n}", created=T - n * DAY, last_update=T - DAY)
    configure(raindrop, "rules:\n  - name: noop\n    where: {tag: none}\n    actions: [delete]\n")
    code, _, err = rb(capsys, "sync")
    assert code == 0, err
    listed = raindrop.calls("GET /raindrops/{cid}")
    assert listed == 3  # 120 bookmarks, 50 a page
    raindrop.now = T + 3600
    moved = raindrop.add_raindrop("https://s.example/new")
    gone = next(iter(raindrop.raindrops))
    raindrop.touch(gone, collection=TRASH, removed=True)
    code, _out, err = rb(capsys, "sync")
    assert code == 0, err
    assert raindrop.calls("GET /raindrops/{cid}") - listed == 2  # one page of 0, one of Trash
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        ids = {item.item_id for item in store.items()}
        assert str(moved) in ids and str(gone) not in ids and len(ids) == 120
        assert store.get_meta(FULL_SCAN_KEY) is not None


def test_a_tag_renamed_elsewhere_without_a_new_lastupdate_makes_a_full_scan(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    raindrop.bump_on_tag_edits = False  # the other reading of an unconfirmed fact
    one = raindrop.add_raindrop("https://r.example/1", tags=["web"], collection=UNSORTED)
    configure(raindrop, "rules:\n  - name: noop\n    where: {tag: none}\n    actions: [delete]\n")
    assert rb(capsys, "sync")[0] == 0
    raindrop.now = T + 3600
    import httpx

    httpx.put(
        f"{raindrop.base_url}/rest/v1/tags",
        json={"tags": ["web"], "replace": "www"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).raise_for_status()
    assert rb(capsys, "sync")[0] == 0
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        item = store.get(str(one))
        assert item is not None and item.tags == ("www",)


def test_a_bad_token_names_the_variable_and_where_to_get_one(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAINDROP_TOKEN", "wrong")
    configure(raindrop, "rules:\n  - name: noop\n    where: {tag: none}\n    actions: [delete]\n")
    code, _out, err = rb(capsys, "sync")
    assert code != 0
    assert "RAINDROP_TOKEN" in err and "Test token" in err and "wrong" not in err


def test_the_plan_says_what_it_costs_at_the_rate_limit(
    raindrop: FakeRaindrop, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        raindrop.add_raindrop(f"https://p.example/{n}", tags=["later"])
    configure(
        raindrop,
        "rules:\n  - name: untag\n    where: {tag: later}\n    actions: [{tags_remove: [later]}]\n",
        time_budget="10m",
    )
    code, out, err = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert code == 0, err
    pacing = json.loads(out)["pacing"]
    assert pacing is not None and "default" in json.dumps(pacing)
    assert "6" in json.dumps(pacing)  # three bookmarks, a GET and a PUT each


def test_the_token_never_leaves_the_environment(raindrop: FakeRaindrop, tmp_path: Path) -> None:
    from rulebot.fake.raindrop import seed
    from tests.helpers import assert_secret_stays_home

    seed(raindrop, 20)
    configure(
        raindrop, "rules:\n  - name: tidy\n    where: {}\n    actions: [{tags_add: [seen]}]\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RAINDROP_TOKEN": TOKEN}
    assert_secret_stays_home(TOKEN, env, raindrop)
