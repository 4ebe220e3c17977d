"""The Karakeep API client against the fake Karakeep over real sockets, and the bookmark mapping.

Every answer the fake gives in these tests is checked against Karakeep's published
OpenAPI document at teardown (tests/karakeep_spec.py), so the client is tested
against shapes the real service documents.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from rulebot.errors import ItemDataError
from rulebot.fake.karakeep import FakeKarakeep, seed
from rulebot.library.item import ARCHIVED, UNREAD
from rulebot.sources.karakeep.api import (
    KarakeepAuthError,
    KarakeepClient,
    KarakeepError,
    NotFound,
    TagNameConflict,
    bookmark_to_item,
)
from tests import karakeep_spec

NOW = 1_795_672_800  # 2026-11-26T06:00:00Z
KEY = "ak2_SECRETkey000000000001_SECRETsecret0000000000000000042"


@pytest.fixture
def server() -> Iterator[FakeKarakeep]:
    with FakeKarakeep(now=NOW, api_key=KEY) as fake:
        yield fake
    if karakeep_spec.missing_reason() is None:
        karakeep_spec.check_all(fake)


class Sleeps(list[float]):
    """Records the waits the client asks for, and waits only a moment (the server is real)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.01))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(server: FakeKarakeep, sleeps: Sleeps) -> Iterator[KarakeepClient]:
    with KarakeepClient(
        server.base_url, KEY, timeout=2, backoff_base=0.01, sleep=sleeps
    ) as karakeep:
        yield karakeep


def no_key_anywhere(server: FakeKarakeep) -> None:
    for exchange in server.exchanges:
        assert KEY not in exchange.target
        assert KEY not in exchange.raw_body.decode()
        assert exchange.headers.get("authorization") == f"Bearer {KEY}"


# -- listing -------------------------------------------------------------------------------


