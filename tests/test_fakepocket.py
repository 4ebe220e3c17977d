"""The fake Pocket server behaves like the real one (pocket-api.md), quirks included.

Raw httpx over real sockets: these tests pin the server's behaviour so the
client tests (test_pocket_client.py) can trust it. The last section runs the
real sender against both ways a malformed action was answered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rulebot.fake.pocket import FAIL_ALONE, REFUSE_BATCH, FakePocket, seed
from rulebot.library.item import Item
from tests.helpers import rb

NOW = 1_700_000_000


@pytest.fixture
def server() -> Iterator[FakePocket]:
    with FakePocket(now=NOW) as fake:
        yield fake


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def call(
    http: httpx.Client, server: FakePocket, path: str, *, creds: bool = True, **body: Any
) -> httpx.Response:
    if creds:
        body = {"consumer_key": server.consumer_key, "access_token": server.access_token, **body}
    return http.post(server.base_url + path, json=body)


def listing(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer = response.json()
    return answer["list"] or {}


# -- /v3/get ---------------------------------------------------------------------------


def test_items_are_string_typed_and_tags_absent_when_untagged(server, http):
    tagged = server.add_item(url="https://a.example/1", title="A", tags=["js"], word_count=120)
    plain = server.add_item(url="https://b.example/2", title="B", time_to_read=4)
    items = listing(call(http, server, "/v3/get", state="all", detailType="complete"))
    for field in ("item_id", "status", "favorite", "time_added", "time_updated", "time_read"):
        assert isinstance(items[tagged][field], str), field
    assert items[tagged]["word_count"] == "120"
    assert items[tagged]["time_read"] == "0"  # "0" = never
    assert items[tagged]["tags"] == {"js": {"item_id": tagged, "tag": "js"}}
    assert "tags" not in items[plain]
    assert items[plain]["time_to_read"] == 4
    assert isinstance(items[plain]["sort_id"], int)


def test_detail_type_simple_omits_tags_and_complete_includes_them(server, http):
    item_id = server.add_item(tags=["news"])
    simple = listing(call(http, server, "/v3/get", detailType="simple"))
    complete = listing(call(http, server, "/v3/get", detailType="complete"))
    assert "tags" not in simple[item_id]
    assert set(complete[item_id]["tags"]) == {"news"}


def test_empty_result_is_a_json_array_with_status_2(server, http):
    answer = call(http, server, "/v3/get", state="all").json()
    assert answer["list"] == []
    assert answer["status"] == 2
    assert answer["complete"] == 1 and answer["error"] is None
    assert answer["search_meta"] == {"search_type": "normal"}
    assert answer["since"] == server.now and answer["maxActions"] == 30


def test_filters_state_favorite_tag_untagged_content_type(server, http):
    unread = server.add_item(tags=["js"])
    archived = server.add_item(status=1, favorite=True)
    video = server.add_item(has_video=2, is_article=False)

    def ids(**params: Any) -> set[str]:
        return set(listing(call(http, server, "/v3/get", **params)))

    assert ids() == {unread, archived, video}  # the default state is all
    assert ids(state="unread") == ids(state="queue") == ids(state="Queue") == {unread, video}
    assert ids(state="archive") == ids(state="read") == ids(state="READ") == {archived}
    assert ids(state="all") == {unread, archived, video}
    assert ids(state="all", favorite=1) == {archived}
    assert ids(favorite=True) == ids(favorite="true") == {archived}  # JSON booleans too
    assert ids(favorite=False) == ids(favorite="0") == {unread, video}
    assert ids(contentType="all") == ids(contentType="ARTICLE", sort="newest") | {video}
    assert ids(state="all", tag="JS") == {unread}
    assert ids(state="all", tag="_untagged_") == {archived, video}
    assert ids(state="all", contentType="video") == {video}
    assert ids(state="all", contentType="article") == {unread, archived}


def test_sort_newest_oldest_the_later_servers_others_and_unknown_sorts_are_400(server, http):
    first = server.add_item(time_added=100, title="B")
    second = server.add_item(time_added=200, title="A")
    assert list(listing(call(http, server, "/v3/get", sort="newest"))) == [second, first]
    assert list(listing(call(http, server, "/v3/get", sort="oldest"))) == [first, second]
    assert list(listing(call(http, server, "/v3/get"))) == [second, first]  # newest by default
    # the later server took title and site too (pocket-api.md, "Real server
    # behaviour"; the docs' 400 was the old server's): with relevance (without
    # a search), longest and shortest, an order it never stated: newest first
    for fallback in ("title", "site", "relevance", "longest", "shortest", "Newest"):
        assert list(listing(call(http, server, "/v3/get", sort=fallback))) == [second, first]
    response = call(http, server, "/v3/get", sort="alphabetical")
    assert response.status_code == 400
    assert response.headers["X-Error-Code"] == "130"


def test_since_returns_changes_and_deleted_stubs(server, http):
    kept = server.add_item()
    changed = server.add_item()
    doomed = server.add_item()
    cursor = call(http, server, "/v3/get", state="all").json()["since"]
    actions = [
        {"action": "archive", "item_id": changed},
        {"action": "delete", "item_id": doomed},
    ]
    assert call(http, server, "/v3/send", actions=actions).status_code == 200
    items = listing(call(http, server, "/v3/get", state="all", since=cursor))
    assert set(items) == {changed, doomed}
    assert items[doomed] == {"item_id": doomed, "status": "2"}
    assert items[changed]["status"] == "1"
    assert kept not in items
    assert Item.from_pocket(items[doomed]).is_deleted
    # without since, deleted items are gone
    assert set(listing(call(http, server, "/v3/get", state="all"))) == {kept, changed}


def test_changes_do_not_move_the_clock_and_noops_stamp_nothing(server, http):
    ids = [server.add_item() for _ in range(5)]
    actions = [{"action": "archive", "item_id": i} for i in ids]
    call(http, server, "/v3/send", actions=actions)
    assert server.now == NOW  # five changes, and the clock did not drift
    stamped = server.item(ids[0])
    assert stamped["time_updated"] == stamped["time_read"] == str(NOW)
    server.now = NOW + 7
    call(http, server, "/v3/send", actions=[{"action": "archive", "item_id": ids[0]}])
    assert server.item(ids[0])["time_updated"] == str(NOW)  # a no-op stamps nothing


def test_an_action_time_stamps_the_item(server, http):
    item_id = server.add_item(tags=["a"])
    steps = [
        ({"action": "archive"}, NOW - 3000),
        ({"action": "favorite"}, str(NOW - 2000)),  # a string of digits works too
        ({"action": "tags_add", "tags": "b"}, NOW - 1000),
    ]
    for action, when in steps:
        call(http, server, "/v3/send", actions=[{**action, "item_id": item_id, "time": when}])
        assert server.item(item_id)["time_updated"] == str(when), action
    item = server.item(item_id)
    assert (item["time_read"], item["time_favorited"]) == (str(NOW - 3000), str(NOW - 2000))
    add = {"action": "add", "url": "https://t.example/", "time": 5}
    added = call(http, server, "/v3/send", actions=[add]).json()["action_results"][0]
    assert server.item(added["item_id"])["time_added"] == "5"
    assert server.now == NOW


def test_a_cursor_sees_every_later_change_even_within_its_second(server, http):
    kept, changed = server.add_item(), server.add_item()
    cursor = call(http, server, "/v3/get", count=30).json()["since"]
    assert cursor == NOW  # the clock is frozen: the change below has the same second
    assert listing(call(http, server, "/v3/get", since=cursor)) == {}  # nothing new yet
    call(http, server, "/v3/send", actions=[{"action": "favorite", "item_id": changed}])
    answer = call(http, server, "/v3/get", since=cursor).json()
    assert set(answer["list"]) == {changed}
    assert listing(call(http, server, "/v3/get", since=answer["since"])) == {}  # idle again
    assert kept


def test_stats_counts_the_library(server, http):
    server.add_item(), server.add_item(status=1), server.add_item(status=2)
    answer = call(http, server, "/v3/stats").json()
    assert answer == {"count_list": 2, "count_unread": 1, "count_read": 1}


def test_since_in_milliseconds_is_converted(server, http):
    old = server.add_item(time_updated=NOW - 100)
    new = server.add_item(time_updated=NOW - 10)
    assert set(listing(call(http, server, "/v3/get", since=(NOW - 50) * 1000))) == {new}
    assert set(listing(call(http, server, "/v3/get", since=NOW - 50))) == {new}
    assert old


def test_count_defaults_to_30_and_is_checked(http):
    with FakePocket(now=NOW) as server:
        made = [server.add_item(time_updated=NOW - 10) for _ in range(45)]
        assert len(listing(call(http, server, "/v3/get"))) == 30  # the real default page
        assert len(listing(call(http, server, "/v3/get", offset=30))) == 15
        assert len(listing(call(http, server, "/v3/get", count=40))) == 40
        # with `since` and no count the later server answered everything (up to 5000)
        assert len(listing(call(http, server, "/v3/get", since=NOW - 20))) == len(made)
        for count in (0, 5001, -1, "x"):
            refused = call(http, server, "/v3/get", count=count)
            assert (refused.status_code, refused.headers["X-Error-Code"]) == (400, "130"), count


def test_short_pages_total_and_offset(http):
    with FakePocket(now=NOW, max_page=3) as server:
        made = {server.add_item() for _ in range(7)}
        seen: list[str] = []
        pages = []
        while True:
            answer = call(http, server, "/v3/get", state="all", count=5, offset=len(seen), total=1)
            got = listing(answer)
            if not got:
                break
            pages.append(len(got))
            assert answer.json()["total"] == "7"  # a string
            seen.extend(got)
        assert pages == [3, 3, 1]  # shorter than count=5, yet not the end
        assert set(seen) == made and len(seen) == 7


def test_over_page_returns_more_than_asked(http):
    with FakePocket(now=NOW, over_page=2) as server:
        for _ in range(6):
            server.add_item()
        assert len(listing(call(http, server, "/v3/get", count=3))) == 5


def test_complete_entries_normalise_with_item_from_pocket(http):
    with FakePocket(now=NOW) as server:
        seed(server, 40)
        items = listing(call(http, server, "/v3/get", state="all", detailType="complete", count=40))
        assert len(items) == 40
        parsed = [Item.from_pocket(raw) for raw in items.values()]
        assert any(item.tags for item in parsed) and any(item.tags == () for item in parsed)
        assert {item.status for item in parsed} == {0, 1}


def test_a_seeded_library_was_changed_over_time_so_since_picks_out_the_later_ones(http):
    with FakePocket(now=NOW) as server:
        seed(server, 60)
        items = server.items.values()
        for item in items:  # last changed when added, read or favourited, never after now
            stamps = (item["time_added"], item["time_read"], item["time_favorited"])
            assert item["time_updated"] == str(max(map(int, stamps)))
            assert int(item["time_updated"]) <= NOW
        updated = sorted(int(item["time_updated"]) for item in items)
        middle = updated[len(updated) // 2]
        later = listing(call(http, server, "/v3/get", since=middle, state="all", count=100))
        expected = {i["item_id"] for i in items if int(i["time_updated"]) > middle}
        assert set(later) == expected and 0 < len(expected) < len(items)


# -- /v3/send --------------------------------------------------------------------------

SEND_CASES = [
    ({"action": "archive"}, {"status": "1"}),
    ({"action": "readd"}, {"status": "0", "time_read": "0"}),
    ({"action": "favorite"}, {"favorite": "1"}),
    ({"action": "unfavorite"}, {"favorite": "0", "time_favorited": "0"}),
    ({"action": "delete"}, {"status": "2"}),
    ({"action": "tags_add", "tags": " New ,js"}, {"tags": ["js", "old", "new"]}),
    ({"action": "tags_remove", "tags": "JS"}, {"tags": ["old"]}),
    ({"action": "tags_replace", "tags": "a,b"}, {"tags": ["a", "b"]}),
    ({"action": "tags_clear"}, {"tags": None}),
]


@pytest.mark.parametrize(("action", "expected"), SEND_CASES, ids=lambda c: str(c)[:30])
def test_each_item_action_has_its_effect(server, http, action, expected):
    start = {"archive": 0, "readd": 1}.get(action["action"], 0)
    item_id = server.add_item(
        tags=["js", "old"], status=start, favorite=action["action"] == "unfavorite"
    )
    response = call(http, server, "/v3/send", actions=[{**action, "item_id": item_id}])
    answer = response.json()
    assert answer["status"] == 1 and answer["action_errors"] == [None]
    result = answer["action_results"][0]
    if action["action"] == "readd":
        assert result["item_id"] == item_id  # the later server answers in the add shape
        assert "status" not in result and "tags" not in result
    else:
        assert result is True
    item = server.item(item_id)
    for field, value in expected.items():
        if field == "tags":
            assert (list(item["tags"]) if "tags" in item else None) == value
        else:
            assert item[field] == value, field
    if action["action"] == "archive":
        assert item["time_read"] == str(server.now)
    if action["action"] == "tags_clear":  # and tags_replace with nothing does the same
        server.add_item(item_id="77", tags=["x"])
        call(http, server, "/v3/send", actions=[{"action": "tags_replace", "item_id": "77"}])
        assert "tags" not in server.item("77")


def test_tags_are_lowercased_trimmed_and_cut_to_25(server, http):
    item_id = server.add_item()
    long_tag = "A" * 30
    actions = [{"action": "tags_add", "item_id": item_id, "tags": f"  Mixed Case ,{long_tag}"}]
    call(http, server, "/v3/send", actions=actions)
    assert list(server.item(item_id)["tags"]) == ["mixed case", "a" * 25]


def test_tag_rename_and_delete_are_account_wide(server, http):
    one = server.add_item(tags=["js", "keep"])
    two = server.add_item(tags=["js"])
    other = server.add_item(tags=["keep"])
    actions = [
        {"action": "tag_rename", "old_tag": "js", "new_tag": "JavaScript"},
        {"action": "tag_delete", "tag": "keep"},
    ]
    assert call(http, server, "/v3/send", actions=actions).json()["action_results"] == [True, True]
    assert list(server.item(one)["tags"]) == ["javascript"]
    assert list(server.item(two)["tags"]) == ["javascript"]
    assert "tags" not in server.item(other)


ADD_SHAPE = {
    "item_id", "normal_url", "resolved_id", "resolved_url", "resolved_normal_url", "given_url",
    "title", "excerpt", "word_count", "date_resolved", "date_published", "lang", "has_image",
    "has_video", "is_index", "is_article", "authors", "images", "videos",
}  # fmt: skip


def test_add_answers_in_the_add_shape_and_never_duplicates(server, http):
    existing = server.add_item(url="https://example.com/saved")
    actions = [
        {"action": "add", "url": "https://example.com/new", "title": "New", "tags": "x"},
        {"action": "add", "url": "https://example.com/saved", "tags": "y"},
    ]
    results = call(http, server, "/v3/send", actions=actions).json()["action_results"]
    new = results[0]
    assert set(new) >= ADD_SHAPE
    assert not {"tags", "status", "given_title", "time_added"} & set(new)  # not a /v3/get item
    assert (new["given_url"], new["normal_url"], new["title"]) == (
        "https://example.com/new", "https://example.com/new", "New",
    )  # fmt: skip
    assert list(server.item(new["item_id"])["tags"]) == ["x"]
    assert results[1]["item_id"] == existing
    assert list(server.item(existing)["tags"]) == ["y"]
    assert len(server.items) == 2


def test_failed_action_is_false_with_error_and_later_actions_still_run(server, http):
    item_id = server.add_item()
    actions = [
        {"action": "archive", "item_id": "999"},  # does not exist
        {"action": "favorite", "item_id": item_id},
    ]
    response = call(http, server, "/v3/send", actions=actions)
    answer = response.json()
    assert response.status_code == 200 and answer["status"] == 1
    assert answer["action_results"] == [False, True]
    error = answer["action_errors"][0]
    assert error["code"] == 422 and error["message"] and error["type"]
    assert answer["action_errors"][1] is None
    assert server.item(item_id)["favorite"] == "1"


def test_fail_actions_injection(server, http):
    first, second = server.add_item(), server.add_item()
    server.fail_actions[second] = (500, "Something Went Wrong")
    actions = [{"action": "archive", "item_id": i} for i in (first, second)]
    answer = call(http, server, "/v3/send", actions=actions).json()
    assert answer["action_results"] == [True, False]
    assert answer["action_errors"][1] == {
        "message": "Something Went Wrong",
        "type": "Internal Server Error",
        "code": 500,
    }
    assert server.item(first)["status"] == "1"  # no rollback
    assert server.item(second)["status"] == "0"


# Refused with a 400 by the old and the later server alike.
MALFORMED = [
    {"action": "archive", "item_id": "abc"},
    {"action": "archive"},
    {"action": "add", "url": "not a url"},
    {"action": "tags_add", "item_id": "1", "tags": " , "},
    {"action": "tags_add", "item_id": "1", "tags": "a,"},
    {"action": "tags_add", "item_id": "1", "tags": "a,,b"},
    {"action": "tags_remove", "item_id": "1"},
    {"action": "tag_rename", "old_tag": "a"},
    {"action": "tag_delete"},
    {"action": "archive", "item_id": "1", "time": "yesterday"},
    {"action": "archive", "item_id": "1", "time": "2024-01-01"},
    "archive",
]
# The old server refused the batch; the later one let these fail alone.
FAILS_ALONE = [
    {"action": "explode", "item_id": "1"},
    {"action": "archive", "url": "https://example.com/a"},
    {"action": "add", "item_id": "1"},
]


@pytest.mark.parametrize("mode", [FAIL_ALONE, REFUSE_BATCH])
@pytest.mark.parametrize("bad", MALFORMED, ids=lambda a: json.dumps(a))
def test_one_malformed_action_fails_the_whole_request_before_anything_runs(http, bad, mode):
    with FakePocket(now=NOW, malformed_actions=mode) as server:
        item_id = server.add_item(item_id="1")
        actions = [{"action": "favorite", "item_id": item_id}, bad]
        response = call(http, server, "/v3/send", actions=actions)
        assert response.status_code == 400
        assert response.headers["X-Error-Code"] == "130"
        assert response.headers["X-Error"]
        assert server.item(item_id)["favorite"] == "0"  # the valid first action did not run
        assert server.applied == []


@pytest.mark.parametrize("bad", FAILS_ALONE, ids=lambda a: json.dumps(a))
def test_the_later_server_lets_some_malformed_actions_fail_alone(http, bad):
    with FakePocket(now=NOW) as server:  # FAIL_ALONE is the default: the later server
        item_id = server.add_item(item_id="1", url="https://example.com/a")
        good = {"action": "favorite", "item_id": item_id}
        answer = call(http, server, "/v3/send", actions=[good, bad, good]).json()
        assert answer["status"] == 1
        assert answer["action_results"] == [True, False, True]
        error = answer["action_errors"][1]
        assert error["code"] == 400 and "action 1" in error["message"] and error["type"]
        assert server.item(item_id)["favorite"] == "1"
        assert server.applied == [good, good]
    with FakePocket(now=NOW, malformed_actions=REFUSE_BATCH) as server:
        item_id = server.add_item(item_id="1", url="https://example.com/a")
        good = {"action": "favorite", "item_id": item_id}
        answer = call(http, server, "/v3/send", actions=[good, bad, good])
        if bad["action"] == "add":  # the old server saved that item again
            assert answer.json()["action_results"][1]["item_id"] == item_id
        else:
            assert answer.status_code == 400 and server.applied == []
            assert server.item(item_id)["favorite"] == "0"


def test_empty_actions_and_unknown_mode_are_refused(server, http):
    response = call(http, server, "/v3/send", actions=[])
    assert (response.status_code, response.headers["X-Error-Code"]) == (400, "130")
    with pytest.raises(ValueError, match="malformed_actions"):
        FakePocket(malformed_actions="sometimes")
    server.add_item(item_id="5", tags=["a"])
    for mode, status in ((FAIL_ALONE, 200), (REFUSE_BATCH, 400)):
        server.malformed_actions = mode  # tags_replace with nothing: tags_clear, or a 400
        empty = {"action": "tags_replace", "item_id": "5", "tags": ""}
        assert call(http, server, "/v3/send", actions=[empty]).status_code == status


def test_form_encoded_bodies_are_accepted(server, http):
    item_id = server.add_item()
    creds = {"consumer_key": server.consumer_key, "access_token": server.access_token}
    actions = json.dumps([{"action": "archive", "item_id": item_id}])
    response = http.post(server.base_url + "/v3/send", data={**creds, "actions": actions})
    assert response.json()["action_results"] == [True]
    response = http.post(server.base_url + "/v3/get", data={**creds, "state": "archive"})
    assert list(listing(response)) == [item_id]
    assert server.requests[-1].body["state"] == "archive"


def test_v3_add(server, http):
    answer = call(
        http, server, "/v3/add", url="https://example.com/x", title="X", tags="a,B"
    ).json()
    assert answer["status"] == 1
    assert set(answer["item"]) >= ADD_SHAPE and answer["item"]["title"] == "X"
    assert set(server.item(answer["item"]["item_id"])["tags"]) == {"a", "b"}
    again = call(http, server, "/v3/add", url="https://example.com/x").json()
    assert again["item"]["item_id"] == answer["item"]["item_id"]
    assert call(http, server, "/v3/add", url="ftp:nothing").status_code == 400


# -- credentials, headers, recording ---------------------------------------------------------


def test_every_response_has_x_source_and_limit_headers(server, http):
    ok = call(http, server, "/v3/get")
    assert ok.headers["X-Source"] == "Pocket"
    assert ok.headers["X-Limit-User-Limit"] == "320"
    assert ok.headers["X-Limit-User-Remaining"] == "319"
    assert ok.headers["X-Limit-Key-Remaining"] == "9999"
    denied = call(http, server, "/v3/get", access_token="wrong")
    assert denied.status_code == 401
    assert denied.headers["X-Error-Code"] == "107" and denied.headers["X-Error"]
    assert denied.headers["X-Source"] == "Pocket"
    assert "X-Limit-Key-Remaining" in denied.headers
    assert "X-Limit-User-Remaining" not in denied.headers  # only Key headers on a 401


def test_wrong_consumer_key_and_missing_permission(server, http):
    wrong = call(http, server, "/v3/get", consumer_key="nope")
    assert (wrong.status_code, wrong.headers["X-Error-Code"]) == (403, "152")
    server.permissions.discard("modify")
    denied = call(http, server, "/v3/send", actions=[])
    assert (denied.status_code, denied.headers["X-Error-Code"]) == (403, "151")
    assert denied.headers["X-Limit-User-Remaining"] != "0"  # not a rate limit
    assert call(http, server, "/v3/get").status_code == 200


def test_requests_are_recorded(server, http):
    call(http, server, "/v3/get", state="all")
    http.post(server.base_url + "/v3/get?state=all", json={})
    first, second = server.requests
    assert (first.method, first.path, first.url) == ("POST", "/v3/get", "/v3/get")
    assert first.body["state"] == "all"
    assert first.headers["content-type"] == "application/json"
    assert second.url == "/v3/get?state=all"
    assert server.calls("/v3/get") == 2 and server.calls("/v3/send") == 0


# -- rate limits ----------------------------------------------------------------------------


def test_rate_limit_spends_then_refills_after_reset(http):
    with FakePocket(now=NOW, user_limit=2, reset_seconds=1) as server:
        assert call(http, server, "/v3/get").headers["X-Limit-User-Remaining"] == "1"
        assert call(http, server, "/v3/get").headers["X-Limit-User-Remaining"] == "0"
        limited = call(http, server, "/v3/get")
        assert limited.status_code == 403
        assert limited.headers["X-Limit-User-Remaining"] == "0"
        assert limited.headers["X-Limit-User-Reset"] == "1"
        assert limited.headers["X-Error-Code"]
        time.sleep(1.05)
        refilled = call(http, server, "/v3/get")
        assert refilled.status_code == 200
        assert refilled.headers["X-Limit-User-Remaining"] == "1"


def test_key_limit_is_separate(http):
    with FakePocket(now=NOW, key_limit=1) as server:
        assert call(http, server, "/v3/get").status_code == 200
        limited = call(http, server, "/v3/get")
        assert limited.status_code == 403
        assert limited.headers["X-Limit-Key-Remaining"] == "0"
        assert limited.headers["X-Limit-User-Remaining"] == "319"


# -- faults -------------------------------------------------------------------------------


def test_faults_are_queued_per_request_and_per_path(server, http):
    server.inject("503", count=2, path="/v3/send", retry_after=7)
    assert call(http, server, "/v3/get").status_code == 200  # other path unaffected
    actions = [{"action": "tags_clear", "item_id": server.add_item()}]
    for _ in range(2):
        down = call(http, server, "/v3/send", actions=actions)
        assert down.status_code == 503
        assert down.headers["X-Error-Code"] == "199"
        assert down.headers["Retry-After"] == "7"
    assert call(http, server, "/v3/send", actions=actions).status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [("500", 500, "text/html"), ("400", 400, "text/html"), ("html", 200, "text/html")],
)
def test_status_and_html_faults(server, http, fault, status, kind):
    server.inject(fault)
    response = call(http, server, "/v3/get")
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith(kind)
    with pytest.raises(ValueError):
        response.json()


def test_garbage_and_answer_faults(server, http):
    server.inject("garbage")
    server.inject("answer", answer={"status": 1, "list": "oops"})
    with pytest.raises(ValueError):
        call(http, server, "/v3/get").json()
    assert call(http, server, "/v3/get").json() == {"status": 1, "list": "oops"}


def test_drop_closes_without_answer_and_drop_after_does_the_work(server, http):
    item_id = server.add_item()
    server.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        call(http, server, "/v3/send", actions=[{"action": "archive", "item_id": item_id}])
    assert server.item(item_id)["status"] == "0"
    server.inject("drop_after")
    with pytest.raises(httpx.RemoteProtocolError):
        call(http, server, "/v3/send", actions=[{"action": "archive", "item_id": item_id}])
    assert server.item(item_id)["status"] == "1"


def test_slow_answers_late(server):
    server.inject("slow", seconds=0.5)
    with httpx.Client(timeout=0.2) as impatient, pytest.raises(httpx.ReadTimeout):
        call(impatient, server, "/v3/get")
    with httpx.Client(timeout=5) as patient:
        server.inject("slow", seconds=0.3)
        started = time.monotonic()
        assert call(patient, server, "/v3/get").status_code == 200
        assert time.monotonic() - started >= 0.3


def test_unknown_fault_is_refused(server):
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("explode")


# -- OAuth ----------------------------------------------------------------------------------


def test_oauth_flow_json_and_form(server, http):
    key = server.consumer_key
    asked = http.post(
        server.base_url + "/v3/oauth/request",
        json={"consumer_key": key, "redirect_uri": "https://localhost/cb"},
        headers={"X-Accept": "application/json"},
    )
    code = asked.json()["code"]
    assert asked.headers["X-Limit-Key-Remaining"] == "9999"
    assert "X-Limit-User-Remaining" not in asked.headers  # no user before the token
    early = http.post(
        server.base_url + "/v3/oauth/authorize", json={"consumer_key": key, "code": code}
    )
    assert (early.status_code, early.headers["X-Error-Code"]) == (403, "158")  # not approved yet
    page = http.get(
        server.base_url + "/auth/authorize",
        params={"request_token": code, "redirect_uri": "https://localhost/cb"},
    )
    assert (page.status_code, page.headers["Location"]) == (302, "https://localhost/cb")
    form = http.post(
        server.base_url + "/v3/oauth/authorize", json={"consumer_key": key, "code": code}
    )
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form.text == f"access_token={server.access_token}&username=fakeuser"
    reused = http.post(
        server.base_url + "/v3/oauth/authorize", json={"consumer_key": key, "code": code}
    )
    assert (reused.status_code, reused.headers["X-Error-Code"]) == (403, "159")


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v3/oauth/request", {"redirect_uri": "x"}, 400, "138"),
        ("/v3/oauth/request", {"consumer_key": "K"}, 400, "140"),
        ("/v3/oauth/request", {"consumer_key": "bad", "redirect_uri": "x"}, 403, "152"),
        ("/v3/oauth/authorize", {"consumer_key": "K"}, 400, "182"),
        ("/v3/oauth/authorize", {"consumer_key": "K", "code": "nope"}, 400, "185"),
    ],
)
def test_oauth_errors(server, http, path, body, status, code):
    if body.get("consumer_key") == "K":
        body = {**body, "consumer_key": server.consumer_key}
    response = http.post(server.base_url + path, json=body)
    assert (response.status_code, response.headers["X-Error-Code"]) == (status, code)


def request_token(server: FakePocket, http: httpx.Client) -> str:
    return http.post(
        server.base_url + "/v3/oauth/request",
        json={"consumer_key": server.consumer_key, "redirect_uri": "x"},
        headers={"X-Accept": "application/json"},
    ).json()["code"]


def authorize(server: FakePocket, http: httpx.Client, code: str) -> httpx.Response:
    body = {"consumer_key": server.consumer_key, "code": code}
    return http.post(server.base_url + "/v3/oauth/authorize", json=body)


def test_oauth_approval_page_approve_method_and_auto_approve(http):
    with FakePocket(now=NOW) as server:
        unknown = http.get(server.base_url + "/auth/authorize?request_token=nope")
        assert unknown.status_code == 400
        code = request_token(server, http)
        approved = http.get(server.base_url + f"/auth/authorize?request_token={code}")
        assert approved.status_code == 200 and "Approved" in approved.text  # no redirect_uri
        assert authorize(server, http, code).status_code == 200
        code = request_token(server, http)
        server.approve(code)
        assert authorize(server, http, code).status_code == 200
        server.reject_authorization = True  # the user says no on the page
        code = request_token(server, http)
        assert http.get(server.base_url + f"/auth/authorize?request_token={code}").is_error
        assert authorize(server, http, code).headers["X-Error-Code"] == "158"
    with FakePocket(now=NOW, auto_approve=True) as server:
        assert authorize(server, http, request_token(server, http)).status_code == 200


def test_oauth_user_rejected(server, http):
    key = server.consumer_key
    code = http.post(
        server.base_url + "/v3/oauth/request",
        json={"consumer_key": key, "redirect_uri": "x"},
        headers={"X-Accept": "application/json"},
    ).json()["code"]
    server.reject_authorization = True
    response = http.post(
        server.base_url + "/v3/oauth/authorize", json={"consumer_key": key, "code": code}
    )
    assert (response.status_code, response.headers["X-Error-Code"]) == (403, "158")


# -- command line ----------------------------------------------------------------------------


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POCKET_")}
    command = [sys.executable, "-m", *args, "--port", "0"]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**clean, **(env or {})}
    )


def read_banner(process: subprocess.Popen[str]) -> tuple[str, str, str]:
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(3)]
    base_url = lines[0].split(" at ")[1].split()[0]
    return base_url, lines[1].strip().split("=", 1)[1], lines[2].strip().split("=", 1)[1]


@pytest.mark.parametrize("module", ["rulebot.fake.pocket", "rulebot.fakepocket"])
def test_command_line_serves_seeded_items(http, module):
    with start_cli(module, "--seed-items", "5") as process:
        try:
            base_url, key, token = read_banner(process)
            body = {"consumer_key": key, "access_token": token, "state": "all"}
            assert len(http.post(base_url + "/v3/get", json=body).json()["list"]) == 5
        finally:
            process.terminate()


def test_command_line_credentials_and_behaviour_flags(http):
    flags = ("--consumer-key", "ck-FLAG", "--malformed-actions", "refuse-batch", "--auto-approve")
    env = {"POCKET_ACCESS_TOKEN": "at-FROM-ENV"}
    with start_cli("rulebot.fake.pocket", *flags, env=env) as process:
        try:
            base_url, key, token = read_banner(process)
            assert "ck-FLAG" not in key and "at-FROM-ENV" not in token  # never echoed
            creds = {"consumer_key": "ck-FLAG", "access_token": "at-FROM-ENV"}
            assert http.post(base_url + "/v3/get", json=creds).status_code == 200
            bad = {**creds, "actions": [{"action": "explode"}]}
            assert http.post(base_url + "/v3/send", json=bad).status_code == 400
            asked = http.post(
                base_url + "/v3/oauth/request",
                json={"consumer_key": "ck-FLAG", "redirect_uri": "x"},
                headers={"X-Accept": "application/json"},
            ).json()["code"]
            granted = http.post(
                base_url + "/v3/oauth/authorize",
                json={"consumer_key": "ck-FLAG", "code": asked},
                headers={"X-Accept": "application/json"},
            )
            assert granted.json()["access_token"] == "at-FROM-ENV"
        finally:
            process.terminate()


def test_command_line_bad_input_is_a_message_not_a_traceback():
    with FakePocket() as busy:  # its port is taken
        done = subprocess.run(
            [sys.executable, "-m", "rulebot.fake.pocket", "--port", str(busy.port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{busy.port}" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "rulebot.fake.pocket", "--max-page", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "--max-page" in done.stderr and "Traceback" not in done.stderr


# -- the real sender against both ways of answering a malformed action -------------------------

SENDER_RULES = """\
version: 1
pocket:
  base_url: {base_url}
  batch_size: 30
