"""The Readwise Reader client against the fake (specs/readwise-reader.md):
auth, paging, the document shape, save/update/delete, rate limits and pacing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rulebot.errors import CredentialsError
from rulebot.fake.readwise import FakeReadwise, seed
from rulebot.library.item import ARCHIVED, UNREAD
from rulebot.sources.readwise.api import (
    NotFound,
    ReadwiseClient,
    ReadwiseError,
    document_to_item,
    is_library_document,
)

T = 1_795_672_800


@pytest.fixture
def fake() -> Iterator[FakeReadwise]:
    with FakeReadwise(now=T, rate_limits=None) as server:
        yield server


def client(fake: FakeReadwise, **kw: object) -> ReadwiseClient:
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("max_retries", 1)
    return ReadwiseClient(fake.base_url, fake.token, **kw)  # type: ignore[arg-type]


def test_the_token_travels_as_token_and_a_wrong_one_names_the_variable(
    fake: FakeReadwise,
) -> None:
    with client(fake) as good:
        good.check_token()
        assert list(good.iter_documents()) == []
    assert fake.exchanges[0].headers["authorization"] == f"Token {fake.token}"
    bad = ReadwiseClient(fake.base_url, "wrong", sleep=lambda s: None)
    with bad, pytest.raises(CredentialsError, match="READWISE_TOKEN") as err:
        list(bad.iter_documents())
    assert "wrong" not in str(err.value)
    assert "readwise.io/access_token" in str(err.value)
    with pytest.raises(CredentialsError, match="READWISE_TOKEN"):
        ReadwiseClient(fake.base_url, None)


def test_listing_pages_by_cursor_and_reads_every_document(fake: FakeReadwise) -> None:
    ids = seed(fake, 250)
    with client(fake, page_size=100) as api:
        listed = list(api.iter_documents())
    assert {d["id"] for d in listed} >= set(ids)
    assert len({d["id"] for d in listed}) == len(listed)
    assert fake.calls("GET /list") == 3
    assert all(e.target.endswith("/") or "/?" in e.target for e in fake.exchanges)


def test_a_document_becomes_an_item(fake: FakeReadwise) -> None:
    doc_id = fake.add_document(
        "https://example.com/a",
        title="A",
        tags=["Python", "js"],
        location="later",
        created_at=T - 86400,
        word_count=2380,
    )
    fake.change(doc_id, location="archive")
    with client(fake) as api:
        raw = api.get_document(doc_id)
        assert api.get_document("01nothing") is None
    assert raw is not None and raw["url"].startswith("https://read.readwise.io/")
    item = document_to_item(raw)
    assert item.url == "https://example.com/a"
    assert item.status == ARCHIVED and item.time_read == T
    assert item.tags == ("js", "Python")
    assert item.time_added == T - 86400 and item.word_count == 2380 and item.time_to_read == 10
    assert item.favorite is None and item.extra["location"] == "archive"
    assert document_to_item(raw, favorite="tag:python").favorite is True
    assert document_to_item({**raw, "location": "shortlist"}, favorite="shortlist").favorite
    later = document_to_item({**raw, "location": "later", "tags": ["a", {"name": "b"}]})
    assert later.status == UNREAD and later.tags == ("a", "b") and later.time_read is None


def test_highlights_and_feed_items_are_not_the_library(fake: FakeReadwise) -> None:
    doc = fake.add_document("https://example.com/a")
    fake.add_document("https://example.com/a#h", category="highlight", parent_id=doc)
    fake.add_document("https://example.com/rss", location="feed")
    with client(fake) as api:
        listed = list(api.iter_documents())
    assert len(listed) == 3
    assert [d["id"] for d in listed if is_library_document(d, include_feed=False)] == [doc]
    assert len([d for d in listed if is_library_document(d, include_feed=True)]) == 2


def test_update_replaces_tags_and_moves_and_a_missing_document_is_not_found(
    fake: FakeReadwise,
) -> None:
    doc = fake.add_document("https://example.com/a", tags=["a", "b"])
    with client(fake) as api:
        api.update_document(doc, location="archive", tags=["b", "c"])
        with pytest.raises(ReadwiseError, match="location"):
            api.update_document(doc, location="shortlist")
        with pytest.raises(NotFound):
            api.update_document("01gone", location="archive")
        with pytest.raises(NotFound):
            api.delete_document("01gone")
        api.delete_document(doc)
        assert api.get_document(doc) is None
    assert fake.calls("PATCH /update/{id}") == 3


def test_save_twice_makes_no_copy(fake: FakeReadwise) -> None:
    with client(fake) as api:
        first, new = api.save("https://example.com/x", title="X", tags=["t"])
        again, new_again = api.save("https://example.com/x")
    assert (first, new) == (again, True) and new_again is False
    assert len(fake.docs) == 1


def test_a_throttled_request_waits_retry_after(fake: FakeReadwise) -> None:
    fake.inject("status", status=429, retry_after=7, route="GET /list")
    slept: list[float] = []
    with client(fake, sleep=slept.append) as api:
        assert list(api.iter_documents()) == []
    assert slept == [7]


def test_the_fake_throttles_past_its_limit_with_the_drf_body() -> None:
    with FakeReadwise(now=T, rate_limits={"list": 2, "update": 50}) as fake:
        slept: list[float] = []
        # rulebot's own limit off (very high): the service's 429 is what stops it
        with client(fake, sleep=slept.append, rate_limits={"list": 1000}) as api:
            for _ in range(2):
                list(api.iter_documents())
            with pytest.raises(ReadwiseError, match="rate limit"):
                list(api.iter_documents())
        throttled = [e for e in fake.exchanges if e.status == 429]
        assert throttled and "Expected available in" in throttled[0].json["detail"]
        assert int(throttled[0].response_headers["Retry-After"]) > 0


def test_the_client_paces_itself_within_the_declared_limits(fake: FakeReadwise) -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    doc = fake.add_document("https://example.com/a")
    with client(
        fake, sleep=sleep, pace_clock=lambda: clock[0], rate_limits={"list": 2, "update": 3}
    ) as api:
        for _ in range(3):
            api.get_document(doc)  # list class: the third waits a minute
        for _ in range(3):
            api.update_document(doc, location="later")  # update class: its own window
    assert slept == [61.0]  # a minute and the pacer's MARGIN
    assert api.pacer is not None and api.pacer.limits == {"list": 2, "update": 3}
    assert api.rate_class("POST", "/api/v3/save/") == "update"
    assert api.rate_class("DELETE", "/api/v3/delete/x/") == "list"
