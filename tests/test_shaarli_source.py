"""The Shaarli source end to end against Debian's REAL Shaarli server
(``tests/shaarli_server.py``: ``php -S`` on 127.0.0.1, a temporary data
directory, the API enabled with a known secret): the real CLI, a real store
file, every action's effect checked on the server's own answers.

Marked ``shaarli``; without the packages these tests skip saying why, and with
``RULEBOT_REAL_SERVERS=1`` (CI) a missing server fails them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import SHAARLI
from tests.shaarli_server import SECRET, ShaarliServer, require_server

from .helpers import clear_rulebot_env, rb

pytestmark = pytest.mark.shaarli

DAY = 86400

RULES = """\
limits: {max_actions: 500, max_deletes: 25}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: stale
    where: {tag: read-later, added: {older_than: 30d}}
    actions: [{tags_add: [stale]}]
  - name: tidy
    where: {tag: to-sort}
    actions: [{tags_remove: [TO-SORT]}]
  - name: replace
    where: {tag: replace-me}
    actions: [{tags_replace: [alpha, beta]}]
  - name: hide-private
    where: {private: true, untagged: true}
    actions: [{tags_add: [private-stuff]}]
  - name: rename-js
    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]
  - name: drop-tmp
    actions: [{tag_delete: tmp}]
  - name: add-docs
    actions: [{add: {url: "https://docs.example/new", title: New docs, tags: [docs]}}]
