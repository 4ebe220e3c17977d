"""The fake Linkding held to the real one: the same scenario of raw API
requests (the checklist of ``specs/linkding.md`` §13) against the real
server (tests/linkding_server.py) and against ``FakeLinkding``, the answers
compared after what must differ is taken out (ids, times, the host); then the
same rules run by rulebot on both, their plans and end states compared.

And what only the fake can do: faults on demand, a library of thousands in
a moment, garbled bookmarks, the web UI's edits on a frozen clock.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from rulebot.fake.linkding import DEFAULT_TOKEN, FakeLinkding, seed
from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.sources.linkding.api import LinkdingClient
from tests.linkding_server import Account

from .helpers import clear_rulebot_env, rb

T = 1_795_672_800  # 2026-11-26T06:00:00Z
DAY = 86400


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLinkding]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("LINKDING_TOKEN", DEFAULT_TOKEN)
    with FakeLinkding(now=T) as server:
        yield server


# -- one scenario, two servers --------------------------------------------------------------

Call = Callable[..., httpx.Response]


def scenario(base_url: str, token: str) -> list[Any]:
    """Requests covering the checklist; what each answered, in neutral terms."""
    seen: list[Any] = []
    # a server's ids, as the order they were first seen in (a tag's id negated)
    ids: dict[int, str] = {}

    def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: str | None = f"Token {token}",
        raw: bytes | None = None,
        kind: str = "application/json",
        language: str = "en",
        **params: str,
    ) -> httpx.Response:
        headers = {"Accept-Language": language}
        if auth is not None:
            headers["Authorization"] = auth
        if raw is not None or body is not None:
            headers["Content-Type"] = kind
        content = (
            raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        )
        answer = httpx.request(
            method, f"{base_url}{path}", content=content, params=params or None, headers=headers
        )
        shown = sorted((k, _neutral(v, ids, k)) for k, v in params.items())
        seen.append((method, _path_of(path, ids), shown, _answer(answer, ids)))
        return answer

    # authentication
    call("GET", "/api/bookmarks/", auth=None)
    call("GET", "/api/bookmarks/", auth="Token 0123456789abcdef0123456789abcdef01234567")
    call(
        "GET",
        "/api/bookmarks/",
        auth="Token 0123456789abcdef0123456789abcdef01234567",
        language="de",
    )
    call("GET", "/api/bookmarks/", auth="Token")
    call("GET", "/api/bookmarks/", auth=f"Token {token} x")
    call("GET", "/api/bookmarks/", auth=f"Basic {token}")
    call("GET", "/api/bookmarks/", auth=f"Bearer {token}")
    call("GET", "/api/bookmarks/", auth=f"token {token}")
    # paths
    call("GET", "/api/bookmarks")
    call("POST", "/api/bookmarks", {"url": "https://x.example/"})
    call("GET", "/api/nowhere/")
    call("PUT", "/api/tags/1/", {"name": "x"})
    call("GET", "/api/")
    # creates, tags sanitised and reused in their first spelling
    a = call(
        "POST",
        "/api/bookmarks/",
        {
            "url": " https://Example.com/a/?b=2&a=1 ",
            "title": "A title",
            "notes": "grandma python",
            "tag_names": [" Foo Bar ", "c,d", "Gamma", "gamma"],
            "unread": True,
            "date_added": "2000-01-01T00:00:00Z",
        },
    ).json()["id"]
    b = call(
        "POST", "/api/bookmarks/", {"url": "https://b.example/x", "tag_names": ["FOO-bar", "Zeta"]}
    ).json()["id"]
    call("POST", "/api/bookmarks/", {"url": "ftp://files.example/f", "shared": "yes"})
    # a create of a saved URL merges into it: 201, its fields overwritten, its URL kept
    call("POST", "/api/bookmarks/", {"url": "https://example.com/a?a=1&b=2", "title": "Again"})
    call("GET", f"/api/bookmarks/{a}/")
    # updates: partial, tag_names replaces, the archive both ways
    call("PATCH", f"/api/bookmarks/{b}/", {"tag_names": []})
    call("PATCH", f"/api/bookmarks/{b}/", {"is_archived": True, "unread": "1"})
    call("PUT", f"/api/bookmarks/{a}/", {"url": "https://example.com/a/?b=2&a=1"})
    call("PUT", f"/api/bookmarks/{a}/", {"title": "no url"})
    call("PATCH", f"/api/bookmarks/{a}/", {"url": "https://b.example/x"})
    call("POST", f"/api/bookmarks/{a}/archive/")
    call("POST", f"/api/bookmarks/{a}/archive/")
    call("POST", f"/api/bookmarks/{a}/unarchive/")
    call("GET", f"/api/bookmarks/{a}/archive/")
    # validation
    call("POST", "/api/bookmarks/", {"url": "not a url"})
    call("POST", "/api/bookmarks/", {"url": "javascript:alert(1)"})
    call("POST", "/api/bookmarks/", {"title": "no url"})
    call("PATCH", f"/api/bookmarks/{a}/", {"title": "x" * 513})
    call("PATCH", f"/api/bookmarks/{a}/", {"unread": "maybe"})
    call("PATCH", f"/api/bookmarks/{a}/", {"unread": None})
    call("PATCH", f"/api/bookmarks/{a}/", {"tag_names": "a,b"})
    call("PATCH", f"/api/bookmarks/{a}/", {"tag_names": ["ok", ""]})
    call("PATCH", f"/api/bookmarks/{a}/", raw=b'{"title": }')
    call("PATCH", f"/api/bookmarks/{a}/", raw=b"title=x", kind="text/plain")
    call("PATCH", f"/api/bookmarks/{a}/", raw=b"tag_names=p&tag_names=q", kind=_FORM)
    # lists and their paging
    for n in range(3):
        call("POST", "/api/bookmarks/", {"url": f"https://p.example/{n}", "title": f"P {n}"})
    call("GET", "/api/bookmarks/", limit="2")
    call("GET", "/api/bookmarks/", limit="2", offset="2", sort="added_asc")
    call("GET", "/api/bookmarks/", limit="0", sort="title_desc")
    call("GET", "/api/bookmarks/", limit="x", offset="-3", sort="nonsense")
    call("GET", "/api/bookmarks/", offset="50")
    call("GET", "/api/bookmarks/archived/")
    call("GET", "/api/bookmarks/", unread="yes")
    call("GET", "/api/bookmarks/", unread="true")
    call("GET", "/api/bookmarks/", shared="no")
    # modified_since: strict, microseconds; unparsable (a "+" read as a space): dropped
    stamp = call("GET", f"/api/bookmarks/{a}/").json()["date_modified"]
    call("GET", "/api/bookmarks/", modified_since=stamp, sort="added_asc")
    call("GET", "/api/bookmarks/", modified_since=stamp.replace("Z", " 00:00"))
    call("GET", "/api/bookmarks/", modified_since="garbage", limit="1")
    call("GET", "/api/bookmarks/", added_since="2000-01-01", limit="1")
    # search
    for query in (
        "python",
        '"P 1"',
        "#foo-bar",
        "#FOO-BAR or #zeta",
        "!untagged",
        "!unread",
        "p not 1",
        "(python",
        "AND",
        "!nonsense",
        "p.example/2",
        "foo#gamma",
    ):
        call("GET", "/api/bookmarks/", q=query, sort="added_asc")
    call("GET", "/api/bookmarks/archived/", q="#zeta")
    # tags
    call("GET", "/api/tags/")
    call("GET", "/api/tags/", limit="2", offset="1")
    call("POST", "/api/tags/", {"name": "two words"})
    call("POST", "/api/tags/", {"name": "ZETA"})
    call("POST", "/api/tags/", {"name": "x" * 65})
    call("POST", "/api/tags/", {"name": ""})
    # check, profile, the shared list
    call("GET", "/api/bookmarks/check/", url="https://EXAMPLE.com/a?a=1&b=2")
    call("GET", "/api/bookmarks/check/", url="https://nowhere.example/")
    call("GET", "/api/user/profile/")
    call("GET", "/api/bookmarks/shared/", auth=None)
    # deletes: hard, 204, then 404
    call("DELETE", f"/api/bookmarks/{b}/")
    call("DELETE", f"/api/bookmarks/{b}/")
    call("GET", f"/api/bookmarks/{b}/")
    call("PATCH", f"/api/bookmarks/{b}/", {"title": "gone"})
    call("GET", "/api/tags/")  # the deleted bookmark's tags stay
    return seen


_FORM = "application/x-www-form-urlencoded"
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z| 00:00)$")
_SNAPSHOT = re.compile(r"^https://web\.archive\.org/web/\d{14}/")


def _path_of(path: str, ids: dict[int, str]) -> str:
    return re.sub(r"/(\d+)/", lambda m: f"/{ids.get(int(m.group(1)), m.group(1))}/", path)


def _answer(answer: httpx.Response, ids: dict[int, str]) -> Any:
    kind = answer.headers.get("content-type", "").split(";")[0]
    headers = {
        name: answer.headers[name]
        for name in ("www-authenticate", "location")
        if name in answer.headers
    }
    if kind != "application/json":
        return answer.status_code, kind, headers, "" if kind == "text/html" else answer.text
    return answer.status_code, kind, headers, _neutral(answer.json(), ids, None)


def _neutral(value: Any, ids: dict[int, str], key: str | None) -> Any:
    """Ids as their order of appearance, times and hosts as markers."""
    if isinstance(value, dict):
        kind = "tag" if "name" in value and "url" not in value else "bookmark"
        return {k: _neutral(v, ids, f"{kind} id" if k == "id" else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutral(v, ids, None) for v in value]
    if key == "tag id" and isinstance(value, int):  # tags and bookmarks count apart
        return ids.setdefault(-value, f"tag #{sum(k < 0 for k in ids)}")
    if key == "bookmark id" and isinstance(value, int):
        return ids.setdefault(value, f"#{sum(k > 0 for k in ids)}")
    if isinstance(value, str) and _TIME.match(value):
        datetime.fromisoformat(value.replace(" 00:00", "Z"))  # a real time
        return "<time>"
    if isinstance(value, str) and key in ("next", "previous"):
        return re.sub(r"^http://[^/]+", "http://HOST", value)
    if isinstance(value, str) and key == "web_archive_snapshot_url":
        return _SNAPSHOT.sub("https://web.archive.org/web/<time>/", value)
    return value


@pytest.mark.linkding
def test_the_fake_answers_as_the_real_server_does(linkding: Account) -> None:
    real = scenario(linkding.base_url, linkding.token)
    with FakeLinkding(token=linkding.token) as server:
        faked = scenario(server.base_url, linkding.token)
    differ = [
        f"{r[0]} {r[1]} {r[2]}:\n  real: {r[3]}\n  fake: {f[3]}"
        for r, f in zip(real, faked, strict=True)
        if r != f
    ]
    assert not differ, f"{len(differ)} of {len(real)} answers differ:\n" + "\n".join(differ)


# -- the same rules on both ------------------------------------------------------------------

RULES = """\
limits: {max_actions: 500, max_deletes: 25}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: archive-stale
    where: {tag: read-later, status: unread, added: {older_than: 30d}}
    actions: [archive, {tags_add: [Auto Archived]}]
  - name: tidy
    where: {tag: to-sort}
    actions: [{tags_remove: [TO-SORT]}]
  - name: replace
    where: {tag: replace-me}
    actions: [{tags_replace: [alpha, Beta]}]
  - name: rename-js
    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]
  - name: rename-case
    actions: [{tag_rename: {old_tag: Dev, new_tag: dev}}]
  - name: drop-tmp
    actions: [{tag_delete: tmp}]
  - name: add-docs
    actions: [{add: {url: "https://docs.example/new", title: New docs, tags: [docs]}}]
  - name: add-saved
    actions: [{add: {url: "https://A.example/stale/", title: Overwrite, tags: [nope]}}]