def test_250_bookmarks_in_exactly_3_list_requests(server, client):
    for n in range(250):
        server.add_bookmark(created_at=NOW - n // 4)  # ties within a second
    listed = list(client.iter_bookmarks())
    assert len({b["id"] for b in listed}) == 250
    assert server.calls("GET /bookmarks") == 3 and server.calls() == 3
    first = server.exchanges[0]
    assert first.query == {"limit": "100", "includeContent": "false"}
    no_key_anywhere(server)


def test_an_idle_scan_of_1000_bookmarks_is_10_requests_and_nothing_else():
    with FakeKarakeep(now=NOW, api_key=KEY) as fake, KarakeepClient(fake.base_url, KEY) as client:
        seed(fake, 1000)
        assert sum(1 for _ in client.iter_bookmarks()) == 1000
        assert fake.calls() == fake.calls("GET /bookmarks") == 10


def test_page_size_and_filters(server, sleeps):
    for n in range(20):
        server.add_bookmark(archived=n % 2 == 0, favourited=n < 3)
    with KarakeepClient(server.base_url, KEY, page_size=7, sleep=sleeps) as client:
        assert len(list(client.iter_bookmarks())) == 20
        assert server.calls("GET /bookmarks") == 3
        assert all(b["archived"] for b in client.iter_bookmarks(archived=True))
        assert len(list(client.iter_bookmarks(archived=False, favourited=True))) == 1
    for bad in (0, 101):
        with pytest.raises(KarakeepError, match="1 to 100"):
            KarakeepClient(server.base_url, KEY, page_size=bad)


def test_a_server_that_repeats_its_cursor_is_stopped(server, client, monkeypatch):
    for _ in range(3):
        server.add_bookmark()
    stuck = server._list_bookmarks

    def same_page(*, query: dict[str, str], body: Any) -> Any:
        query.pop("cursor", None)  # always the first page, always a next cursor
        return stuck(query={**query, "limit": "1"}, body=body)

    monkeypatch.setattr(server, "_list_bookmarks", same_page)
    with pytest.raises(KarakeepError, match="nothing new"):
        list(client.iter_bookmarks())
    assert server.calls() == 2


# -- one bookmark --------------------------------------------------------------------------


def test_get_update_delete_and_their_not_found(server, client):
    bookmark_id = server.add_bookmark("https://a.example/1", tags=["keep"])
    assert client.get_bookmark(bookmark_id)["content"]["url"] == "https://a.example/1"
    answer = client.update_bookmark(bookmark_id, archived=True, favourited=True)
    assert answer["archived"] and answer["favourited"] and answer["tags"][0]["name"] == "keep"
    assert server.bookmark(bookmark_id)["archived"] is True
    client.update_bookmark(bookmark_id, favourited=False)
    assert server.bookmark(bookmark_id)["archived"] is True  # only what was asked changes
    assert server.bookmark(bookmark_id)["favourited"] is False
    client.delete_bookmark(bookmark_id)
    assert bookmark_id not in server.state.bookmarks
    for action in (
        lambda: client.delete_bookmark(bookmark_id),
        lambda: client.update_bookmark(bookmark_id, archived=False),
        lambda: client.get_bookmark(bookmark_id),
        lambda: client.attach_tags(bookmark_id, ["x"]),
    ):
        with pytest.raises(NotFound, match="Bookmark not found") as caught:
            action()
        assert caught.value.status == 404
    assert server.calls() == 8  # a 404 is an answer: never retried


def test_an_id_cannot_change_the_route(server, client):
    with pytest.raises(NotFound):
        client.get_bookmark("../tags")
    assert server.exchanges[-1].path == "/api/v1/bookmarks/..%2Ftags"


def test_create_link_and_the_reposting_quirk(server, client):
    created = client.create_link("https://new.example/a", "Mine")
    assert not created.already_existed
    assert server.state.by_url("https://new.example/a")["title"] == "Mine"
    old = server.add_bookmark("https://old.example/b", archived=True)
    again = client.create_link("https://old.example/b")
    # reproduced: re-posting a URL the server has answers alreadyExists and UN-ARCHIVES it
    assert again.already_existed and again.bookmark["id"] == old
    assert server.bookmark(old)["archived"] is False


def test_a_create_whose_answer_was_lost_is_retried_without_a_second_bookmark(server, client):
    server.inject("drop_after", route="POST /bookmarks")
    created = client.create_link("https://once.example/")
    assert created.already_existed  # the first attempt landed; the retry found it
    urls = [b["content"]["url"] for b in server.state.bookmarks.values()]
    assert urls == ["https://once.example/"]
    assert server.calls("POST /bookmarks") == 2


def test_tags_attach_creates_case_sensitively_and_detach_is_exact(server, client):
    bookmark_id = server.add_bookmark(tags=["JS"])
    ids = client.attach_tags(bookmark_id, ["js", "fresh"])
    assert ids == [server.tag_id("js"), server.tag_id("fresh")]
    assert server.state.tag_names(bookmark_id) == ["JS", "js", "fresh"]
    assert client.detach_tags(bookmark_id, ["JS", "missing"]) == [server.tag_id("JS")]
    assert server.state.tag_names(bookmark_id) == ["js", "fresh"]


def test_tag_list_rename_conflict_and_delete(server, client):
    bookmark_id = server.add_bookmark(tags=["js", "javascript"])
    names = {t["name"]: t for t in client.list_tags()}
    assert set(names) == {"js", "javascript"} and names["js"]["numBookmarks"] == 1
    with pytest.raises(TagNameConflict) as caught:
        client.rename_tag(names["js"]["id"], "javascript")
    message = str(caught.value)
    assert "Tag name already exists" in message and "'javascript'" in message
    assert caught.value.status == 400
    assert client.rename_tag(names["js"]["id"], "ecmascript")["name"] == "ecmascript"
    client.delete_tag(names["javascript"]["id"])
    assert server.state.tag_names(bookmark_id) == ["ecmascript"]
    with pytest.raises(NotFound, match="Tag not found"):
        client.delete_tag(names["javascript"]["id"])
    with pytest.raises(NotFound):
        client.rename_tag(names["javascript"]["id"], "x")


def test_zod_400s_read_as_text(server, client):
    with pytest.raises(KarakeepError, match="url: Only http and https URLs are allowed") as caught:
        client.create_link("ftp://files.example/x")
    assert caught.value.status == 400 and not isinstance(caught.value, NotFound)


# -- credentials -------------------------------------------------------------------------------


def test_401_names_the_variable_never_the_key_and_is_not_retried(server, sleeps):
    wrong = "ak2_WRONGkey00000000000_WRONGsecret000000000000000000"
    with (
        KarakeepClient(server.base_url, wrong, sleep=sleeps) as client,
        pytest.raises(KarakeepAuthError) as caught,
    ):
        list(client.iter_bookmarks())
    message = str(caught.value)
    assert "KARAKEEP_API_KEY" in message and "Settings -> API Keys" in message
    assert wrong not in message and KEY not in message
    assert server.calls() == 1 and sleeps == []
    with pytest.raises(KarakeepAuthError, match="KARAKEEP_API_KEY"):
        KarakeepClient(server.base_url, "")
    with pytest.raises(KarakeepAuthError, match="MY_KEY"):
        KarakeepClient(server.base_url, None, api_key_env="MY_KEY")


def test_a_missing_scope_403_is_a_credentials_error(server, client):
    server.inject(
        "status", status=403, body="API key is missing required scope: bookmarks:readwrite"
    )
    bookmark_id = server.add_bookmark()
    with pytest.raises(KarakeepAuthError, match=r"lacks a permission.*bookmarks:readwrite"):
        client.update_bookmark(bookmark_id, archived=True)


def test_a_server_echoing_the_key_is_masked(server, client):
    server.inject("status", status=400, body=f"bad header Bearer {KEY}")
    with pytest.raises(KarakeepError) as caught:
        client.list_tags()
    assert KEY not in str(caught.value) and "<hidden>" in str(caught.value)
    assert KEY not in repr(client)


# -- retries -----------------------------------------------------------------------------------


def test_429_without_retry_after_backs_off_exponentially_then_succeeds(server, client, sleeps):
    server.add_bookmark()
    server.inject("status", status=429, count=3, body="Rate limit exceeded.")
    assert len(list(client.iter_bookmarks())) == 1
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2] <= 60  # growing, capped
    assert server.calls() == 4