"""


@pytest.fixture
def shaarli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShaarliServer]:
    require_server()
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("SHAARLI_API_SECRET", SECRET)
    with ShaarliServer() as server:
        yield server


def configure(server: ShaarliServer, rules: str = RULES, **settings: object) -> Path:
    extra = "".join(f", {k}: {v}" for k, v in settings.items())
    path = Path("rules.yaml")
    path.write_text(f"version: 1\nshaarli: {{base_url: '{server.base_url}'{extra}}}\n{rules}")
    return path


def ago(days: float) -> str:
    return datetime.fromtimestamp(time.time() - days * DAY, UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def library(server: ShaarliServer) -> None:
    server.add("https://a.example/junk", ["junk"], title="Junk")
    server.add("https://a.example/stale", ["Read-Later"], title="Stale", created=ago(60))
    server.add("https://a.example/fresh", ["read-later"], title="Fresh", created=ago(1))
    server.add("https://a.example/sorted", ["To-Sort", "keep"], title="Sorted")
    server.add(
        "https://a.example/replace",
        ["replace-me", "Alpha"],
        title="Replace",
        description="kept verbatim #hash",
    )
    server.add("https://a.example/secret", [], title="Secret", private=True)
    server.add("https://a.example/public", [], title="Public", private=False)
    server.add("https://a.example/js", ["js", "web"], title="JS")
    server.add("https://a.example/tmp", ["tmp", "keep"], title="Tmp")


def server_requests(server: ShaarliServer) -> list[tuple[str, str]]:
    """The API requests php -S logged ("[200]: GET /api/v1/links?…")."""
    return re.findall(r"\[(\d{3})\]: (\w+ /api/v1/\S*)", server.log())


def test_the_whole_flow_on_the_real_server_and_a_second_run_is_idle(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    library(shaarli)
    configure(shaarli)
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["summary"]["failed"] == 0, result
    links = shaarli.links()
    assert "https://a.example/junk" not in links  # delete
    # tags compare case-insensitively; the server's spelling is kept
    assert links["https://a.example/stale"]["tags"] == ["Read-Later", "stale"]  # tags_add
    assert links["https://a.example/fresh"]["tags"] == ["read-later"]
    assert links["https://a.example/sorted"]["tags"] == ["keep"]  # tags_remove
    replaced = links["https://a.example/replace"]
    assert replaced["tags"] == ["Alpha", "beta"]  # tags_replace
    # PUT replaced the whole link: every other field went back unchanged
    assert (replaced["title"], replaced["description"]) == ("Replace", "kept verbatim #hash")
    assert replaced["private"] is False
    assert links["https://a.example/secret"]["tags"] == ["private-stuff"]  # private: true
    assert links["https://a.example/secret"]["private"] is True
    assert links["https://a.example/public"]["tags"] == []
    assert links["https://a.example/js"]["tags"] == ["javascript", "web"]  # tag_rename
    assert links["https://a.example/tmp"]["tags"] == ["keep"]  # tag_delete
    assert links["https://docs.example/new"]["tags"] == ["docs"]  # add
    assert links["https://docs.example/new"]["title"] == "New docs"
    sent = [request for _, request in server_requests(shaarli)]
    assert "PUT /api/v1/tags/js" in sent and "DELETE /api/v1/tags/tmp" in sent  # native
    # the mirror agrees with the server
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        mirrored = {item.given_url: item for item in store.items()}
    assert set(mirrored) == set(links)
    assert mirrored["https://a.example/replace"].tags == ("Alpha", "beta")
    # a second run plans nothing: one list request (10 links < 100) and nothing else
    before = len(server_requests(shaarli))
    code, out, err = rb(capsys, "run", "--detailed-exitcode")
    assert code == 0, err
    assert "Applied: 0 succeeded (1 request)" in out
    assert [r for _, r in server_requests(shaarli)[before:]] == [
        "GET /api/v1/links?offset=0&limit=100&visibility=all"
    ]


def test_sync_pages_by_offset_and_mirrors_every_field(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(7):
        shaarli.add(f"https://p.example/{n}", [f"t{n}"], title=f"P {n}", private=n % 2 == 1)
    note = shaarli.api("POST", "/links", {"title": "A note", "tags": ["note"]}).json()
    configure(shaarli, "rules: [{name: x, where: {tag: nope}, actions: [delete]}]\n", page_size=3)
    code, _, err = rb(capsys, "sync")
    assert code == 0, err
    listed = [r for _, r in server_requests(shaarli) if r.startswith("GET /api/v1/links")]
    assert len(listed) == 3  # 8 links in pages of 3: 3 + 3 + 2
    assert listed[-1].startswith("GET /api/v1/links?offset=6&limit=3")
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        items = {item.item_id: item for item in store.items()}
        assert store.get_meta("source") == f"shaarli {shaarli.base_url}"
    assert len(items) == 8 and "0" in items  # Shaarli's ids start at 0
    first = items["0"]
    assert (first.given_url, first.given_title, first.tags) == (
        "https://p.example/0",
        "P 0",
        ("t0",),
    )
    assert first.extra["private"] is False and items["1"].extra["private"] is True
    assert first.favorite is None  # Shaarli has no favourite: unknown, never false
    assert first.time_added is not None and abs(first.time_added - time.time()) < 120
    assert items[str(note["id"])].tags == ("note",)


def test_plan_shows_per_link_actions_where_the_tag_routes_would_not_do_it_exactly(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    a = shaarli.add("https://c.example/a", ["js-old"], title="A")
    b = shaarli.add("https://c.example/b", ["js-old", "JavaScript"], title="B")
    shaarli.add("https://c.example/c", ["Dev"], title="C")
    note = shaarli.api("POST", "/links", {"title": "Note", "tags": ["dev"]}).json()
    configure(
        shaarli,
        "rules:\n  - name: rename\n    actions:\n"
        "      - tag_rename: {old_tag: js-old, new_tag: javascript}\n"
        "  - name: drop\n    actions: [{tag_delete: dev}]\n",
    )
    code, out, err = rb(capsys, "plan")
    assert code == 0, err
    # js-old is outside the route's [A-Za-z0-9_]+; dev has two spellings
    assert "tag_rename" not in out and "tag_delete" not in out
    assert 'tags_remove js-old "A"' in out and 'tags_add javascript "A"' in out
    assert 'tags_remove js-old "B"' in out and 'tags_add javascript "B"' not in out
    code, _, err = rb(capsys, "run")
    assert code == 0, err
    by_id = {link["id"]: link for link in shaarli.links().values()}
    assert by_id[a]["tags"] == ["javascript"] and by_id[b]["tags"] == ["JavaScript"]
    assert all(link["tags"] == [] for i, link in by_id.items() if i not in (a, b))
    # the note stayed a note (its url went back empty, not as the absolute one)
    assert by_id[note["id"]]["url"] == note["url"] and by_id[note["id"]]["title"] == "Note"


def test_a_due_run_with_no_rule_due_sends_no_request_and_a_due_one_still_syncs(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(25):
        shaarli.add(f"https://g.example/{n}", ["x"], title=f"G {n}")
    configure(
        shaarli,
        "timezone: UTC\nrules:\n  - name: morning\n    schedule: '0 6 * * *'\n"
        "    where: {tag: nope}\n    actions: [{tags_add: [seen]}]\n",
        page_size=10,
    )
    listing = "GET /api/v1/links?offset="
    # never ran: due; 25 links in pages of 10
    assert rb(capsys, "run", "--due", "--now", "2026-11-26T06:00:00Z")[0] == 0
    assert sum(r.startswith(listing) for _, r in server_requests(shaarli)) == 3
    shaarli.add("https://g.example/new", [], title="New")
    before = len(server_requests(shaarli))
    for command in ("run", "plan"):
        code, _, err = rb(capsys, command, "--due", "--now", "2026-11-26T09:00:00Z")
        assert code == 0, err
        assert len(server_requests(shaarli)) == before  # not one request
        assert "no rule is due (next: morning at 2026-11-27 06:00 UTC)" in err
    # the next morning it is due, and the sync finds the new link
    assert rb(capsys, "run", "--due", "--now", "2026-11-27T06:00:00Z")[0] == 0
    assert [r for _, r in server_requests(shaarli)[before:]] == [
        f"{listing}{offset}&limit=10&visibility=all" for offset in (0, 10, 20)
    ]
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert "https://g.example/new" in {item.given_url for item in store.items()}


def test_a_wrong_secret_is_a_credentials_error_naming_the_variable_never_retried(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    library(shaarli)
    configure(shaarli)
    monkeypatch.setenv("SHAARLI_API_SECRET", "wrong-SECRET-0f9e8d")
    code, out, err = rb(capsys, "run")
    assert code == 1 and "SHAARLI_API_SECRET" in err and "401" in err
    assert "Traceback" not in err and "wrong-SECRET-0f9e8d" not in out + err
    refused = [r for status, r in server_requests(shaarli) if status == "401"]
    assert refused[1:] == ["GET /api/v1/links?offset=0&limit=100&visibility=all"]  # once
    assert refused[0] == "GET /api/v1/info"  # the fixture's readiness probe
    monkeypatch.delenv("SHAARLI_API_SECRET")
    code, _, err = rb(capsys, "plan")
    assert code == 1 and "SHAARLI_API_SECRET" in err
    assert len(server_requests(shaarli)) == len(refused) + 9  # 9 links added; nothing sent


def test_a_reused_id_is_never_acted_on_and_a_vanished_link_is_moot(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    shaarli.add("https://e.example/keep", ["keep"], title="Keep")
    gone = shaarli.add("https://e.example/gone", ["junk"], title="Gone")
    configure(shaarli, "rules: [{name: purge, where: {tag: junk}, actions: [delete]}]\n")
    assert rb(capsys, "plan", "--out", "plan.json")[0] == 0
    # behind rulebot's back: the link goes, and a new one takes its (highest) id
    assert shaarli.api("DELETE", f"/links/{gone}").status_code == 204
    assert shaarli.add("https://e.example/newer", ["precious"], title="Newer") == gone
    code, out, err = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["failed"] == 0
    assert set(shaarli.links()) == {"https://e.example/keep", "https://e.example/newer"}


def test_archive_favourite_and_status_rules_are_refused_at_validate_naming_shaarli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    Path("rules.yaml").write_text(
        "version: 1\nshaarli: {base_url: 'http://127.0.0.1:9'}\nrules:\n"
        "  - name: arch\n    where: {tag: x}\n    actions: [archive]\n"
        "  - name: fav\n    where: {favorite: true}\n    actions: [{tags_add: [f]}]\n"
        "  - name: unread\n    where: {status: unread, read: {older_than: 3d}}\n"
        "    actions: [delete]\n"
    )
    code, out, err = rb(capsys, "validate")
    assert code == 1
    text = out + err
    assert "Shaarli cannot do `archive`" in text
    assert "Shaarli has no `favorite`" in text and "Shaarli has no `status`" in text
    assert "Shaarli has no `read`" in text
    assert "Traceback" not in text


def test_private_is_known_on_shaarli_and_warned_about_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    rule = "rules: [{name: p, where: {private: true}, actions: [{tags_add: [p]}]}]\n"
    Path("rules.yaml").write_text(f"version: 1\nshaarli: {{base_url: 'http://h'}}\n{rule}")
    code, out, err = rb(capsys, "validate")
    assert code == 0 and "private" not in err, out + err
    Path("rules.yaml").write_text(f"version: 1\n{rule}")
    code, out, err = rb(capsys, "validate")
    assert code == 0 and "`private` is never known in the local library" in out + err


def test_the_secret_never_shows_in_outputs_files_or_the_servers_log(
    shaarli: ShaarliServer, tmp_path: Path
) -> None:
    library(shaarli)
    configure(shaarli)
    env = {"SHAARLI_API_SECRET": SECRET, "PATH": "/usr/bin:/bin"}
    texts = []
    for args in (["plan", "--out", "plan.json"], ["run", "-v", "-v"], ["runs"]):
        done = subprocess.run(
            [sys.executable, "-m", "rulebot", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        texts += [done.stdout, done.stderr]
    texts += [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*.db*")]
    texts.append(shaarli.log())
    assert not [t for t in texts if SECRET in t]


def sends(plan: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [
        (a["send"]["action"], a["send"].get("item_id"), a["send"].get("tags"))
        for a in plan["actions"]
    ]


def replayed(tags: dict[int, list[str]], plan: dict[str, Any]) -> dict[int, list[str]]:
    """Each link's tags after the plan's per-link actions, as rulebot's own
    vocabulary says they act (tags compare as Shaarli does: ASCII letters only)."""
    items = {i: Item(item_id=str(i), given_url=f"u{i}", tags=tuple(t)) for i, t in tags.items()}
    for action in plan["actions"]:
        link_id = int(action["send"]["item_id"])
        effect = from_send(action["send"], SHAARLI.fold).on_item(items[link_id], 0)
        items[link_id] = effect.changed[0] if effect is not None else items[link_id]
    return {i: list(item.tags or ()) for i, item in items.items()}


def test_a_case_only_rename_of_a_link_with_both_spellings_ends_as_the_plan_shows(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    both = shaarli.add("https://d.example/both", ["Dev", "dev", "python"], title="Both")
    old = shaarli.add("https://d.example/old", ["Dev", "web"], title="Old")
    new = shaarli.add("https://d.example/new", ["dev"], title="New")
    before = {link["id"]: link["tags"] for link in shaarli.links().values()}
    configure(
        shaarli,
        "rules:\n  - name: one-dev\n    actions:\n"
        "      - tag_rename: {old_tag: Dev, new_tag: dev}\n",
    )
    code, out, err = rb(capsys, "plan", "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    # PUT /tags/Dev would answer 404 (the tag list shows the group as `dev`), and
    # PUT /tags/dev would not touch `Dev`: per link. Removing `Dev` removes every
    # spelling (tags compare case-insensitively), so `dev` is added back
    assert sends(plan) == [
        ("tags_remove", str(both), "Dev,dev"),
        ("tags_add", str(both), "dev"),
        ("tags_remove", str(old), "Dev"),
        ("tags_add", str(old), "dev"),
    ]
    code, _, err = rb(capsys, "run")
    assert code == 0, err
    after = {link["id"]: link["tags"] for link in shaarli.links().values()}
    assert after == {both: ["python", "dev"], old: ["web", "dev"], new: ["dev"]}
    assert after == replayed(before, plan)  # what the plan showed is what the server holds
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert {int(i.item_id): list(i.tags or ()) for i in store.items()} == after


def test_tags_compare_as_shaarli_does_ascii_letters_only(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Shaarli's tag list merges spellings with PHP's strtolower, ASCII
    letters only: `ÉTÉ` and `été`, or the Kelvin sign and `k`, are two tags
    there. rulebot's plan and its per-link edits compare them so too."""
    upper = shaarli.add("https://u.example/upper", ["ÉTÉ", "Dev"], title="Upper")
    lower = shaarli.add("https://u.example/lower", ["été", "dev"], title="Lower")
    kelvin = shaarli.add("https://u.example/kelvin", ["\u212a"], title="Kelvin")
    k = shaarli.add("https://u.example/k", ["k"], title="K")
    before = {link["id"]: link["tags"] for link in shaarli.links().values()}
    configure(
        shaarli,
        "rules:\n  - name: seen\n    where: {tag: k}\n    actions: [{tags_add: [seen]}]\n"
        "  - name: devs\n    where: {tag: DEV}\n    actions: [{tags_add: [ok]}]\n"
        "  - name: drop\n    actions: [{tag_delete: été}]\n",
    )
    code, out, err = rb(capsys, "plan", "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    assert sends(plan) == [
        ("tags_add", str(k), "seen"),  # not the Kelvin sign
        ("tags_add", str(upper), "ok"),  # ASCII letters still compare case-insensitively
        ("tags_add", str(lower), "ok"),
        ("tags_remove", str(lower), "été"),  # not `ÉTÉ`
    ]
    code, _, err = rb(capsys, "run")
    assert code == 0, err
    after = {link["id"]: link["tags"] for link in shaarli.links().values()}
    assert after == {
        upper: ["ÉTÉ", "Dev", "ok"],
        lower: ["dev", "ok"],
        kelvin: ["\u212a"],
        k: ["k", "seen"],
    }
    assert after == replayed(before, plan)  # what the plan showed is what the server holds
    code, out, _ = rb(capsys, "plan", "--format", "json")
    assert json.loads(out)["actions"] == []