"""
LIBRARY = [  # url, tags, archived, days old
    ("https://a.example/junk", ["junk"], False, 1),
    ("https://a.example/stale", ["Read-Later", "js"], False, 60),
    ("https://a.example/fresh", ["read-later"], False, 1),
    ("https://a.example/sorted", ["To-Sort", "keep"], True, 5),
    ("https://a.example/replace", ["replace-me", "Alpha"], False, 5),
    ("https://a.example/dev", ["Dev", "python", "tmp"], False, 5),
]


def outcome(
    base_url: str,
    token: str,
    capsys: pytest.CaptureFixture[str],
    seed_one: Callable[[str, list[str], bool, float], None],
) -> Any:
    """Seed ``LIBRARY``, run ``RULES`` twice (the second must plan nothing):
    the plan (id-free) and the library afterwards, by URL."""
    for url, tags, archived, days in LIBRARY:
        seed_one(url, tags, archived, days)
    Path("rules.yaml").write_text(f"version: 1\nlinkding: {{base_url: '{base_url}'}}\n{RULES}")
    code, out, err = rb(capsys, "plan", "--format", "json")
    assert code == 0, err
    plan = json.loads(out)
    urls = {}
    with Store.open(".rulebot/rulebot.db") as store:
        urls = {item.item_id: item.url for item in store.items()}
    shown = [
        (
            a["rule"],
            a["send"]["action"],
            urls.get(a["send"].get("item_id"), ""),
            a["send"].get("tags"),
        )
        for a in plan["actions"]
    ]
    code, out, err = rb(capsys, "run")
    assert code == 0, err
    code, out, err = rb(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err
    with LinkdingClient(base_url, token) as api:
        held = {
            b["url"]: (b["title"], b["tag_names"], b["is_archived"])
            for archived in (False, True)
            for b in api.list_bookmarks(dict, archived=archived).bookmarks
        }
    return shown, held


@pytest.mark.linkding
def test_the_same_rules_do_the_same_on_the_fake_and_the_real_server(
    linkding: Account,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def on_real(url: str, tags: list[str], archived: bool, days: float) -> None:
        linkding.set_added(linkding.add(url, tags, is_archived=archived), time.time() - days * DAY)

    (tmp_path / "real").mkdir()
    monkeypatch.chdir(tmp_path / "real")
    real = outcome(linkding.base_url, linkding.token, capsys, on_real)

    (tmp_path / "fake").mkdir()
    monkeypatch.chdir(tmp_path / "fake")
    with FakeLinkding(token=linkding.token) as server:

        def on_fake(url: str, tags: list[str], archived: bool, days: float) -> None:
            server.add_bookmark(url, "", tags, archived=archived, added=time.time() - days * DAY)

        faked = outcome(server.base_url, linkding.token, capsys, on_fake)
    assert faked == real
    shown, held = real
    assert ("add-docs", "add", "", "docs") in shown and not [
        s for s in shown if s[0] == "add-saved"
    ]
    assert held["https://a.example/stale"] == (
        "",
        ["Auto-Archived", "Read-Later", "javascript"],
        True,
    )
    assert held["https://a.example/dev"] == ("", ["Dev", "python"], False)  # the case stays


# -- what only the fake can do ---------------------------------------------------------------


def on_fake(server: FakeLinkding, rules: str = "rules: []\n", **settings: object) -> None:
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    Path("rules.yaml").write_text(
        f"version: 1\nlinkding: {{base_url: '{server.base_url}'{extra}}}\n{rules}"
    )


def mirrored() -> dict[str, tuple[str, ...]]:
    with Store.open(".rulebot/rulebot.db") as store:
        return {item.url: tuple(sorted(item.tags or ())) for item in store.items()}


def on_server(server: FakeLinkding) -> dict[str, tuple[str, ...]]:
    return {b.url: tuple(sorted(server.tag_names(i))) for i, b in server.bookmarks.items()}


def test_a_big_library_syncs_in_a_few_requests(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(fake, 3000)
    archived = sum(b.is_archived for b in fake.bookmarks.values())
    on_fake(fake)
    started = time.monotonic()
    code, out, err = rb(capsys, "sync")
    assert code == 0, err
    pages = -(-(3000 - archived) // 500) + -(-archived // 500)
    assert out.startswith("full sync: 3000 received"), out
    assert f"({1 + pages} requests)" in out, out  # the tags, then both lists
    code, out, err = rb(capsys, "sync")
    assert out.startswith("incremental sync:") and "(5 requests)" in out, out
    assert time.monotonic() - started < 30
    assert mirrored() == on_server(fake)


class Shifting(FakeLinkding):
    """Deletes the oldest bookmark while the first page of the list is on its way."""

    shifted = False

    def _list(self, request: Any, body: Any) -> Any:
        reply = super()._list(request, body)
        if not self.shifted and request.query.get("offset", "0") == "0":
            self.shifted = True
            self.remove(min(self.bookmarks))
        return reply


def test_a_bookmark_deleted_while_the_list_is_read_skips_no_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINKDING_TOKEN", DEFAULT_TOKEN)
    with Shifting(now=T) as server:
        for n in range(6):
            server.add_bookmark(f"https://shift.example/{n}", tags=[f"t{n}"])
        on_fake(server, page_size=2)
        code, _, err = rb(capsys, "sync")
        assert code == 0, err
        # offsets moved by one under the reader: the list was read again, whole
        assert mirrored() == on_server(server) and len(mirrored()) == 5


def test_a_garbled_bookmark_is_reported_and_kept_out_until_it_reads(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [fake.add_bookmark(f"https://g.example/{n}", tags=["x"]) for n in range(3)]
    fake.garble(ids[1], date_added="10000-01-01T00:00:00Z")
    on_fake(fake)
    code, out, err = rb(capsys, "sync")
    assert code == 0, err
    assert f"Linkding bookmark {ids[1]}: field 'date_added'" in err
    assert "https://g.example/1" not in mirrored()
    code, out, err = rb(capsys, "sync")
    # it is counted as there, not as deleted: no full scan every time
    assert out.startswith("incremental sync:"), out
    fake.clear_faults()
    code, out, err = rb(capsys, "sync", "--full")
    assert mirrored() == on_server(fake)


def test_an_add_whose_answer_is_lost_lands_once_and_undo_takes_it_back(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str]
) -> None:
    on_fake(
        fake,
        "rules:\n  - name: add\n"
        '    actions: [{add: {url: "https://docs.example/new", title: Docs, tags: [docs]}}]\n',
    )
    rb(capsys, "sync")
    fake.inject("drop_after", route="POST /bookmarks/")
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    assert [b.url for b in fake.bookmarks.values()] == ["https://docs.example/new"]
    assert fake.calls("POST /bookmarks/") == 1  # the check found it: never sent again
    code, out, err = rb(capsys, "undo")
    assert code == 0, err + out
    assert fake.bookmarks == {}


def test_a_date_from_the_future_does_not_carry_the_cursor_past_changes(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str]
) -> None:
    bookmark_id = fake.add_bookmark("https://c.example/1", tags=["old"])
    on_fake(fake)
    fake.date_header = "Fri, 01 Jan 2100 00:00:00 GMT"
    code, _, err = rb(capsys, "sync")
    assert code == 0 and "not believed" in err, err
    fake.date_header = None
    fake.touch(bookmark_id, tags=["new"])
    rb(capsys, "sync")
    assert mirrored() == {"https://c.example/1": ("new",)}


def test_a_tag_renamed_in_the_web_ui_on_a_frozen_clock_is_seen(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_bookmark("https://u.example/1", tags=["web"])
    on_fake(fake)
    rb(capsys, "sync")
    fake.rename_tag("web", "www")
    code, out, err = rb(capsys, "sync")
    assert code == 0 and out.startswith("full sync:"), out + err
    assert mirrored() == {"https://u.example/1": ("www",)}


def test_the_fake_runs_from_the_command_line(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot.fake.linkding", "--port", "0", "--seed", "7"],
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "LINKDING_TOKEN"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = re.search(r"at (http://\S+) with 7 bookmarks", banner)
        assert url, banner
        assert f"export LINKDING_TOKEN={DEFAULT_TOKEN}" in process.stdout.readline()
        with LinkdingClient(url.group(1), DEFAULT_TOKEN) as api:
            assert api.total(archived=False) + api.total(archived=True) == 7
    finally:
        process.terminate()
        process.wait(10)


def test_a_rename_written_with_a_space_reaches_the_dashed_tag(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str]
) -> None:
    """`read later` is the tag `read-later` to Linkding: the store finds the
    bookmarks a rename of it touches (``loose_tag``), so the plan spells the
    rename out on each of them instead of planning nothing."""
    for n in range(2):
        fake.add_bookmark(f"https://d.example/{n}", tags=["read-later", "x"])
    on_fake(
        fake,
        "rules:\n  - name: r\n    actions: [{tag_rename: {old_tag: read later, new_tag: later}}]\n",
    )
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    assert len(json.loads(out)["succeeded"]) == 4, out  # a remove and an add per bookmark
    assert set(on_server(fake).values()) == {("later", "x")}
    code, out, err = rb(capsys, "plan", "--detailed-exitcode")
    assert code == 0, out + err


def test_an_add_after_a_delete_of_its_url_in_the_same_plan_is_sent(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the conformance model: a rule deletes the bookmark, a later one
    adds its URL back; Linkding has the URL when the plan is made, but not
    once the delete before the add has run, so the add stays in the plan."""
    fake.add_bookmark("https://n.example/0", tags=["news"])
    on_fake(
        fake,
        "limits: {max_deletes: 5}\nrules:\n  - name: purge\n    where: {tag: news}\n"
        "    actions: [delete]\n  - name: again\n"
        '    actions: [{add: {url: "https://n.example/0", tags: [fresh]}}]\n',
    )
    code, out, err = rb(capsys, "run", "--format", "json")
    assert code == 0, err
    assert [a["send"]["action"] for a in json.loads(out)["succeeded"]] == ["delete", "add"]
    assert set(on_server(fake).items()) == {("https://n.example/0", ("fresh",))}