rules:
  - name: archive-old
    where: {{tag: old}}
    actions: [archive, {{tags_add: [done]}}]
"""


@pytest.mark.parametrize("mode", [FAIL_ALONE, REFUSE_BATCH])
@pytest.mark.parametrize(
    "bad",
    [
        {"action": "archive", "url": "https://site.example/1"},  # a url, not an item_id
        {"action": "explode", "item_id": "1000000001"},  # no such action
    ],
    ids=["url-for-item-id", "unknown-action"],
)
def test_sender_lands_the_good_actions_once_and_reports_the_bad_one(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str], mode: str, bad: dict[str, Any]
) -> None:
    fake_pocket.malformed_actions = mode
    for i in range(8):
        fake_pocket.add_item(url=f"https://site.example/{i}", tags=["old"] if i % 2 else [])
    Path("rules.yaml").write_text(SENDER_RULES.format(base_url=fake_pocket.base_url))
    assert rb(capsys, "plan", "--out", "plan.json")[0] == 0
    plan = json.loads(Path("plan.json").read_text())
    good = [entry["send"] for entry in plan["actions"]]
    assert len(good) == 8
    # a hand-edited plan: one garbled action (on an unchanged item) among the good ones
    garbled = {"rule": "hand-edited", "send": bad, "item": plan["actions"][0]["item"]}
    plan["actions"].insert(3, garbled)
    Path("plan.json").write_text(json.dumps(plan))

    code, out, err = rb(capsys, "apply", "plan.json", "--format", "json")

    assert code == 1, err
    result = json.loads(out)
    assert result["summary"]["succeeded"] == 8 and result["summary"]["failed"] == 1
    (failed,) = result["failed"]
    assert failed["rule"] == "hand-edited" and failed["send"] == bad
    landed = fake_pocket.applied
    assert sorted(map(json.dumps, landed)) == sorted(map(json.dumps, good))  # each once
    sends = fake_pocket.calls("/v3/send")
    assert sends == (1 if mode == FAIL_ALONE else sends)  # the old server needed splitting
    if mode == REFUSE_BATCH:
        assert sends > 2 and "refused" in failed["error"]
