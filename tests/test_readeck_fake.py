"""The fake Readeck's quirks, each as readeck.md states it, over real sockets; every
answer it gave is checked against Readeck's published YAML at teardown; and the
checker itself catches an answer that breaks the YAML."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rulebot.fake.readeck import DELETE_DELAY, Exchange, FakeReadeck
from tests import readeck_spec

T = 1_795_672_800
TOKEN = "rdk-test-token-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeReadeck]:
    with FakeReadeck(now=T, token=TOKEN) as server:
        yield server
    if readeck_spec.missing_reason() is None:
        readeck_spec.check_all(server)


def call(
    fake: FakeReadeck,
    method: str,
    path: str,
    *,
    accept: str | None = "application/json",
    auth: str | None = None,
    **kw: Any,
) -> httpx.Response:
    headers = {"Authorization": auth if auth is not None else f"Bearer {TOKEN}"}
    if accept is not None:
        headers["Accept"] = accept  # else httpx's */*, which names no type: HTML
    if auth == "":
        del headers["Authorization"]
    headers.update(kw.pop("headers", {}))
    return httpx.request(method, fake.base_url + "/api" + path, headers=headers, **kw)


def test_errors_follow_the_accept_header_and_401_names_the_schemes(fake: FakeReadeck) -> None:
    answer = call(fake, "GET", "/bookmarks/nOpEnOpEnOpEnOpEnOpE")
    assert answer.status_code == 404 and answer.json() == {"status": 404, "message": "Not Found"}
    assert call(fake, "GET", "/bookmarks/nOpEnOpEnOpEnOpEnOpE", accept=None).text.startswith(
        "<!DOCTYPE html>"
    )
    assert call(fake, "GET", "/bookmarks/nOpEnOpEnOpEnOpEnOpE", accept="text/plain").text == (
        "Not Found\n"
    )
    missing = call(fake, "GET", "/bookmarks", auth="")
    assert missing.status_code == 401 and "Basic realm" in missing.headers["WWW-Authenticate"]
    wrong = call(fake, "GET", "/bookmarks", auth="Bearer nope")
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="Bearer token"'
    assert call(fake, "GET", "/bookmarks", auth=f"bEaReR {TOKEN}").status_code == 200
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert call(fake, "GET", "/bookmarks", auth=f"Basic {basic}").status_code == 200


def test_the_list_is_a_bare_array_offset_paged_and_404s_above_100(fake: FakeReadeck) -> None:
    for n in range(5):
        fake.add_bookmark(f"https://e.example/{n}", created=T - n)
    page = call(fake, "GET", "/bookmarks", params={"limit": 2, "offset": 2})
    assert [b["url"] for b in page.json()] == ["https://e.example/2", "https://e.example/3"]
    assert (page.headers["Total-Count"], page.headers["Total-Pages"]) == ("5", "3")
    assert page.headers["Current-Page"] == "2" and 'rel="previous"' in page.headers["Link"]
    assert call(fake, "GET", "/bookmarks", params={"limit": 101}).status_code == 404
    assert call(fake, "GET", "/bookmarks", params={"limit": -1}).status_code == 404
    assert len(call(fake, "GET", "/bookmarks", params={"limit": 0}).json()) == 5  # 0: 50
    etag = page.headers["ETag"]
    again = call(
        fake, "GET", "/bookmarks", params={"limit": 2, "offset": 2}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""


def test_sync_is_inclusive_to_the_second_and_reports_deletions(fake: FakeReadeck) -> None:
    old = fake.add_bookmark("https://e.example/old", created=T - 100, updated=T - 100)
    kept = fake.add_bookmark("https://e.example/kept", created=T - 100, updated=T - 100)
    fake.now = T + 5
    fake.touch(kept, is_marked=True)
    fake.remove(old)
    since = "2026-11-26T06:00:05.999Z"  # the fraction is ignored (SQLite datetime())
    answer = call(fake, "GET", "/bookmarks/sync", params={"since": since}).json()
    assert [(e["id"], e["type"]) for e in answer] == [(old, "delete"), (kept, "update")]
    assert (
        call(fake, "GET", "/bookmarks/sync", params={"since": "2026-11-26T06:00:06Z"}).json() == []
    )
    assert call(fake, "GET", "/bookmarks/sync", params={"since": "soon"}).status_code == 422
    assert [e["id"] for e in call(fake, "GET", "/bookmarks/sync").json()] == [kept]


def test_create_is_202_without_duplicate_detection(fake: FakeReadeck) -> None:
    first = call(fake, "POST", "/bookmarks", json={"url": "https://e.example/a#frag"})
    second = call(fake, "POST", "/bookmarks", json={"url": "https://e.example/a"})
    assert first.status_code == second.status_code == 202
    assert first.json() == {"status": 202, "message": "Link submited"}
    assert first.headers["Location"].endswith(first.headers["Bookmark-Id"])
    assert first.headers["Bookmark-Id"] != second.headers["Bookmark-Id"]
    assert len(fake.state.by_url("https://e.example/a")) == 2  # no duplicate detection
    assert fake.state.bookmarks[first.headers["Bookmark-Id"]]["loaded"] is False
    assert call(fake, "POST", "/bookmarks", json={"url": "ftp://x"}).status_code == 422


def test_patch_answers_changed_fields_with_labels_in_the_fixed_order(fake: FakeReadeck) -> None:
    bookmark = fake.add_bookmark("https://e.example/p", labels=["Foo", "bar"])
    body = {"remove_labels": ["Foo"], "add_labels": ["Foo", "zed"], "is_archived": True}
    answer = call(fake, "PATCH", f"/bookmarks/{bookmark}", json=body).json()
    # add then remove, whatever the JSON order: Foo goes; sorted ignoring case
    assert answer["labels"] == ["bar", "zed"] and answer["is_archived"] is True
    assert set(answer) == {"id", "href", "is_archived", "labels", "updated"}
    nothing = call(fake, "PATCH", f"/bookmarks/{bookmark}", json={}).json()
    assert set(nothing) == {"id", "href"}
    bad = call(fake, "PATCH", f"/bookmarks/{bookmark}", json={"is_marked": "true"})
    assert bad.status_code == 400 and bad.json()["fields"]["is_marked"]["errors"]
    cased = call(fake, "PATCH", f"/bookmarks/{bookmark}", json={"add_labels": ["BAR"]}).json()
    assert sorted(cased["labels"]) == ["BAR", "bar", "zed"]  # case-sensitive


def test_delete_is_immediate_and_is_deleted_waits_20_seconds(fake: FakeReadeck) -> None:
    a = fake.add_bookmark("https://e.example/a")
    b = fake.add_bookmark("https://e.example/b")
    assert call(fake, "DELETE", f"/bookmarks/{a}").status_code == 204
    assert call(fake, "DELETE", f"/bookmarks/{a}").status_code == 404
    call(fake, "PATCH", f"/bookmarks/{b}", json={"is_deleted": True})
    assert call(fake, "GET", f"/bookmarks/{b}").json()["is_deleted"] is True
    fake.now = T + int(DELETE_DELAY) + 1
    assert call(fake, "GET", f"/bookmarks/{b}").status_code == 404
    assert set(fake.state.removed) == {a, b}


def test_labels_rename_merges_and_info_is_one_object(fake: FakeReadeck) -> None:
    both = fake.add_bookmark("https://e.example/both", labels=["js", "javascript"])
    one = fake.add_bookmark("https://e.example/one", labels=["js", "JS"])
    info = call(fake, "GET", "/bookmarks/labels", params={"name": "js"}).json()
    assert info["name"] == "js" and info["count"] == 2  # an object, not a list
    renamed = call(
        fake, "PATCH", "/bookmarks/labels", params={"name": "js"}, json={"name": "javascript"}
    )
    assert renamed.json() == {"name": "javascript"}
    assert fake.state.labels(both) == ["javascript"]  # merged
    assert fake.state.labels(one) == ["javascript", "JS"]  # case-sensitive: JS stays
    assert (
        call(
            fake, "PATCH", "/bookmarks/labels", params={"name": "js"}, json={"name": "x"}
        ).status_code
        == 404
    )
    assert call(fake, "DELETE", "/bookmarks/labels", params={"name": "JS"}).status_code == 204
    assert fake.state.labels(one) == ["javascript"]


def test_authors_are_null_while_loading_and_an_array_once_loaded(fake: FakeReadeck) -> None:
    loaded = fake.add_bookmark("https://e.example/l", authors=["Ann"])
    assert call(fake, "GET", f"/bookmarks/{loaded}").json()["authors"] == ["Ann"]
    plain = fake.add_bookmark("https://e.example/p")
    assert call(fake, "GET", f"/bookmarks/{plain}").json()["authors"] == []
    created = call(fake, "POST", "/bookmarks", json={"url": "https://e.example/new"})
    new = created.headers["Bookmark-Id"]
    shown = call(fake, "GET", f"/bookmarks/{new}").json()
    assert shown["authors"] is None and shown["loaded"] is False  # a nil Go slice (§3)
    assert shown["text_direction"] == "" and shown["site_name"] == "e.example"
    fake.finish_loading(new, "New")
    shown = call(fake, "GET", f"/bookmarks/{new}").json()
    assert (shown["authors"], shown["loaded"], shown["title"]) == ([], True, "New")


def test_the_profile_names_the_provider_and_the_users_dates_and_settings(
    fake: FakeReadeck,
) -> None:
    profile = call(fake, "GET", "/profile").json()
    assert set(profile["provider"]) == {"name", "id", "application", "roles", "permissions"}
    assert "api:bookmarks:read" in profile["provider"]["permissions"]
    user = profile["user"]
    assert {"username", "email", "created", "updated", "settings"} <= set(user)
    assert user["settings"]["debug_info"] is False
    assert user["settings"]["reader_settings"]["font_size"] == 3


def listed(fake: FakeReadeck, **params: Any) -> list[str]:
    answer = call(fake, "GET", "/bookmarks", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Total-Count"] == str(len(answer.json()))
    return [b["title"] for b in answer.json()]


def test_the_list_filters_by_flags_labels_types_and_read_status(fake: FakeReadeck) -> None:
    fake.add_bookmark("https://a.example/1", "One", labels=["js", "Web dev"], archived=True)
    fake.add_bookmark("https://b.example/2", "Two", labels=["JS"], marked=True, read_progress=50)
    fake.add_bookmark("https://c.example/3", "Three", kind="video", read_progress=100)
    fake.add_bookmark("https://d.example/4", "Four", state=2)
    fake.add_bookmark("https://e.example/5", "Five", state=1, labels=["jsdoc"])
    assert listed(fake, is_archived="true") == ["One"]
    assert listed(fake, is_marked="1") == ["Two"]
    assert listed(fake, is_loaded="f") == ["Four"]
    assert listed(fake, has_errors="on") == ["Five"]
    assert listed(fake, has_labels="false") == ["Four", "Three"]
    assert listed(fake, labels="js") == ["One"]  # exact and case-sensitive
    assert listed(fake, labels="js*") == ["Five", "Two", "One"]  # a prefix, any case
    assert listed(fake, labels='"Web dev"') == ["One"]  # quoted: one label with a space
    assert listed(fake, labels="js* -JS") == ["Five", "One"]  # ANDed, - excludes
    assert listed(fake, type="video") == ["Three"]
    assert listed(fake, type=["video", "article"], read_status="unread") == ["Five", "Four", "One"]
    assert listed(fake, read_status=["reading", "read"]) == ["Three", "Two"]
    assert call(fake, "GET", "/bookmarks", params={"is_marked": "maybe"}).status_code == 422
    assert call(fake, "GET", "/bookmarks", params={"type": "audio"}).status_code == 422
    assert call(fake, "GET", "/bookmarks", params={"collection": "x"}).status_code == 404


def test_the_list_searches_text_fields_and_dates(fake: FakeReadeck) -> None:
    day = 86400
    fake.add_bookmark(
        "https://blog.example.org/a",
        "Café culture",
        created=T - 40 * day,
        authors=["Jane Roe"],
        description="Espresso notes",
    )
    fake.add_bookmark("https://news.example.net/b", "Python news", created=T - 2 * day)
    assert listed(fake, search="cafe") == ["Café culture"]  # accents and case folded
    assert listed(fake, search="espresso") == ["Café culture"]  # the description too
    assert listed(fake, title="pyth*") == ["Python news"]
    assert listed(fake, title="pyth") == []  # words, not substrings
    assert listed(fake, author="roe") == ["Café culture"]
    assert listed(fake, site="news.example.net") == ["Python news"]
    assert listed(fake, search="-python") == ["Café culture"]
    assert listed(fake, range_start="-7d") == ["Python news"]
    assert listed(fake, range_end="-1m") == ["Café culture"]
    assert listed(fake, range_start="2020-01-01", range_end="now") == [
        "Python news",
        "Café culture",
    ]
    assert call(fake, "GET", "/bookmarks", params={"range_start": "soon"}).status_code == 422


def test_the_list_sorts_by_the_keys_given_and_ignores_unknown_ones(fake: FakeReadeck) -> None:
    fake.add_bookmark("https://b.example/x", "Beta", created=T - 30, word_count=900)
    fake.add_bookmark(
        "https://a.example/x", "alpha", created=T - 20, word_count=100, published=T - 10_000
    )
    fake.add_bookmark("https://c.example/x", "Gamma", created=T - 10, word_count=500)
    assert listed(fake) == ["Gamma", "alpha", "Beta"]  # created, newest first
    assert listed(fake, sort="created") == ["Beta", "alpha", "Gamma"]
    assert listed(fake, sort="title") == ["Beta", "Gamma", "alpha"]  # binary order
    assert listed(fake, sort="-duration") == ["Beta", "Gamma", "alpha"]
    assert listed(fake, sort="published") == ["alpha", "Beta", "Gamma"]  # else created
    assert listed(fake, sort=["site", "-title"]) == ["alpha", "Beta", "Gamma"]
    assert listed(fake, sort="bogus") == ["Gamma", "alpha", "Beta"]  # ignored: the default


def test_patch_edits_the_metadata_and_answers_what_changed(fake: FakeReadeck) -> None:
    bookmark = fake.add_bookmark("https://e.example/m", "Title", read_progress=40)
    body = {
        "description": "  A  short\nsummary ",
        "site_name": "Example",
        "authors": ["Ann", " ", "Bob\nCy"],
        "lang": "PT-br",
        "text_direction": "rtl",
        "published": "2024-05-06T07:08:09Z",
        "read_anchor": "#p3",
    }
    answer = call(fake, "PATCH", f"/bookmarks/{bookmark}", json=body).json()
    assert answer["description"] == "A short summary" and answer["site_name"] == "Example"
    assert answer["authors"] == ["Ann", "Bob", "Cy"] and answer["lang"] == "pt-br"
    assert answer["text_direction"] == "rtl" and answer["published"] == "2024-05-06T07:08:09Z"
    assert answer["read_anchor"] == "#p3" and "updated" in answer
    shown = call(fake, "GET", f"/bookmarks/{bookmark}").json()
    assert shown["description"] == "A short summary" and shown["read_anchor"] == "#p3"
    assert shown["published"] == "2024-05-06T07:08:09Z" and shown["authors"] == ["Ann", "Bob", "Cy"]
    done = call(fake, "PATCH", f"/bookmarks/{bookmark}", json={"read_progress": 100}).json()
    assert done["read_anchor"] == "" and done["read_progress"] == 100  # 100 clears the anchor
    cleared = call(fake, "PATCH", f"/bookmarks/{bookmark}", json={"published": None}).json()
    assert cleared["published"] is None
    assert "published" not in call(fake, "GET", f"/bookmarks/{bookmark}").json()
    for bad in (
        {"site_name": ""},
        {"lang": "not a tag"},
        {"text_direction": "up"},
        {"published": "someday"},
        {"authors": "Ann"},
    ):
        answer = call(fake, "PATCH", f"/bookmarks/{bookmark}", json=bad)
        assert answer.status_code == 400 and set(answer.json()["fields"]) == set(bad), bad


def test_injected_faults_shape_the_answers(fake: FakeReadeck) -> None:
    fake.inject("status", status=503, route="GET /bookmarks")
    assert call(fake, "GET", "/bookmarks").status_code == 503
    assert call(fake, "GET", "/bookmarks").status_code == 200
    fake.inject("drop", route="/bookmarks")
    with pytest.raises(httpx.HTTPError):
        call(fake, "GET", "/bookmarks")
    assert fake.calls("GET /bookmarks") == 3


def test_the_spec_check_catches_an_answer_that_breaks_the_yaml(fake: FakeReadeck) -> None:
    api = readeck_spec.openapi()
    bookmark = fake.add_bookmark("https://e.example/x", labels=["a"])
    call(fake, "GET", f"/bookmarks/{bookmark}")
    good = fake.exchanges[-1]
    readeck_spec.check_exchange(api, good)
    answer = json.loads(good.response_body)
    answer["labels"] = "a"  # the YAML says an array of strings
    broken = Exchange(**{**good.__dict__, "response_body": json.dumps(answer).encode()})
    with pytest.raises(AssertionError, match="labels"):
        readeck_spec.check_exchange(api, broken)


def test_the_command_line_fake_serves_seeded_bookmarks(tmp_path: Any) -> None:
    env = {**os.environ, "READECK_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot.fake.readeck", "--port", "0", "--seed", "30"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.split(" at ", 1)[1].split(" ", 1)[0]
        answer = httpx.get(
            base_url + "/api/bookmarks",
            headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        )
        assert answer.headers["Total-Count"] == "30"
        assert TOKEN not in line + process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=10)
