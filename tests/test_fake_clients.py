"""The fakes as a user's own client sees them: a third-party client from PyPI
drives each fake over a real socket, doing what a user would (list, get one,
create, update and archive, tag, delete, and the calls a client makes to
check a URL or search), and the answers are checked.

The clients are test-only dependencies (the ``dev`` extra; README,
"Dependencies"): karakeep-python-api for Karakeep, wallabag-client for
Wallabag, readeck for Readeck and pocket-api for Pocket. Where one is not
installed its test skips, saying which.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rulebot.fake.karakeep import FakeKarakeep
from rulebot.fake.karakeep import seed as seed_karakeep
from rulebot.fake.pocket import FakePocket
from rulebot.fake.pocket import seed as seed_pocket
from rulebot.fake.readeck import FakeReadeck
from rulebot.fake.readeck import seed as seed_readeck
from rulebot.fake.wallabag import FakeWallabag
from rulebot.fake.wallabag import seed as seed_wallabag

NOW = 1_795_672_800  # 2026-11-26T06:00:00Z


def client(module: str) -> Any:
    reason = f"{module} is not installed: pip install -e '.[dev]' to run the client tests"
    return pytest.importorskip(module, reason=reason)


# -- Karakeep: karakeep-python-api -------------------------------------------------------


@pytest.fixture
def karakeep(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKarakeep]:
    for name in ("ENDPOINT", "KEY", "RATE_LIMIT", "DISABLE_RESPONSE_VALIDATION"):
        monkeypatch.delenv(f"KARAKEEP_PYTHON_API_{name}", raising=False)
    with FakeKarakeep(now=NOW) as server:
        yield server


def test_karakeep_python_api_lists_saves_tags_finds_and_deletes(karakeep: FakeKarakeep) -> None:
    kk = client("karakeep_python_api")
    seed_karakeep(karakeep, 45)
    api = kk.KarakeepAPI(
        api_endpoint=karakeep.base_url, api_key=karakeep.api_key
    )  # checks /users/me

    seen: list[str] = []
    cursor = None
    while True:  # the cursor pages, as the client's typed models read them
        page = api.get_all_bookmarks(limit=20, cursor=cursor, include_content=False)
        seen += [bookmark.id for bookmark in page.bookmarks]
        if page.nextCursor is None:
            break
        cursor = page.nextCursor
    assert len(seen) == len(set(seen)) == 45

    new = api.create_a_new_bookmark(type="link", url="https://n.example/read", title="Read me")
    assert new.content.url == "https://n.example/read" and new.title == "Read me"
    assert api.get_a_single_bookmark(new.id).title == "Read me"
    changed = api.update_a_bookmark(new.id, {"archived": True, "favourited": True})
    assert changed["archived"] is True and changed["favourited"] is True
    attached = api.attach_tags_to_a_bookmark(new.id, tag_names=["#later", "Work"])
    assert len(attached["attached"]) == 2
    assert {t.name for t in api.get_a_single_bookmark(new.id).tags} == {"later", "Work"}
    api.detach_tags_from_a_bookmark(new.id, tag_names=["Work"])
    assert [t.name for t in api.get_a_single_bookmark(new.id).tags] == ["later"]
    assert "later" in {tag.name for tag in api.get_all_tags().tags}

    # the calls the `{id}` route used to shadow
    assert api.check_url("https://n.example/read/#top").bookmarkId == new.id
    assert api.check_url("https://n.example/unread").bookmarkId is None
    found = api.search_bookmarks("read me")
    assert [bookmark.id for bookmark in found.bookmarks] == [new.id]

    api.delete_a_bookmark(new.id)
    with pytest.raises(kk.APIError) as gone:
        api.get_a_single_bookmark(new.id)
    assert gone.value.status_code == 404
    with pytest.raises(kk.APIError):  # a wrong key fails the client's first call
        kk.KarakeepAPI(api_endpoint=karakeep.base_url, api_key="ak2_wrong_key")


# -- Wallabag: wallabag-client (its command line) ---------------------------------------------


@pytest.fixture
def wallabag() -> Iterator[FakeWallabag]:
    with FakeWallabag(now=NOW) as server:
        yield server


def test_wallabag_client_command_line_lists_adds_reads_tags_and_deletes(
    wallabag: FakeWallabag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client("wallabag.wallabag")
    from click.testing import CliRunner
    from wallabag.config import Configs, Options, Sections
    from wallabag.wallabag import cli

    monkeypatch.setenv("LOGNAME", "rulebot-test")  # the config's secrets are keyed by user
    seed_wallabag(wallabag, 12)
    path = str(tmp_path / "config.ini")
    config = Configs(path)
    for section, option, value in (
        (Sections.API, Options.SERVERURL, wallabag.base_url),
        (Sections.API, Options.USERNAME, wallabag.username),
        (Sections.API, Options.PASSWORD, wallabag.users[wallabag.username]),
        (Sections.OAUTH2, Options.CLIENT, wallabag.client_id),
        (Sections.OAUTH2, Options.SECRET, wallabag.client_secret),
    ):
        config.set(section, option, value)
    config.save(path)

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--config", path, "--no-spinner", *args])
        assert result.exit_code == 0, result.output
        return str(result.output)

    assert run("list", "--all", "--count").strip() == "12"
    listed = run("list", "--all", "--quantity", "50")
    assert all(f"Post {n} on" in listed for n in range(12))

    added = run("add", "https://n.example/read", "--title", "Read me", "--tags", "later,work")
    assert "Entry successfully added" in added
    entry_id = max(wallabag.entries)
    entry = wallabag.entries[entry_id]
    assert entry["title"] == "Read me" and {t["label"] for t in entry["tags"]} == {"later", "work"}
    # adding it again: the client asks `exists` first and saves nothing
    assert "already saved" in run("add", "https://n.example/read")
    assert len(wallabag.entries) == 13

    info = run("info", str(entry_id))
    assert "Read me" in info and "https://n.example/read" in info
    run("update", str(entry_id), "--read", "--starred")
    assert wallabag.entries[entry_id]["is_archived"] == 1
    assert wallabag.entries[entry_id]["is_starred"] == 1
    run("tags", "--command", "add", "--entry-id", str(entry_id), "--tags", "extra")
    assert "extra" in run("tags", "--entry-id", str(entry_id))
    run("delete", str(entry_id), "--force")
    assert entry_id not in wallabag.entries


# -- Readeck: readeck (async) ---------------------------------------------------------------


def test_readeck_client_parses_every_bookmark_and_edits_them() -> None:
    rd = client("readeck")

    async def session(server: FakeReadeck) -> None:
        async with rd.ReadeckClient(server.base_url, server.token) as api:
            profile = await api.get_user_profile()  # provider, dates and settings
            assert profile.user.username and profile.provider.permissions
            every = await api.get_bookmarks(rd.BookmarkListParams(limit=100))
            assert len(every) == 40 and all(b.authors == [] for b in every)

            params = rd.BookmarkListParams(labels="js", is_archived=False, sort=["title"])
            chosen = await api.get_bookmarks(params)
            assert chosen and all("js" in b.labels and not b.is_archived for b in chosen)
            assert [b.title for b in chosen] == sorted(b.title for b in chosen)
            videos = await api.get_bookmarks(rd.BookmarkListParams(type=["video"]))
            assert videos and all(b.type == "video" for b in videos)

            created = await api.create_bookmark("https://n.example/read", labels=["later"])
            assert created.response.status == 202 and created.bookmark_id
            server.finish_loading(created.bookmark_id, "Read me")  # extraction done
            bookmark = await api.get_bookmark(created.bookmark_id)
            assert (bookmark.title, bookmark.labels, bookmark.loaded) == (
                "Read me",
                ["later"],
                True,
            )

            update = rd.BookmarkUpdateRequest(
                is_archived=True, add_labels=["work"], description="Worth it", title="Read"
            )
            answer = await api.update_bookmark(created.bookmark_id, update)
            assert answer.model_extra is not None
            assert answer.model_extra["labels"] == ["later", "work"]
            assert answer.model_extra["description"] == "Worth it"
            bookmark = await api.get_bookmark(created.bookmark_id)
            assert bookmark.is_archived and bookmark.description == "Worth it"
            found = await api.get_bookmarks(rd.BookmarkListParams(search="worth"))
            assert [b.id for b in found] == [created.bookmark_id]
            assert "work" in {label.name for label in await api.get_labels()}

            await api.delete_bookmark(created.bookmark_id)
            with pytest.raises(rd.ReadeckNotFoundError):
                await api.get_bookmark(created.bookmark_id)
        async with rd.ReadeckClient(server.base_url, "wrong") as api:
            assert await api.health_check() is False

    with FakeReadeck(now=NOW) as server:
        seed_readeck(server, 40)
        asyncio.run(session(server))


# -- Pocket: pocket-api ---------------------------------------------------------------------


def test_pocket_api_retrieves_adds_modifies_and_syncs_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pk = client("pocket")
    with FakePocket(now=NOW) as server:
        seed_pocket(server, 30)
        # its one setting for the server: a user points it at a Pocket-compatible one
        monkeypatch.setattr(pk.Pocket, "api_url", f"{server.base_url}/v3")
        api = pk.Pocket(server.consumer_key, server.access_token)

        everything = api.retrieve(state="all", detailType="complete", count=100)
        assert everything["status"] == 1 and len(everything["list"]) == 30
        oldest = api.retrieve(state="all", sort="oldest", count=5)
        added = [int(item["time_added"]) for item in oldest["list"].values()]
        assert len(added) == 5 and added == sorted(added)
        assert api.retrieve(sort="title", count=5)["status"] == 1  # the later server took it

        # a seeded library was changed over time: `since` picks out the later changes
        times = sorted(int(item["time_updated"]) for item in everything["list"].values())
        middle = times[len(times) // 2]
        later = api.retrieve(state="all", since=middle, count=100)["list"]
        assert later and len(later) < 30
        assert all(int(item["time_updated"]) > middle for item in later.values())

        cursor = everything["since"]
        saved = api.add(url="https://n.example/read", title="Read me")
        item_id = saved["item"]["item_id"]
        results = api.archive(item_id).favorite(item_id).tags_add(item_id, "later,work").commit()
        assert results["action_results"] == [True, True, True]
        api.reset()
        changed = api.retrieve(since=cursor, state="all", detailType="complete")["list"]
        assert set(changed) == {item_id}
        item = changed[item_id]
        assert (item["status"], item["favorite"]) == ("1", "1")
        assert set(item["tags"]) == {"later", "work"}

        api.delete(item_id).commit()
        api.reset()
        stub = api.retrieve(since=cursor, state="all")["list"][item_id]
        assert stub == {"item_id": item_id, "status": "2"}
        with pytest.raises(pk.PocketException) as refused:
            pk.Pocket(server.consumer_key, "not-the-token").retrieve()
        assert (refused.value.http_code, refused.value.error_code) == (401, 107)
