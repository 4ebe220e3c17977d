"""The Linkding API client against the REAL server (tests/linkding_server.py:
linkding 1.44.1 from shared/servers/linkding, one per session, an account of
its own per test), and ``bookmark_to_item`` on what the server sends and on
what no server should.

Marked ``linkding``; without the server package these tests skip saying why,
and with ``RULEBOT_REAL_SERVERS=1`` (CI) they fail instead.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rulebot.errors import CredentialsError, ItemDataError
from rulebot.library.item import ARCHIVED, UNREAD
from rulebot.sources.linkding.api import LinkdingAuthError, LinkdingClient, LinkdingError, NotFound
from rulebot.sources.linkding.items import bookmark_to_item, normalized_url
from tests.helpers import Answering
from tests.linkding_server import Account

pytestmark = pytest.mark.linkding


def client(account: Account, **kw: Any) -> LinkdingClient:
    return LinkdingClient(account.base_url, account.token, **kw)


def _same(raw: Any) -> Any:
    return raw


def test_both_lists_are_read_oldest_first_page_by_page(linkding: Account) -> None:
    ids = [linkding.add(f"https://l.example/{n}", [f"t{n}"]) for n in range(5)]
    for bookmark_id in ids[1:3]:
        linkding.patch(bookmark_id, is_archived=True)
    with client(linkding, page_size=2) as api:
        # what is held of each bookmark is what ``keep`` made of it as its page came
        listed = api.list_bookmarks(lambda raw: ("kept", raw["id"]), archived=False)
        assert listed.bookmarks == [("kept", ids[0]), ("kept", ids[3]), ("kept", ids[4])]
        assert listed.count == 3
        assert listed.server_time is not None and abs(listed.server_time - time.time()) < 60
        assert api.requests_made == 2  # ⌈3 / 2⌉
        archived = api.list_bookmarks(_same, archived=True)
        assert [b["id"] for b in archived.bookmarks] == ids[1:3]
        assert api.total(archived=False) == 3 and api.total(archived=True) == 2


def test_modified_since_brings_only_what_changed_after_it(linkding: Account) -> None:
    old = linkding.add("https://m.example/old")
    kept = linkding.add("https://m.example/kept")
    time.sleep(1.1)
    since = int(time.time())
    time.sleep(1.1)
    linkding.patch(old, title="edited")
    linkding.patch(kept, is_archived=True)  # archiving bumps date_modified: it moves lists
    new = linkding.add("https://m.example/new")
    with client(linkding) as api:
        listed = api.list_bookmarks(_same, archived=False, modified_since=since)
        archived = api.list_bookmarks(_same, archived=True, modified_since=since)
    assert sorted(b["id"] for b in listed.bookmarks) == [old, new]
    assert [b["id"] for b in archived.bookmarks] == [kept]


def test_the_tag_list_holds_tags_no_bookmark_carries(linkding: Account) -> None:
    bookmark_id = linkding.add("https://t.example/1", ["Python", "orphan"])
    linkding.patch(bookmark_id, tag_names=["Python"])
    with client(linkding, page_size=1) as api:
        tags = api.tags()
        assert sorted(tags.values()) == ["Python", "orphan"]
        assert api.requests_made == 2


def test_an_update_answers_tags_as_the_server_spells_them(linkding: Account) -> None:
    linkding.add("https://s.example/first", ["Python"])
    bookmark_id = linkding.add("https://s.example/second")
    with client(linkding) as api:
        answer = api.update_bookmark(bookmark_id, {"tag_names": ["python", "New Tag"]})
    # the account's first spelling is kept; a space becomes "-"; sorted by code point
    assert answer["tag_names"] == ["New-Tag", "Python"]


def test_a_create_never_overwrites_a_saved_bookmark(linkding: Account) -> None:
    saved = linkding.add("https://Example.com/a/?b=2&a=1", ["keep"], title="Mine", notes="mine")
    with client(linkding) as api:
        created = api.create_bookmark("https://example.com/a?a=1&b=2", "Other", ["x"])
        assert created.existed and created.bookmark["id"] == saved
        fresh = api.create_bookmark("https://example.com/b", "B", ["y", "Z z"])
        assert not fresh.existed
    held = linkding.bookmarks()
    assert (held[str(saved)]["title"], held[str(saved)]["notes"]) == ("Mine", "mine")
    assert held[str(saved)]["tag_names"] == ["keep"]
    assert held[str(fresh.bookmark["id"])]["tag_names"] == ["Z-z", "y"]


@pytest.mark.parametrize(
    ("saved", "asked"),
    [
        ("https://Example.COM/a/?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a#frag", "https://example.com/a#other"),
        ("http://example.com/a", "https://example.com/a"),
        ("https://www.example.com/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com/a"),
        ("https://example.com/A", "https://example.com/a"),
        ("https://user@example.com/a///", "https://user@example.com/a"),
        ("https://example.com/a?x=1&x=0", "https://example.com/a?x=0&x=1"),
    ],
)
def test_normalized_url_compares_as_the_server_does(
    linkding: Account, saved: str, asked: str
) -> None:
    linkding.add(saved)
    with client(linkding) as api:
        found = api.check(asked) is not None
    assert found == (normalized_url(saved) == normalized_url(asked))


def test_a_refused_token_is_a_credentials_error_never_retried(linkding: Account) -> None:
    wrong = "0123456789abcdef0123456789abcdef01234567"
    with LinkdingClient(linkding.base_url, wrong) as api:
        with pytest.raises(LinkdingAuthError) as raised:
            api.tags()
        assert api.requests_made == 1
    message = str(raised.value)
    assert "LINKDING_TOKEN" in message and "401" in message and wrong not in message
    assert isinstance(raised.value, CredentialsError)


def test_a_missing_token_names_its_variable() -> None:
    with pytest.raises(LinkdingAuthError, match="MY_LINKDING"):
        LinkdingClient("http://127.0.0.1:9", None, token_env="MY_LINKDING")


def test_a_bookmark_that_is_gone_is_not_found(linkding: Account) -> None:
    bookmark_id = linkding.add("https://g.example/1")
    linkding.delete(bookmark_id)
    with client(linkding) as api:
        for call in (
            lambda: api.get_bookmark(bookmark_id),
            lambda: api.update_bookmark(bookmark_id, {"tag_names": []}),
            lambda: api.delete_bookmark(bookmark_id),
        ):
            with pytest.raises(NotFound):
                call()


def test_a_base_url_that_is_not_linkding_says_so(linkding: Account) -> None:
    elsewhere = LinkdingClient(f"{linkding.base_url}/elsewhere", linkding.token)
    with elsewhere as api, pytest.raises(LinkdingError, match=r"linkding\.base_url") as raised:
        api.get_bookmark(1)  # an HTML 404: a path Linkding does not know, not a gone bookmark
    assert not isinstance(raised.value, NotFound)
    with LinkdingClient(f"{linkding.base_url}/api/", linkding.token) as api:
        assert api.tags() == {}  # a pasted /api is forgiven


def test_a_real_bookmark_becomes_an_item(linkding: Account) -> None:
    bookmark_id = linkding.add(
        "https://i.example/1",
        ["Zeta", "alpha"],
        title="Title",
        description="An excerpt",
        unread=True,
        shared=True,
        is_archived=True,
    )
    linkding.set_added(bookmark_id, 1_700_000_000)
    raw = linkding.bookmarks()[str(bookmark_id)]
    item = bookmark_to_item(raw)
    assert item.item_id == str(bookmark_id)
    assert (item.url, item.title, item.excerpt) == ("https://i.example/1", "Title", "An excerpt")
    assert item.status == ARCHIVED and item.favorite is None
    assert item.tags == ("Zeta", "alpha")
    assert item.time_added == 1_700_000_000  # the fraction left out when it is zero
    assert item.time_updated is not None and abs(item.time_updated - time.time()) < 60
    assert dict(item.extra) == {"unread": True, "shared": True}
    plain = bookmark_to_item({**raw, "is_archived": False, "unread": False, "shared": False})
    assert plain.status == UNREAD and dict(plain.extra) == {"unread": False, "shared": False}


GOOD: dict[str, Any] = {
    "id": 7,
    "url": "https://x.example/",
    "title": "",
    "description": "",
    "is_archived": False,
    "unread": False,
    "shared": False,
    "tag_names": [],
    "date_added": "2026-12-07T09:01:49.119828Z",
    "date_modified": "2026-12-07T10:01:49.119828+01:00",
}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"id": "7"}, "id"),
        ({"id": 0}, "id"),
        ({"id": 2**63}, "id"),
        ({"id": True}, "id"),
        ({"url": None}, "'url'"),
        ({"title": 3}, "'title'"),
        ({"tag_names": "a,b"}, "'tag_names'"),
        ({"tag_names": [1]}, "'tag_names'"),
        ({"unread": "yes"}, "'unread'"),
        ({"shared": None}, "'shared'"),
        ({"is_archived": 0}, "'is_archived'"),
        ({"date_added": "yesterday"}, "'date_added'"),
        ({"date_added": "2026-12-07T09:01:49"}, "'date_added'"),  # no zone
        ({"date_modified": "10000-01-01T00:00:00Z"}, "'date_modified'"),
        ({"date_modified": "1800-01-01T00:00:00Z"}, "'date_modified'"),
    ],
)
def test_a_garbled_bookmark_is_refused_naming_the_field(change: dict[str, Any], said: str) -> None:
    with pytest.raises(ItemDataError, match=said):
        bookmark_to_item({**GOOD, **change})
    item = bookmark_to_item(GOOD)
    assert item.time_updated == item.time_added  # 10:01:49+01:00 is 09:01:49Z


def test_a_redirect_is_never_followed() -> None:
    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        return 301, "text/html", b""

    with (
        Answering(answer) as server,
        LinkdingClient(server.url, "t" * 40) as api,
        pytest.raises(LinkdingError, match="redirects"),
    ):
        api.tags()
