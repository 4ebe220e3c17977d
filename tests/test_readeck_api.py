"""Readeck's bookmark -> Item mapping, and the client's boundaries, against the fake on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rulebot.errors import ItemDataError
from rulebot.fake.readeck import FakeReadeck
from rulebot.library.item import ARCHIVED, UNREAD
from rulebot.library.store import Store
from rulebot.rules.config import ServiceSettings
from rulebot.sources.readeck.api import (
    ReadeckAuthError,
    ReadeckClient,
    ReadeckError,
    bookmark_to_item,
)
from rulebot.sources.readeck.source import CURSOR_KEY, DATE_MARGIN, ReadeckSession

T = 1_795_672_800
TOKEN = "rdk-api-token-0123456789"

RAW: dict[str, Any] = {
    "id": "VnopmpKQ3CmQ6apY9mgDws",
    "created": "2026-11-26T06:00:00.5Z",
    "updated": "2026-11-27T06:00:00.123456789Z",
    "url": "https://www.example.org/a",
    "title": "A",
    "site": "www.example.org",
    "lang": "de",
    "type": "video",
    "is_archived": True,
    "is_marked": False,
    "labels": ["b", "A"],
    "word_count": 1200,
    "reading_time": 6,
}


def test_every_field_maps_and_what_readeck_omits_stays_unknown() -> None:
    item = bookmark_to_item(RAW)
    assert (item.item_id, item.url, item.title) == (RAW["id"], RAW["url"], "A")
    assert (item.status, item.favorite, item.tags) == (ARCHIVED, False, ("A", "b"))
    assert (item.time_added, item.time_updated) == (T, T + 86400)
    assert (item.word_count, item.time_to_read, item.lang) == (1200, 6, "de")
    assert (item.is_article, item.has_video, item.has_image) == (False, 2, 0)
    assert item.extra["site"] == "www.example.org" and item.domain == "example.org"
    bare = bookmark_to_item(
        {
            **{k: v for k, v in RAW.items() if k not in ("word_count", "reading_time")},
            "type": "photo",
            "lang": "",
            "is_archived": False,
        }
    )
    assert (bare.word_count, bare.time_to_read, bare.lang) == (None, None, None)
    assert (bare.status, bare.has_image, bare.is_article) == (UNREAD, 2, False)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"id": "../x"}, "id"),
        ({"is_marked": "yes"}, "is_marked"),
        ({"labels": "a,b"}, "labels"),
        ({"created": "yesterday"}, "created"),
        ({"word_count": -1}, "word_count"),
        ({"type": "podcast"}, "type"),
    ],
)
def test_a_malformed_bookmark_is_an_item_data_error_naming_the_field(
    change: dict[str, Any], named: str
) -> None:
    with pytest.raises(ItemDataError, match=named):
        bookmark_to_item({**RAW, **change})


def test_the_client_refuses_a_missing_token_and_a_page_over_100() -> None:
    with pytest.raises(ReadeckAuthError, match="READECK_TOKEN"):
        ReadeckClient("http://127.0.0.1:9", None)
    with pytest.raises(ReadeckError, match="1 to 100"):
        ReadeckClient("http://127.0.0.1:9", TOKEN, page_size=101)
    assert ReadeckClient("http://h.example/api/", TOKEN).base_url == "http://h.example"


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[FakeReadeck, ReadeckSession, Store]]:
    with FakeReadeck(now=T, token=TOKEN) as fake:
        settings = ServiceSettings("readeck", fake.base_url, page_size=2)
        with (
            ReadeckClient(fake.base_url, TOKEN, page_size=2) as client,
            Store.open(tmp_path / "s.db") as store,
        ):
            yield fake, ReadeckSession(client, settings), store


def test_sync_full_then_incremental_skips_garbled_and_scheduled_deletions(
    session: tuple[FakeReadeck, ReadeckSession, Store], caplog: pytest.LogCaptureFixture
) -> None:
    fake, sync, store = session
    ids = [fake.add_bookmark(f"https://e.example/{n}", created=T - 100 + n) for n in range(5)]
    first = sync.sync(store)
    assert (first.full, first.received, first.requests) == (True, 5, 3)
    assert store.get_meta(CURSOR_KEY) == str(T - DATE_MARGIN)  # the Date, less a margin
    fake.now = T + 10
    fake.touch(ids[0], labels=["x"])
    fake.touch(ids[1], delete_at=T)  # the web UI's scheduled deletion: not in the library
    fake.remove(ids[2])
    second = sync.sync(store)
    assert (second.full, second.received, second.deleted, second.requests) == (False, 1, 2, 2)
    assert store.get(ids[0]).tags == ("x",)  # type: ignore[union-attr]
    assert store.get(ids[1]) is None and store.get(ids[2]) is None
    assert store.get_meta(CURSOR_KEY) == str(T + 10 - DATE_MARGIN)
    # in the second the mirror was read, a change may still come with the same
    # time: fetched again; once that second has ended, the overlap costs nothing
    assert sync.sync(store).requests == 2
    fake.now = T + 11
    assert sync.sync(store).requests == 2  # this sync read in second T + 10 still
    assert sync.sync(store).requests == 1  # the cursor's second re-sent: nothing fetched
    fake.touch(ids[3], title="t")
    fake._bookmarks[ids[3]].is_marked = "garbled"  # type: ignore[assignment]
    assert sync.sync(store).received == 0
    assert "cannot read" in caplog.text and store.get(ids[3]) is not None  # kept as it was


def test_a_change_at_an_impossible_time_is_skipped_and_never_becomes_the_cursor(
    session: tuple[FakeReadeck, ReadeckSession, Store], caplog: pytest.LogCaptureFixture
) -> None:
    fake, sync, store = session
    ids = [fake.add_bookmark(f"https://e.example/{n}", f"B{n}", created=T - 100) for n in range(2)]
    sync.sync(store)
    fake.now = T + 10
    fake.touch(ids[1], title="now")
    fake.now = 253_402_214_399  # 9999-12-30: a client whose clock went wrong edits one
    fake.touch(ids[0], title="from the far future")
    fake.now = T + 20
    second = sync.sync(store)
    assert (second.full, second.received) == (False, 1)
    assert store.get(ids[1]).title == "now"  # type: ignore[union-attr]
    assert store.get(ids[0]).title == "B0"  # type: ignore[union-attr]  # kept as it was
    assert f"Readeck bookmark {ids[0]} changed at" in caplog.text
    # the server's clock when it answered, less the margin; never the year 9999
    assert store.get_meta(CURSOR_KEY) == str(T + 20 - DATE_MARGIN)


def test_a_server_repeating_its_page_under_a_huge_total_is_stopped() -> None:
    page = json.dumps([{**RAW}]).encode()

    class Repeating(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Total-Count", "999999999")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Repeating)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ReadeckClient(f"http://127.0.0.1:{server.server_address[1]}", TOKEN)
        with pytest.raises(ReadeckError, match="nothing new"):
            list(client.iter_bookmarks())
        assert client.requests_made == 2
    finally:
        server.shutdown()
        server.server_close()