# -- what a sync holds (#28, flat memory) ---------------------------------------------------------


def test_a_sync_holds_each_bookmark_as_an_item_never_as_its_json(
    fake: FakeLinkding, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both listings are read to their end before the mirror is written (a
    listing stopped halfway stores nothing), so what they hold grows with the
    library: each bookmark is held as the item it reads as, never as its JSON
    as well (25,000 bookmarks held as JSON were 45 MiB, the run 1.54× the
    local one; 1.2× without)."""
    for n in range(7):
        fake.add_bookmark(f"https://h.example/{n}", f"T{n}", ["x"], archived=n % 3 == 0)
    held: list[object] = []
    real = LinkdingClient.list_bookmarks

    def spy(self: LinkdingClient, *args: Any, **kwargs: Any) -> Any:
        listed = real(self, *args, **kwargs)
        held.extend(listed.bookmarks)
        return listed

    monkeypatch.setattr(LinkdingClient, "list_bookmarks", spy)
    Path("rules.yaml").write_text(f"version: 1\nlinkding: {{base_url: '{fake.base_url}'}}\n{RULES}")
    code, _, err = rb(capsys, "sync")
    assert code == 0, err
    assert len(held) == 7
    assert all(isinstance(entry, tuple) and isinstance(entry[1], Item) for entry in held), held