def test_apply_of_a_saved_plan_sends_per_link_actions_on_links_its_native_rename_touched(
    shaarli: ShaarliServer, capsys: pytest.CaptureFixture[str]
) -> None:
    a = shaarli.add("https://f.example/a", ["js", "Dev"], title="A", created=ago(5))
    b = shaarli.add("https://f.example/b", ["dev", "python"], title="B", created=ago(5))
    c = shaarli.add("https://f.example/c", ["js", "Dev"], title="C", created=ago(5))
    configure(
        shaarli,
        "rules:\n  - name: rename-js\n    actions:\n"
        "      - tag_rename: {old_tag: js, new_tag: javascript}\n"
        "  - name: one-dev\n    actions:\n"
        "      - tag_rename: {old_tag: Dev, new_tag: dev}\n",
    )
    code, out, err = rb(capsys, "plan", "--out", "plan.json", "--format", "json")
    assert code == 0, err
    assert sends(json.loads(out)) == [
        ("tag_rename", None, None),  # native: PUT /tags/js
        ("tags_remove", str(a), "Dev"),  # per link: `Dev` and `dev` are both in use
        ("tags_add", str(a), "dev"),
        ("tags_remove", str(c), "Dev"),
        ("tags_add", str(c), "dev"),
    ]
    # someone edits C between the review and the merge: that is a change from outside
    link = shaarli.api("GET", f"/links/{c}").json()  # never edited: `updated` was empty
    assert shaarli.api("PUT", f"/links/{c}", {**link, "title": "C, edited"}).status_code == 200
    code, out, err = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    outcomes = sorted(
        (o["index"], o["send"]["action"], o["state"], o.get("error"))
        for state in ("succeeded", "failed", "skipped")
        for o in result[state]
    )
    changed = "the item changed since the plan was made"
    # the plan's own rename of `js` on A is not a change from outside: A's actions run
    assert outcomes == [
        (0, "tag_rename", "succeeded", None),
        (1, "tags_remove", "succeeded", None),
        (2, "tags_add", "succeeded", None),
        (3, "tags_remove", "skipped", changed),
        (4, "tags_add", "skipped", changed),
    ]
    by_id = {link["id"]: link for link in shaarli.links().values()}
    assert by_id[a]["tags"] == ["javascript", "dev"]
    assert by_id[b]["tags"] == ["dev", "python"]
    assert by_id[c]["tags"] == ["javascript", "Dev"]  # the native rename, then skipped
