"""The Wallabag client, the entry mapping, and the fake's fidelity to
``specs/wallabag.md`` (each check names the fact it holds the fake to)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rulebot.errors import CredentialsError, ItemDataError
from rulebot.fake.wallabag import FakeWallabag
from rulebot.sources.wallabag.api import ENV, WallabagClient, entry_to_item
from tests.helpers import Answering

T = 1_795_672_800


@pytest.fixture
def fake() -> Iterator[FakeWallabag]:
    with FakeWallabag(now=T) as server:
        yield server


def client(fake: FakeWallabag, **overrides: Any) -> WallabagClient:
    env = fake.env
    credentials = {key: env[name] for key, name in ENV.items()}
    return WallabagClient(fake.base_url, {**credentials, **overrides}, sleep=lambda s: None)


def token(fake: FakeWallabag) -> str:
    answer = httpx.post(
        f"{fake.base_url}/oauth/v2/token",
        data={
            "grant_type": "password",
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "username": fake.username,
            "password": fake.users[fake.username],
        },
    )
    assert answer.status_code == 200
    return str(answer.json()["access_token"])


# -- the mapping ----------------------------------------------------------------------


ENTRY = {
    "id": 12,
    "url": "https://www.example.com/final",
    "given_url": "https://example.com/given",
    "title": "Title",
    "is_archived": 1,
    "is_starred": 0,
    "tags": [{"id": 3, "label": "b", "slug": "b"}, {"id": 1, "label": "a", "slug": "a"}],
    "created_at": "2016-04-05T09:07:54+0200",
    "updated_at": "2016-04-06T09:07:54+0200",
    "archived_at": "2016-04-07T00:00:00+0000",
    "starred_at": None,
    "reading_time": 0,
    "language": None,
    "domain_name": "www.example.com",
}


def test_an_entry_maps_with_its_offsets_and_unknowns() -> None:
    item = entry_to_item(ENTRY)
    assert item.item_id == "12" and item.status == 1 and item.favorite is False
    assert item.given_url == "https://example.com/given"
    assert item.url == "https://www.example.com/final"
    assert item.tags == ("a", "b")
    assert item.time_added == 1459840074  # 07:07:54 UTC
    assert item.time_read == 1459987200
    assert item.time_favorited is None and item.time_to_read is None and item.lang is None
    assert item.word_count is None and item.has_image is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("id", "12", "id"),
        ("is_archived", 2, "is_archived"),
        ("is_starred", "1", "is_starred"),
        ("tags", [{"name": "x"}], "tags"),
        ("created_at", "yesterday", "created_at"),
        ("created_at", "2016-04-05T09:07:54", "created_at"),  # no offset: which zone?
        ("reading_time", "5", "reading_time"),
        ("title", 5, "title"),
    ],
)
def test_a_malformed_entry_is_an_item_data_error_naming_the_field(
    field: str, value: Any, words: str
) -> None:
    with pytest.raises(ItemDataError, match=words):
        entry_to_item({**ENTRY, field: value})


def test_a_non_object_entry_is_an_item_data_error() -> None:
    with pytest.raises(ItemDataError):
        entry_to_item([1, 2])


# -- the client -----------------------------------------------------------------------


def test_paging_stops_at_pages_and_never_asks_past_the_end(fake: FakeWallabag) -> None:
    for n in range(7):
        fake.add_entry(f"https://p.example/{n}")
    with client(fake) as wb:
        wb.page_size = 3
        assert len(list(wb.iter_entries())) == 7
    pages = [x for x in fake.exchanges if x.route == "GET /api/entries"]
    assert [x.status for x in pages] == [200, 200, 200]


def test_an_empty_library_is_one_page(fake: FakeWallabag) -> None:
    with client(fake) as wb:
        assert list(wb.iter_entries()) == []
    assert fake.calls("GET /api/entries") == 1


def test_a_missing_variable_is_named_before_any_request(fake: FakeWallabag) -> None:
    with pytest.raises(CredentialsError, match="WALLABAG_PASSWORD"):
        client(fake, password_env="")
    assert fake.calls() == 0


def test_a_wrong_client_secret_names_the_client_variables(fake: FakeWallabag) -> None:
    with pytest.raises(CredentialsError, match="WALLABAG_CLIENT_ID/WALLABAG_CLIENT_SECRET"):
        client(fake, client_secret_env="nope").list_tags()
    assert fake.calls() == 1


def test_tokens_are_renewed_ahead_of_expiry_and_not_on_every_call(fake: FakeWallabag) -> None:
    fake.access_lifetime = 100
    clock = [0.0]
    env = fake.env
    with WallabagClient(
        fake.base_url, {k: env[v] for k, v in ENV.items()}, clock=lambda: clock[0]
    ) as wb:
        wb.list_tags()
        wb.list_tags()
        assert wb.token_requests == 1
        clock[0] = 80.0  # within the last quarter of its life
        wb.list_tags()
        assert wb.token_requests == 2
        refresh = [x for x in fake.exchanges if x.route == "POST /oauth/v2/token"][-1]
        assert b"grant_type=refresh_token" in refresh.raw_body


def test_the_token_never_rides_in_a_url(fake: FakeWallabag) -> None:
    fake.add_entry("https://q.example/")
    with client(fake) as wb:
        list(wb.iter_entries())
        wb.list_tags()
    for exchange in fake.exchanges:
        for secret in fake.issued:
            assert secret not in exchange.target
        assert "password" not in exchange.target


def test_repr_shows_no_secret(fake: FakeWallabag) -> None:
    with client(fake) as wb:
        wb.list_tags()
        assert all(s not in repr(wb) for s in [*fake.issued, fake.client_secret])


# -- the fake, against the fact sheet ------------------------------------------------------


def test_fake_token_errors_are_400_with_error_and_description(fake: FakeWallabag) -> None:
    url = f"{fake.base_url}/oauth/v2/token"
    bad = httpx.post(url, data={"grant_type": "password", "client_id": fake.client_id})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    wrong = httpx.post(
        url,
        data={
            "grant_type": "password",
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "username": fake.username,
            "password": "nope",
        },
    )
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid username and password combination",
    }
    assert wrong.headers["cache-control"] == "no-store"
    assert httpx.post(url, data={}).json()["error"] == "invalid_request"


def test_fake_401s_carry_www_authenticate(fake: FakeWallabag) -> None:
    none = httpx.get(f"{fake.base_url}/api/entries.json")
    assert none.status_code == 401 and none.json()["error"] == "access_denied"
    access = token(fake)
    fake.expire_tokens()
    expired = httpx.get(
        f"{fake.base_url}/api/entries.json", headers={"Authorization": f"Bearer {access}"}
    )
    assert expired.status_code == 401
    assert expired.json()["error_description"] == "The access token provided has expired."
    assert expired.headers["www-authenticate"].startswith('Bearer realm="Service"')


def test_fake_entries_paging_and_shapes(fake: FakeWallabag) -> None:
    fake.add_entry("https://r.example/", "R", tags=["Mixed"], archived=True)
    auth = {"Authorization": f"Bearer {token(fake)}"}
    page = httpx.get(f"{fake.base_url}/api/entries.json?perPage=1", headers=auth).json()
    assert (page["page"], page["pages"], page["total"], page["limit"]) == (1, 1, 1, 1)
    entry = page["_embedded"]["items"][0]
    assert entry["is_archived"] == 1 and entry["is_public"] is False
    assert entry["http_status"] == "200" and entry["tags"][0]["label"] == "mixed"
    assert entry["created_at"].endswith("+0200")
    past = httpx.get(f"{fake.base_url}/api/entries.json?page=2", headers=auth)
    assert past.status_code == 404 and past.json() == {"code": 404, "message": "Not Found"}
    since = httpx.get(f"{fake.base_url}/api/entries.json?since={T}", headers=auth).json()
    assert since["total"] == 0 and since["pages"] == 1  # strict: updated_at == since is out


def test_fake_duplicate_post_merges_and_patch_tags_replace(fake: FakeWallabag) -> None:
    entry_id = fake.add_entry("https://s.example/", tags=["a"], archived=True)
    auth = {"Authorization": f"Bearer {token(fake)}"}
    again = httpx.post(
        f"{fake.base_url}/api/entries.json",
        data={"url": "https://s.example/", "tags": "B"},
        headers=auth,
    )
    assert again.status_code == 200 and again.json()["id"] == entry_id
    assert again.json()["is_archived"] == 1 and fake.labels(entry_id) == ["a", "b"]
    httpx.patch(f"{fake.base_url}/api/entries/{entry_id}.json", data={"tags": ""}, headers=auth)
    assert fake.labels(entry_id) == ["a", "b"]  # an empty tags changes nothing
    httpx.patch(f"{fake.base_url}/api/entries/{entry_id}.json", data={"tags": "c"}, headers=auth)
    assert fake.labels(entry_id) == ["c"]


def test_fake_mass_action_limit_and_bulk_json_in_the_query(fake: FakeWallabag) -> None:
    auth = {"Authorization": f"Bearer {token(fake)}"}
    urls = [f"https://t.example/{n}" for n in range(11)]
    over = httpx.post(
        f"{fake.base_url}/api/entries/lists.json", params={"urls": json.dumps(urls)}, headers=auth
    )
    assert over.status_code == 400 and over.json()["message"] == "API limit reached"
    fine = httpx.post(
        f"{fake.base_url}/api/entries/lists.json",
        params={"urls": json.dumps(urls[:10])},
        headers=auth,
    )
    assert fine.status_code == 200 and len(fine.json()) == 10
    tagged = httpx.post(
        f"{fake.base_url}/api/entries/tags/lists.json",
        params={"list": json.dumps([{"url": u, "tags": "x"} for u in [*urls, "https://no/"]])},
        headers=auth,
    )
    assert tagged.status_code == 200 and tagged.json()[-1] == {"url": "https://no/", "entry": False}


def test_fake_exists_takes_urls_and_sha1_hashes_alone_or_in_lists(fake: FakeWallabag) -> None:
    saved = fake.add_entry("https://v.example/a b")
    theirs = fake.add_entry("https://v.example/theirs", user="other")
    auth = {"Authorization": f"Bearer {token(fake)}"}

    def exists(query: str) -> Any:
        answer = httpx.get(f"{fake.base_url}/api/entries/exists.json?{query}", headers=auth)
        assert answer.status_code == 200, answer.text
        return answer.json()

    sha1 = hashlib.sha1(b"https://v.example/a b").hexdigest()  # of the urldecoded URL
    missing = hashlib.sha1(b"https://v.example/none").hexdigest()
    assert exists("url=https://v.example/a%2520b") == {"exists": True}  # urldecoded twice
    assert exists("url=https://v.example/a+b&return_id=1") == {"exists": saved}  # + is a space
    assert exists(f"hashed_url={sha1}") == {"exists": True}
    assert exists(f"hashed_url={missing}&return_id=1") == {"exists": None}
    listed = exists(f"urls[]=https://v.example/none&hashed_urls[]={sha1}&return_id=1")
    assert listed == {sha1: saved, "https://v.example/none": None}  # hashes first, then URLs
    assert exists("urls[]=https://v.example/theirs") == {"https://v.example/theirs": False}
    assert theirs  # another user's entry is not found
    nothing = httpx.get(f"{fake.base_url}/api/entries/exists.json?return_id=1", headers=auth)
    assert nothing.status_code == 404


def test_fake_another_users_entry_is_a_404(fake: FakeWallabag) -> None:
    theirs = fake.add_entry("https://u.example/", user="other")
    auth = {"Authorization": f"Bearer {token(fake)}"}
    assert httpx.get(f"{fake.base_url}/api/entries/{theirs}.json", headers=auth).status_code == 404


def test_fake_command_line_prints_the_variables_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot.fake.wallabag", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "WALLABAG_PASSWORD": "SECRETmine"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "fake Wallabag server at http://127.0.0.1:" in first
        shown = [process.stdout.readline() for _ in range(3)]
        assert all(line.startswith("  export WALLABAG_") for line in shown)
        assert "SECRETmine" not in "".join(shown) and "WALLABAG_PASSWORD" not in "".join(shown)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    "expires_in",
    ["1e400", "-1e400", "NaN", "1" + "0" * 400, "-5", "0", "true", "1e9"],
    ids=["1e400", "-1e400", "NaN", "10^400", "-5", "0", "true", "1e9"],
)
def test_an_absurd_expires_in_counts_as_wallabags_default_hour(expires_in: str) -> None:
    """`expires_in: 1e400` (or 10^400, NaN, -5, true …) from a hostile token
    endpoint: no overflow, no token that never renews or renews on every call;
    it lives Wallabag's default hour."""
    issued: list[str] = []

    def answer(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        if path.startswith("/oauth/v2/token"):
            issued.append(f"token-{len(issued)}")
            text = f'{{"access_token": "{issued[-1]}", "expires_in": {expires_in}}}'
            return 200, "application/json", text.encode()
        return 200, "application/json", b"[]"

    clock = [0.0]
    credentials = {key: f"{key}-value" for key in ENV}
    with (
        Answering(answer) as server,
        WallabagClient(server.url, credentials, clock=lambda: clock[0]) as wb,
    ):
        wb.list_tags()
        clock[0] = 3000.0  # well inside the hour: the same token
        wb.list_tags()
        assert wb.token_requests == 1
        clock[0] = 3590.0  # past the hour less the early renewal: a new one
        wb.list_tags()
        assert wb.token_requests == 2
    assert len(issued) == 2