def test_429_reads_the_wait_from_its_text(server, client, sleeps):
    server.inject("status", status=429)  # "Rate limit exceeded. Try again in 1 seconds."
    client.list_tags()
    assert sleeps == [1.0]


def test_503_while_listing_is_retried_and_the_scan_completes(server, client):
    for n in range(250):
        server.add_bookmark(created_at=NOW - n)
    server.inject("status", status=503, route="GET /bookmarks", nth=2, count=2)
    assert len({b["id"] for b in client.iter_bookmarks()}) == 250
    assert server.calls("GET /bookmarks") == 5


def test_a_dropped_connection_is_retried_and_the_change_lands_once(server, client):
    bookmark_id = server.add_bookmark(modified_at=NOW - 100)
    server.inject("drop", route="PATCH /bookmarks/{id}")
    client.update_bookmark(bookmark_id, archived=True)
    assert server.bookmark(bookmark_id)["archived"] is True
    server.inject("drop_after", route="POST /bookmarks/{id}/tags")
    client.attach_tags(bookmark_id, ["t"])  # attach is idempotent: the retry is harmless
    assert server.state.tag_names(bookmark_id) == ["t"]
    assert [e.status for e in server.exchanges] == [None, 200, None, 200]


def test_a_slow_answer_times_out_and_is_retried(server, sleeps):
    server.inject("slow", seconds=1.0)
    with KarakeepClient(
        server.base_url, KEY, timeout=0.2, backoff_base=0.01, sleep=sleeps
    ) as client:
        assert client.list_tags() == []
    assert server.calls() == 2


def test_persistent_5xx_gives_up_with_a_clear_error(server, sleeps):
    server.inject("status", status=500, count=10)
    with (
        KarakeepClient(
            server.base_url, KEY, max_retries=2, backoff_base=0.01, sleep=sleeps
        ) as client,
        pytest.raises(KarakeepError) as caught,
    ):
        client.list_tags()
    message = str(caught.value)
    assert "GET /tags" in message and "500" in message and "giving up" in message
    assert server.calls() == 3 and KEY not in message


def test_base_url_is_the_instance_root(server, sleeps):
    with KarakeepClient(server.base_url + "/api/v1/", KEY, sleep=sleeps) as client:
        assert client.me()["localUser"] is True
    with (
        KarakeepClient(server.base_url + "/elsewhere", KEY, sleep=sleeps) as client,
        pytest.raises(KarakeepError, match="root of a Karakeep instance"),
    ):
        client.list_tags()


def test_a_web_page_instead_of_the_api_names_the_config_key(server, client):
    server.inject("status", status=200, body="<html>a single-page app</html>", count=5)
    with pytest.raises(KarakeepError, match=r"does not look like a Karakeep server.*base_url"):
        client.list_tags()
    assert server.calls() == 3  # the first answer and two retries


