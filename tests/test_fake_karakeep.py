"""The fake Karakeep server behaves like the real one (specs/karakeep.md), quirks included.

Raw httpx over real sockets: these tests pin the server's behaviour so the client
tests (test_karakeep_api.py) can trust it. Every answer a test provokes is checked
against Karakeep's published OpenAPI document when the fixture tears down.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rulebot.fake.karakeep import DEFAULT_API_KEY, RENAME_CONFLICT, FakeKarakeep, seed
from tests import karakeep_spec

NOW = 1_795_672_800  # 2026-11-26T06:00:00Z
ISO_NOW = "2026-11-26T06:00:00.000Z"


@pytest.fixture
def server() -> Iterator[FakeKarakeep]:
    with FakeKarakeep(now=NOW) as fake:
        yield fake
    if karakeep_spec.missing_reason() is None:
        karakeep_spec.check_all(fake)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def call(
    http: httpx.Client,
    server: FakeKarakeep,
    method: str,
    path: str,
    *,
    key: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    return http.request(method, f"{server.base_url}/api/v1{path}", headers=headers, **kwargs)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def is_text(response: httpx.Response, status: int, body: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == body


def is_zod_400(response: httpx.Response) -> None:
    assert response.status_code == 400
    answer = response.json()
    assert answer["success"] is False and answer["error"]["name"] == "ZodError"


# -- auth ---------------------------------------------------------------------------------


def test_missing_wrong_or_lowercase_bearer_is_a_plain_text_401(server, http):
    url = f"{server.base_url}/api/v1/bookmarks"
    for headers in (
        {},
        {"Authorization": f"bearer {server.api_key}"},  # the prefix is case-sensitive
        {"Authorization": f"Bearer {server.api_key}x"},
        {"Authorization": server.api_key},
    ):
        is_text(http.get(url, headers=headers), 401, "Unauthorized")
    assert ok(http.get(f"{server.base_url}/api/health"))["status"] == "ok"  # no auth needed
    assert ok(call(http, server, "GET", "/users/me"))["localUser"] is True


def test_unknown_route_is_hono_default_404(server, http):
    is_text(call(http, server, "GET", "/nothing-here"), 404, "404 Not Found")
    is_text(http.get(f"{server.base_url}/api/v1/nothing-here"), 404, "404 Not Found")


def test_under_a_resource_the_key_is_checked_before_the_route(server, http):
    # each v1 router starts with the auth middleware: no key, 401 before any 404
    for path in ("/bookmarks/x/nowhere", "/tags/x/nowhere", "/lists/x", "/users/nobody"):
        is_text(http.get(f"{server.base_url}/api/v1{path}"), 401, "Unauthorized")
        is_text(call(http, server, "GET", path), 404, "404 Not Found")
    is_text(call(http, server, "PUT", "/bookmarks"), 404, "404 Not Found")  # no such method


# -- check-url and search ----------------------------------------------------------------


def test_check_url_normalizes_fragment_trailing_slash_and_case(server, http):
    page = server.add_bookmark("https://Example.com/a/")
    query = server.add_bookmark("https://q.example/p?x=1")
    root = server.add_bookmark("https://root.example/")
    bare = server.add_bookmark("https://bare.example")

    def check(url: str) -> Any:
        return ok(call(http, server, "GET", "/bookmarks/check-url", params={"url": url}))

    assert check("https://example.com/a/") == {"bookmarkId": page}
    assert check("https://EXAMPLE.com/a#top") == {"bookmarkId": page}
    assert check("https://q.example/p/?x=1#top") == {"bookmarkId": query}
    assert check("https://root.example") == {"bookmarkId": root}  # the root keeps its /
    # LIKE 'https://bare.example/%' misses the stored URL without a slash
    assert check("https://bare.example/") == {"bookmarkId": None}
    assert server.bookmark(bare)["content"]["url"] == "https://bare.example"
    assert check("https://elsewhere.example/") == {"bookmarkId": None}
    is_zod_400(call(http, server, "GET", "/bookmarks/check-url"))
    is_text(
        call(http, server, "GET", "/bookmarks/check-url", params={"url": "nope"}),
        500,
        "Internal server error",
    )  # `new URL()` throws


def test_search_finds_words_pages_by_offset_and_orders_by_date(server, http):
    old = server.add_bookmark("https://a.example/1", "Python tips", created_at=NOW - 30)
    new = server.add_bookmark(
        "https://b.example/2", "More python", created_at=NOW - 10, tags=["howto"]
    )
    server.add_bookmark("https://c.example/3", "Cooking", created_at=NOW - 20, note="pasta")

    def search(**params: Any) -> Any:
        return ok(call(http, server, "GET", "/bookmarks/search", params=params))

    found = search(q="PYTH")  # word prefixes, any case
    assert [b["id"] for b in found["bookmarks"]] == [new, old] and found["nextCursor"] is None
    assert [b["id"] for b in search(q="pyth", sortOrder="asc")["bookmarks"]] == [old, new]
    assert [b["content"]["url"] for b in search(q="pasta")["bookmarks"]] == ["https://c.example/3"]
    assert [b["id"] for b in search(q="howto python")["bookmarks"]] == [new]  # words ANDed
    first = search(q="example", limit=2)  # every URL has it: pages by offset
    assert len(first["bookmarks"]) == 2 and first["nextCursor"] == "2"
    rest = search(q="example", limit=2, cursor=first["nextCursor"])
    assert len(rest["bookmarks"]) == 1 and rest["nextCursor"] is None
    assert search(q="nothing-like-it") == {"bookmarks": [], "nextCursor": None}
    is_zod_400(call(http, server, "GET", "/bookmarks/search"))
    is_zod_400(call(http, server, "GET", "/bookmarks/search", params={"q": "x", "sortOrder": "up"}))


# -- listing ------------------------------------------------------------------------------


def test_cursor_paging_visits_every_bookmark_once_in_created_then_id_desc_order(server, http):
    # 250 bookmarks over 50 distinct seconds: ties are the rule, the id breaks them
    ids = {server.add_bookmark(created_at=NOW - n // 5) for n in range(250)}
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        answer = ok(call(http, server, "GET", "/bookmarks", params=params))
        pages += 1
        seen += answer["bookmarks"]
        cursor = answer["nextCursor"]
        if cursor is None:
            break
        # the cursor names the first item of the next page: "<id>_<ISO createdAt>"
        cursor_id, _, stamp = cursor.partition("_")
        assert stamp.endswith(".000Z")
        following = ok(
            call(http, server, "GET", "/bookmarks", params={"limit": 1, "cursor": cursor})
        )
        assert following["bookmarks"][0]["id"] == cursor_id
    assert pages == 3
    assert [b["id"] for b in seen if b["id"] in ids] == [b["id"] for b in seen]
    assert len({b["id"] for b in seen}) == 250
    keys = [(b["createdAt"], b["id"]) for b in seen]
    assert keys == sorted(keys, key=lambda k: (k[0], k[1]), reverse=True)


def test_ascending_order_keeps_the_id_descending_tie_break(server, http):
    for n in range(6):
        server.add_bookmark(created_at=NOW + n // 3)
    page = ok(call(http, server, "GET", "/bookmarks", params={"sortOrder": "asc", "limit": 4}))
    rest = ok(
        call(
            http,
            server,
            "GET",
            "/bookmarks",
            params={"sortOrder": "asc", "limit": 4, "cursor": page["nextCursor"]},
        )
    )
    listed = page["bookmarks"] + rest["bookmarks"]
    assert rest["nextCursor"] is None and len(listed) == 6
    assert [b["createdAt"] for b in listed] == sorted(b["createdAt"] for b in listed)
    first_second = [b["id"] for b in listed[:3]]
    assert first_second == sorted(first_second, reverse=True)


def test_limit_defaults_to_20_and_runs_1_to_100(server, http):
    for _ in range(25):
        server.add_bookmark()
    assert len(ok(call(http, server, "GET", "/bookmarks"))["bookmarks"]) == 20
    assert (
        len(ok(call(http, server, "GET", "/bookmarks", params={"limit": 100}))["bookmarks"]) == 25
    )
    for bad in ("0", "101", "2.5", "many"):
        is_zod_400(call(http, server, "GET", "/bookmarks", params={"limit": bad}))


def test_query_booleans_are_only_true_or_false_and_filter(server, http):
    archived = server.add_bookmark(archived=True)
    server.add_bookmark(favourited=True)
    answer = ok(call(http, server, "GET", "/bookmarks", params={"archived": "true"}))
    assert [b["id"] for b in answer["bookmarks"]] == [archived]
    answer = ok(call(http, server, "GET", "/bookmarks", params={"favourited": "false"}))
    assert [b["id"] for b in answer["bookmarks"]] == [archived]
    for bad in ("1", "yes", "True"):
        is_zod_400(call(http, server, "GET", "/bookmarks", params={"archived": bad}))


def test_a_cursor_without_underscore_or_date_is_a_400(server, http):
    for bad in ("abc", "abc_notadate"):
        is_zod_400(call(http, server, "GET", "/bookmarks", params={"cursor": bad}))


def test_include_content_controls_html_content(server, http):
    server.add_bookmark(crawled_title="Crawled")
    light = ok(call(http, server, "GET", "/bookmarks", params={"includeContent": "false"}))
    full = ok(call(http, server, "GET", "/bookmarks", params={"includeContent": "true"}))
    assert light["bookmarks"][0]["content"]["htmlContent"] is None
    assert full["bookmarks"][0]["content"]["htmlContent"]
    assert light["bookmarks"][0]["content"]["title"] == "Crawled"


# -- one bookmark --------------------------------------------------------------------------


def test_get_one_and_unknown_id_is_a_plain_text_404(server, http):
    bookmark_id = server.add_bookmark("https://a.example/1", "A", tags=["js"])
    answer = ok(call(http, server, "GET", f"/bookmarks/{bookmark_id}"))
    assert answer["content"] == {**answer["content"], "type": "link", "url": "https://a.example/1"}
    assert answer["tags"][0]["name"] == "js" and answer["firstCreatedAt"] == ISO_NOW
    is_text(call(http, server, "GET", "/bookmarks/nosuchbookmark"), 404, "Bookmark not found")


def test_patch_answers_the_full_bookmark_and_bumps_modified_only_on_change(server, http):
    bookmark_id = server.add_bookmark(tags=["keep"], created_at=NOW - 100, modified_at=NOW - 100)
    answer = ok(call(http, server, "PATCH", f"/bookmarks/{bookmark_id}", json={}))
    assert answer["modifiedAt"] == "2026-11-26T05:58:20.000Z"  # {} is a no-op
    body = {"archived": True, "favourited": True}
    answer = ok(call(http, server, "PATCH", f"/bookmarks/{bookmark_id}", json=body))
    assert answer["archived"] is True and answer["favourited"] is True
    assert answer["tags"][0]["name"] == "keep" and answer["content"]["type"] == "link"
    assert answer["modifiedAt"] == ISO_NOW
    is_zod_400(call(http, server, "PATCH", f"/bookmarks/{bookmark_id}", json={"archived": "yes"}))
    is_text(call(http, server, "PATCH", "/bookmarks/gone", json=body), 404, "Bookmark not found")


def test_delete_is_hard_204_then_404(server, http):
    bookmark_id = server.add_bookmark(tags=["t"])
    response = call(http, server, "DELETE", f"/bookmarks/{bookmark_id}")
    assert response.status_code == 204 and response.content == b""
    assert bookmark_id not in server.state.bookmarks
    is_text(call(http, server, "DELETE", f"/bookmarks/{bookmark_id}"), 404, "Bookmark not found")


# -- create --------------------------------------------------------------------------------


def test_new_link_is_201_pending_without_first_created_at(server, http):
    body = {"type": "link", "url": "https://new.example/a", "title": "Mine"}
    answer = ok(call(http, server, "POST", "/bookmarks", json=body), 201)
    assert answer["alreadyExists"] is False and "firstCreatedAt" not in answer
    assert answer["tags"] == [] and answer["content"]["title"] is None
    assert answer["taggingStatus"] == "pending" and answer["source"] == "api"
    assert "firstCreatedAt" in ok(call(http, server, "GET", f"/bookmarks/{answer['id']}"))
    for bad in (
        {"type": "link", "url": "ftp://x.example/"},
        {"type": "link"},
        {"url": "https://x"},
    ):
        is_zod_400(call(http, server, "POST", "/bookmarks", json=bad))


def test_reposting_an_existing_url_unarchives_it_and_moves_it_to_the_top(server, http):
    old = server.add_bookmark(
        "https://dup.example/a", archived=True, favourited=True, created_at=NOW - 86400
    )
    server.add_bookmark("https://other.example/b", created_at=NOW - 10)
    server.now = NOW + 5
    response = call(
        http, server, "POST", "/bookmarks", json={"type": "link", "url": "https://dup.example/a"}
    )
    answer = ok(response, 200)
    assert answer["alreadyExists"] is True and answer["id"] == old
    assert answer["archived"] is False  # the quirk: re-saving un-archives
    assert answer["favourited"] is True  # only fields present in the request change
    assert answer["createdAt"].startswith("2026-11-26T06:00:05.")  # in-memory Date: ms
    stored = server.bookmark(old)
    assert stored["createdAt"] == "2026-11-26T06:00:05.000Z"  # a later GET: whole seconds
    assert stored["firstCreatedAt"] == "2026-11-25T06:00:00.000Z"
    first = ok(call(http, server, "GET", "/bookmarks", params={"limit": 1}))["bookmarks"][0]
    assert first["id"] == old


def test_url_dedup_is_an_exact_string_match(server, http):
    server.add_bookmark("https://dup.example/a")
    response = call(
        http, server, "POST", "/bookmarks", json={"type": "link", "url": "https://dup.example/a/"}
    )
    assert ok(response, 201)["alreadyExists"] is False


def test_rss_resave_leaves_the_bookmark_alone(server, http):
    old = server.add_bookmark("https://feed.example/a", archived=True)
    body = {"type": "link", "url": "https://feed.example/a", "source": "rss"}
    assert ok(call(http, server, "POST", "/bookmarks", json=body))["archived"] is True
    assert server.bookmark(old)["archived"] is True


# -- tags on a bookmark -----------------------------------------------------------------------


def test_attach_by_name_creates_the_tag_case_sensitively_and_strips_hash(server, http):
    bookmark_id = server.add_bookmark(tags=["JS"], modified_at=NOW - 50)
    body = {"tags": [{"tagName": "js"}, {"tagName": "#news"}, {"tagName": "  "}]}
    attached = ok(call(http, server, "POST", f"/bookmarks/{bookmark_id}/tags", json=body))[
        "attached"
    ]
    assert attached == [server.tag_id("js"), server.tag_id("news")]
    assert server.state.tag_names(bookmark_id) == ["JS", "js", "news"]
    assert server.bookmark(bookmark_id)["modifiedAt"] == ISO_NOW


def test_attach_and_detach_list_resolved_ids_even_when_nothing_changed(server, http):
    bookmark_id = server.add_bookmark(tags=["a"], modified_at=NOW - 50)
    other_tag = server.add_tag("b")
    url = f"/bookmarks/{bookmark_id}/tags"
    answer = ok(call(http, server, "POST", url, json={"tags": [{"tagName": "a"}]}))
    assert answer == {"attached": [server.tag_id("a")]}
    answer = ok(
        call(http, server, "DELETE", url, json={"tags": [{"tagName": "b"}, {"tagId": "zz"}]})
    )
    assert answer == {"detached": [other_tag]}
    assert server.bookmark(bookmark_id)["modifiedAt"] == "2026-11-26T05:59:10.000Z"  # unchanged


def test_detach_matches_the_raw_name_without_normalizing(server, http):
    bookmark_id = server.add_bookmark(tags=["foo"])
    url = f"/bookmarks/{bookmark_id}/tags"
    assert ok(call(http, server, "DELETE", url, json={"tags": [{"tagName": "#foo"}]})) == {
        "detached": []
    }
    assert ok(call(http, server, "DELETE", url, json={"tags": [{"tagName": "foo"}]}))["detached"]
    assert server.state.tag_names(bookmark_id) == []
    is_zod_400(call(http, server, "POST", url, json={"tags": [{}]}))
    is_text(
        call(http, server, "POST", "/bookmarks/gone/tags", json={"tags": [{"tagName": "x"}]}),
        404,
        "Bookmark not found",
    )


# -- the tags resource -----------------------------------------------------------------------


def test_tags_list_counts_and_pages_by_offset_cursor(server, http):
    server.add_bookmark(tags=["a", "b"])
    server.add_bookmark(tags=["b"], ai_tags=["c"])
    answer = ok(call(http, server, "GET", "/tags"))
    assert answer["nextCursor"] is None
    assert [(t["name"], t["numBookmarks"]) for t in answer["tags"]] == [
        ("b", 2),
        ("a", 1),
        ("c", 1),
    ]
    by_name = {t["name"]: t for t in answer["tags"]}
    assert by_name["c"]["numBookmarksByAttachedType"] == {"ai": 1, "human": 0}
    first = ok(call(http, server, "GET", "/tags", params={"sort": "name", "limit": 2}))
    assert [t["name"] for t in first["tags"]] == ["a", "b"]
    assert first["nextCursor"] == "eyJwYWdlIjoxfQ"  # base64url {"page":1}
    rest = ok(
        call(
            http,
            server,
            "GET",
            "/tags",
            params={"sort": "name", "limit": 2, "cursor": first["nextCursor"]},
        )
    )
    assert [t["name"] for t in rest["tags"]] == ["c"] and rest["nextCursor"] is None


def test_rename_onto_an_existing_name_is_a_plain_text_400_and_rename_keeps_modified(server, http):
    bookmark_id = server.add_bookmark(tags=["js", "javascript"], modified_at=NOW - 50)
    js = server.tag_id("js")
    is_text(
        call(http, server, "PATCH", f"/tags/{js}", json={"name": "javascript"}),
        400,
        RENAME_CONFLICT,
    )
    answer = ok(call(http, server, "PATCH", f"/tags/{js}", json={"name": "#JS"}))
    assert answer == {"id": js, "name": "JS"}  # case differs: another name
    assert server.state.tag_names(bookmark_id) == ["JS", "javascript"]
    assert server.bookmark(bookmark_id)["modifiedAt"] == "2026-11-26T05:59:10.000Z"
    is_text(
        call(http, server, "PATCH", "/tags/nosuchtag", json={"name": "x"}), 404, "Tag not found"
    )


def test_delete_tag_cascades_without_bumping_modified(server, http):
    bookmark_id = server.add_bookmark(tags=["gone", "kept"], modified_at=NOW - 50)
    response = call(http, server, "DELETE", f"/tags/{server.tag_id('gone')}")
    assert response.status_code == 204
    assert server.state.tag_names(bookmark_id) == ["kept"]
    assert server.bookmark(bookmark_id)["modifiedAt"] == "2026-11-26T05:59:10.000Z"
    assert ok(call(http, server, "GET", f"/tags/{server.tag_id('kept')}"))["numBookmarks"] == 1


def test_create_tag_and_its_duplicate(server, http):
    created = ok(call(http, server, "POST", "/tags", json={"name": "new"}), 201)
    assert created == {"id": server.tag_id("new"), "name": "new"}
    is_text(
        call(http, server, "POST", "/tags", json={"name": "new"}),
        400,
        "Tag name already exists for this user.",
    )


# -- faults and the request log --------------------------------------------------------------


def test_status_fault_on_the_nth_matching_call_and_429_has_no_retry_after(server, http):
    server.add_bookmark()
    server.inject("status", status=429, route="GET /bookmarks", nth=2)
    assert call(http, server, "GET", "/tags").status_code == 200  # another route: not counted
    assert call(http, server, "GET", "/bookmarks").status_code == 200
    limited = call(http, server, "GET", "/bookmarks")
    is_text(limited, 429, "Rate limit exceeded. Try again in 1 seconds.")
    assert "retry-after" not in limited.headers
    assert not any(h.startswith("x-ratelimit") for h in limited.headers)
    assert call(http, server, "GET", "/bookmarks").status_code == 200
    assert (
        server.calls("GET /bookmarks") == 3 and server.calls("/tags") == 1 and server.calls() == 4
    )


def test_proxy_errors_come_as_html_and_count_repeats(server, http):
    server.inject("status", status=503, count=2)
    for _ in range(2):
        response = call(http, server, "GET", "/tags")
        assert response.status_code == 503 and "text/html" in response.headers["content-type"]
    assert call(http, server, "GET", "/tags").status_code == 200


def test_drop_before_the_work_changes_nothing_and_drop_after_does_the_work(server, http):
    bookmark_id = server.add_bookmark()
    server.inject("drop", route="PATCH /bookmarks/{id}")
    with pytest.raises(httpx.TransportError):
        call(http, server, "PATCH", f"/bookmarks/{bookmark_id}", json={"archived": True})
    assert server.bookmark(bookmark_id)["archived"] is False
    server.inject("drop_after", route="/bookmarks/{id}")
    with pytest.raises(httpx.TransportError):
        call(http, server, "PATCH", f"/bookmarks/{bookmark_id}", json={"archived": True})
    assert server.bookmark(bookmark_id)["archived"] is True
    assert [e.status for e in server.exchanges] == [None, None]


def test_latency_and_slow_faults_delay_answers(server, http):
    server.latency = 0.05
    started = time.monotonic()
    call(http, server, "GET", "/tags")
    assert time.monotonic() - started >= 0.05
    server.latency = 0
    server.inject("slow", seconds=0.1)
    started = time.monotonic()
    call(http, server, "GET", "/tags")
    assert time.monotonic() - started >= 0.1
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("explode")


def test_exchanges_record_the_key_only_in_the_authorization_header(server, http):
    call(http, server, "GET", "/bookmarks", params={"limit": 5})
    exchange = server.exchanges[0]
    assert exchange.route == "GET /bookmarks" and exchange.query == {"limit": "5"}
    assert exchange.headers["authorization"] == f"Bearer {server.api_key}"
    assert server.api_key not in exchange.target


def test_seed_is_reproducible_and_varied():
    first, second = FakeKarakeep(now=NOW), FakeKarakeep(now=NOW)
    seed(first, 40)
    seed(second, 40)
    a, b = first.state, second.state
    assert [x["content"]["url"] for x in a.bookmarks.values()] == [
        x["content"]["url"] for x in b.bookmarks.values()
    ]
    assert any(x["archived"] for x in a.bookmarks.values())
    assert any(x["tags"] for x in a.bookmarks.values())
    assert any(x["title"] is None for x in a.bookmarks.values())


# -- the command line ----------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot.fake.karakeep", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    out, _ = process.communicate(timeout=5)
    return out


def test_cli_serves_seeded_bookmarks_with_the_given_key(http):
    process, first_line = run_cli("--seed", "7", "--api-key", "kk-SECRET-cli", "--latency", "0.01")
    try:
        assert "with 7 bookmarks" in first_line, first_line
        base_url = first_line.split(" at ")[1].split()[0]
        headers = {"Authorization": "Bearer kk-SECRET-cli"}
        answer = http.get(f"{base_url}/api/v1/bookmarks", headers=headers, params={"limit": 100})
        assert len(answer.json()["bookmarks"]) == 7
    finally:
        rest = stop(process)
    assert "kk-SECRET-cli" not in first_line + rest  # a key the user chose is never echoed


def test_cli_takes_the_key_from_the_environment_and_prints_only_the_builtin_one(http):
    env_key = {**os.environ, "KARAKEEP_API_KEY": "kk-SECRET-env"}
    process, first_line = run_cli(env=env_key)
    try:
        base_url = first_line.split(" at ")[1].split()[0]
        answer = http.get(
            f"{base_url}/api/v1/tags", headers={"Authorization": "Bearer kk-SECRET-env"}
        )
        assert answer.status_code == 200
    finally:
        stop(process)
    env = {k: v for k, v in os.environ.items() if k != "KARAKEEP_API_KEY"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot.fake.karakeep", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        assert DEFAULT_API_KEY in process.stdout.readline()
    finally:
        stop(process)


def test_cli_rejects_a_negative_seed():
    result = subprocess.run(
        [sys.executable, "-m", "rulebot.fake.karakeep", "--seed", "-1"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2 and "must not be negative" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_port_in_use_is_a_clean_error(server):
    result = subprocess.run(
        [sys.executable, "-m", "rulebot.fake.karakeep", "--port", str(server.port)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
    assert "Traceback" not in result.stderr


# -- the published spec ----------------------------------------------------------------------------


def test_every_endpoint_answers_in_the_published_spec_shape(http):
    """One of everything the client uses, then each answer through openapi-core."""
    api = karakeep_spec.openapi()  # skips with a reason when the document is absent
    with FakeKarakeep(now=NOW) as server:
        seed(server, 30)
        first = ok(
            call(http, server, "GET", "/bookmarks", params={"limit": 10, "includeContent": "false"})
        )
        ok(
            call(
                http,
                server,
                "GET",
                "/bookmarks",
                params={"limit": 10, "cursor": first["nextCursor"], "archived": "false"},
            )
        )
        bookmark_id = first["bookmarks"][0]["id"]
        ok(
            call(
                http, server, "GET", f"/bookmarks/{bookmark_id}", params={"includeContent": "true"}
            )
        )
        ok(
            call(
                http,
                server,
                "PATCH",
                f"/bookmarks/{bookmark_id}",
                json={"archived": True, "favourited": False},
            )
        )
        created = ok(
            call(
                http,
                server,
                "POST",
                "/bookmarks",
                json={"type": "link", "url": "https://n.example/", "title": "T"},
            ),
            201,
        )
        ok(
            call(
                http,
                server,
                "POST",
                "/bookmarks",
                json={"type": "link", "url": "https://n.example/"},
            ),
            200,
        )
        tags = {"tags": [{"tagName": "x"}, {"tagName": "y"}]}
        ok(call(http, server, "POST", f"/bookmarks/{created['id']}/tags", json=tags))
        ok(call(http, server, "DELETE", f"/bookmarks/{created['id']}/tags", json=tags))
        listed = ok(call(http, server, "GET", "/tags"))
        ok(call(http, server, "GET", "/tags", params={"limit": 2, "sort": "name"}))
        tag_id = listed["tags"][0]["id"]
        ok(call(http, server, "GET", f"/tags/{tag_id}"))
        ok(call(http, server, "PATCH", f"/tags/{tag_id}", json={"name": "renamed"}))
        ok(call(http, server, "POST", "/tags", json={"name": "fresh"}), 201)
        ok(call(http, server, "DELETE", f"/tags/{tag_id}"), 204)
        ok(call(http, server, "DELETE", f"/bookmarks/{bookmark_id}"), 204)
        ok(call(http, server, "GET", "/users/me"))
        ok(call(http, server, "GET", "/bookmarks/search", params={"q": "post", "limit": 5}))
        ok(call(http, server, "GET", "/bookmarks/check-url", params={"url": "https://n.example"}))
        http.get(f"{server.base_url}/api/v1/bookmarks")  # 401, documented as text/plain
        call(http, server, "GET", "/bookmarks/gone")  # 404 as text: a documented divergence
        checked = karakeep_spec.check_all(server)
    assert checked == 19  # all but the 404
    assert api is not None


def test_the_spec_check_catches_a_wrong_shape():
    """Not a vacuous check: a bookmark with a string ``archived`` is refused."""
    api = karakeep_spec.openapi()
    with FakeKarakeep(now=NOW) as server, httpx.Client(timeout=5) as http:
        server.add_bookmark()
        call(http, server, "GET", "/bookmarks")
        exchange = server.exchanges[0]
    answer = json.loads(exchange.response_body)
    answer["bookmarks"][0]["archived"] = "no"
    broken = dataclasses.replace(exchange, response_body=json.dumps(answer).encode())
    with pytest.raises(AssertionError, match="boolean"):
        karakeep_spec.check_exchange(api, broken)


def test_the_spec_checks_say_where_they_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("RULEBOT_SPECS", str(tmp_path))
    reason = karakeep_spec.missing_reason()
    assert reason is not None
    assert str(tmp_path / "karakeep-openapi.json") in reason and "RULEBOT_SPECS" in reason