def test_one_client_shared_by_worker_threads(server):
    """Four threads share one client and their requests are in flight together:
    measured as the most requests the server held at once (each held 50 ms),
    not as a wall-clock speed-up, which a busy machine can eat."""
    ids = [server.add_bookmark() for _ in range(24)]
    answer, lock = server._answer, threading.Lock()
    in_flight, most = [0], [0]

    def held(request, fault):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.05)
            return answer(request, fault)
        finally:
            with lock:
                in_flight[0] -= 1

    server._answer = held
    with KarakeepClient(server.base_url, KEY) as client, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: client.update_bookmark(i, archived=True), ids))
        assert client.requests_made == 24
    assert all(server.bookmark(i)["archived"] for i in ids)
    assert most[0] >= 3, f"at most {most[0]} request(s) in flight at once"  # not one by one


# -- the mapping -------------------------------------------------------------------------------


def test_bookmark_to_item_maps_every_field_karakeep_has(server):
    bookmark_id = server.add_bookmark(
        "https://www.example.com/a",
        crawled_title="Crawled",
        tags=["b", "A"],
        ai_tags=["c"],
        archived=True,
        favourited=True,
        created_at=NOW - 86400,
        modified_at=NOW,
    )
    item = bookmark_to_item(server.bookmark(bookmark_id))
    assert item.item_id == bookmark_id
    assert item.url == "https://www.example.com/a" and item.domain == "example.com"
    assert item.title == "Crawled" and item.given_title == ""
    assert item.status == ARCHIVED and item.favorite is True
    assert item.tags == ("A", "b", "c")
    assert (item.time_added, item.time_updated) == (NOW - 86400, NOW)
    for unknown in ("time_read", "time_favorited", "word_count", "time_to_read", "lang"):
        assert getattr(item, unknown) is None, unknown
    assert item.is_article is None and item.has_image is None and item.has_video is None


def test_bookmark_to_item_prefers_the_users_title_and_reads_fresh_bookmarks(server, client):
    created = client.create_link("https://fresh.example/", "Mine").bookmark
    item = bookmark_to_item(created)  # the create answer: no firstCreatedAt, null crawl title
    assert item.title == "Mine" and item.status == UNREAD and item.favorite is False
    assert item.tags == () and item.time_added == NOW
    raw = {**created, "title": None, "modifiedAt": None, "createdAt": "2026-11-26T06:00:00.999Z"}
    item = bookmark_to_item(raw)
    assert item.title == "https://fresh.example/" and item.time_updated is None
    assert item.time_added == NOW  # milliseconds (a re-save answer) are dropped


GOOD: dict[str, Any] = {  # a bookmark as the API sends it (JSON)
    "id": "ieidlxygmwj87oxz5hxttoc8",
    "createdAt": "2026-11-26T06:00:00.000Z",
    "modifiedAt": None,
    "title": None,
    "archived": False,
    "favourited": False,
    "tags": [],
    "content": {"type": "link", "url": "https://x.example/"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, "id null"),
        ({"id": "a/b"}, 'id "a/b"'),
        ({"archived": "no"}, "'archived' is \"no\", expected true or false"),
        ({"favourited": None}, "'favourited' is null"),
        ({"createdAt": "yesterday"}, "'createdAt' is \"yesterday\", expected an ISO-8601"),
        ({"createdAt": 1795672800}, "'createdAt' is 1795672800"),
        ({"tags": "js"}, "'tags' is a str, expected a list"),
        ({"tags": [{"id": "t"}]}, "'tags' holds an object"),
        ({"content": None}, "'content' is null, expected an object"),
        ({"content": {"type": "link", "url": 5}}, "'content.url' is a int"),
        ({"title": ["x"]}, "'title' is a list, expected text"),
    ],
)
def test_malformed_bookmarks_are_clean_item_data_errors(change, message):
    with pytest.raises(ItemDataError) as caught:
        bookmark_to_item({**GOOD, **change})
    assert message in str(caught.value)
    if change.get("id", GOOD["id"]) == GOOD["id"]:
        assert GOOD["id"] in str(caught.value)  # names the bookmark


def test_a_bookmark_that_is_not_an_object_is_a_clean_error():
    with pytest.raises(ItemDataError, match="is a list, expected an object"):
        bookmark_to_item([1, 2])
    assert bookmark_to_item(GOOD).url == "https://x.example/"
