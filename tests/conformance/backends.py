"""One fixture shape for every source: seed a library, edit it *on the service*
as another client would, and read it back in the service's own terms.

A conformance test asks the same questions of every ``Backend``; a new source
joins the suite by adding one class here and its name to ``BACKENDS``.

``held()`` reads the service's own state (the fake's records, the real
server's answers), never rulebot's mirror, so a test compares what rulebot
*said* with what the service *holds*.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from rulebot.capabilities import SOURCES, Capabilities
from rulebot.item import ARCHIVED, UNREAD, Item
from rulebot.store import Store
from tests.helpers import rb

T = 1_795_672_800  # 2026-11-26T06:00:00Z: the fakes' frozen clock
DAY = 86400
STORE = Path(".rulebot/rulebot.db")


@dataclass(frozen=True)
class Seed:
    """An item as a test wants it on the service before rulebot runs."""

    url: str
    title: str = ""
    tags: tuple[str, ...] = ()
    archived: bool = False
    favorite: bool = False
    age_days: float = 10


@dataclass(frozen=True)
class Held:
    """An item as the service holds it, in neutral terms. ``None``: the
    service has no such field (Shaarli's status, a local item's favourite)."""

    url: str
    tags: tuple[str, ...]  # as spelled by the service, sorted
    archived: bool | None
    favorite: bool | None

    def folded(self) -> Held:
        """Tags compared the way rulebot's contract does (case-insensitively)."""
        return replace(self, tags=tuple(sorted({t.lower() for t in self.tags})))


class Backend:
    """A source and the service behind it, seen from the outside."""

    name: ClassVar[str]
    kind: ClassVar[str]
    # the service keeps the spelling a tag was first given (False: it lower-cases)
    keeps_spelling: ClassVar[bool] = True
    # the server's clock can be moved (fakes); the real servers run on real time
    clock: ClassVar[bool] = True

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self.monkeypatch, self.capsys = monkeypatch, capsys
        self._now = T

    # -- lifecycle ------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        yield self

    @property
    def caps(self) -> Capabilities:
        return SOURCES[self.kind]

    @property
    def now(self) -> int:
        return self._now

    def advance(self, seconds: int) -> None:
        """Time passes (on the service too)."""
        self._now += seconds

    skew = 0  # how far rulebot's clock runs ahead of the service's (seconds)

    def now_arg(self) -> list[str]:
        """rulebot's clock: the service's, off by ``skew``."""
        return ["--now", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now + self.skew))]

    def source_block(self) -> str:
        return ""

    def cli(self, command: str, *args: str) -> tuple[int, str, str]:
        """The real entry point, on this backend's clock: (exit code, stdout, stderr)."""
        clock = self.now_arg() if command in ("plan", "run", "undo", "apply") else []
        return rb(self.capsys, command, *args, *clock)

    def sync(self, *args: str) -> None:
        """``rulebot sync`` (a server's mirror brought in line)."""
        code, _, err = self.cli("sync", *args)
        assert code == 0, err

    def requests(self) -> int:
        """How many requests the service has answered so far (the fixture's own edits too)."""
        return 0

    def full_scan_due(self) -> None:
        """Let the time pass after which the source's plain ``sync`` scans in full
        (only for sources whose capabilities name such a scan)."""
        raise NotImplementedError

    def configure(self, rules: str) -> Path:
        path = Path("rules.yaml")
        path.write_text(f"version: 1\n{self.source_block()}{rules}")
        return path

    # -- the library, as another client would touch it ------------------------------
    def seed(self, seeds: Sequence[Seed]) -> list[str]:
        return [self.add(seed) for seed in seeds]

    def add(self, seed: Seed) -> str:
        raise NotImplementedError

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        raise NotImplementedError

    def set_archived(self, item_id: str, archived: bool) -> None:
        raise NotImplementedError

    def set_favorite(self, item_id: str, favorite: bool) -> None:
        raise NotImplementedError

    def remove(self, item_id: str) -> None:
        raise NotImplementedError

    def rename_tag(self, old: str, new: str) -> None:
        """The service's own rename (its UI's), or one item at a time where it has none."""
        for item_id, held in self.held().items():
            if any(t.lower() == old.lower() for t in held.tags):
                kept = [t for t in held.tags if t.lower() != old.lower()]
                if new.lower() not in {t.lower() for t in kept}:
                    kept.append(new)
                self.set_tags(item_id, kept)

    def held(self) -> dict[str, Held]:
        """Every live item on the service: id -> what it holds."""
        raise NotImplementedError

    def by_url(self) -> dict[str, Held]:
        return {held.url: held for held in self.held().values()}


# -- the local library -------------------------------------------------------------------


class LocalBackend(Backend):
    name = "local"
    kind = "local"

    def _store(self) -> Store:
        return Store.open(STORE)

    def sync(self, *args: str) -> None:
        """The store is the library: nothing to sync."""

    def add(self, seed: Seed) -> str:
        with self._store() as store:
            taken = {item.item_id for item in store.items(include_deleted=True)}
            item_id = str(1000 + len(taken))
            store.upsert(
                [
                    Item(
                        item_id=item_id,
                        given_url=seed.url,
                        given_title=seed.title,
                        status=ARCHIVED if seed.archived else UNREAD,
                        favorite=seed.favorite,
                        tags=tuple(seed.tags),
                        time_added=self.now - int(seed.age_days * DAY),
                        time_updated=self.now,
                    )
                ]
            )
        return item_id

    def _change(self, item_id: str, **changes: Any) -> None:
        with self._store() as store:
            item = store.get(item_id)
            assert item is not None
            store.upsert([item.replace(time_updated=self.now, **changes)])

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        self._change(item_id, tags=tuple(tags))

    def set_archived(self, item_id: str, archived: bool) -> None:
        self._change(item_id, status=ARCHIVED if archived else UNREAD)

    def set_favorite(self, item_id: str, favorite: bool) -> None:
        self._change(item_id, favorite=favorite)

    def remove(self, item_id: str) -> None:
        with self._store() as store:
            store.delete([item_id])

    def held(self) -> dict[str, Held]:
        if not STORE.exists():
            return {}
        with self._store() as store:
            return {
                item.item_id: Held(
                    item.url,
                    tuple(sorted(item.tags or ())),
                    item.status == ARCHIVED,
                    item.favorite,
                )
                for item in store.items()
            }


# -- Pocket v3 (the fake; both server generations) ---------------------------------------

POCKET_KEY, POCKET_TOKEN = "ck-SECRET-conformance", "at-SECRET-conformance"


class PocketBackend(Backend):
    name = "pocket"
    kind = "pocket"
    malformed = "fail-alone"

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.pocket import FakePocket

        self.monkeypatch.setenv("POCKET_CONSUMER_KEY", POCKET_KEY)
        self.monkeypatch.setenv("POCKET_ACCESS_TOKEN", POCKET_TOKEN)
        with FakePocket(
            consumer_key=POCKET_KEY,
            access_token=POCKET_TOKEN,
            now=T,
            malformed_actions=self.malformed,
        ) as fake:
            self.fake = fake
            yield self

    def advance(self, seconds: int) -> None:
        super().advance(seconds)
        self.fake.now = self.now

    def source_block(self) -> str:
        return f"pocket: {{base_url: '{self.fake.base_url}'}}\n"

    def requests(self) -> int:
        return self.fake.calls()

    def _send(self, *actions: dict[str, Any]) -> None:
        answer = httpx.post(
            f"{self.fake.base_url}/v3/send",
            json={
                "consumer_key": POCKET_KEY,
                "access_token": POCKET_TOKEN,
                "actions": [{**a, "time": self.now} for a in actions],
            },
            timeout=10,
        )
        assert answer.status_code == 200 and all(answer.json()["action_results"]), answer.text

    def add(self, seed: Seed) -> str:
        return self.fake.add_item(
            seed.url,
            seed.title,
            seed.tags,
            status=1 if seed.archived else 0,
            favorite=seed.favorite,
            time_added=self.now - int(seed.age_days * DAY),
        )

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        if tags:
            self._send({"action": "tags_replace", "item_id": item_id, "tags": ",".join(tags)})
        else:
            self._send({"action": "tags_clear", "item_id": item_id})

    def set_archived(self, item_id: str, archived: bool) -> None:
        self._send({"action": "archive" if archived else "readd", "item_id": item_id})

    def set_favorite(self, item_id: str, favorite: bool) -> None:
        self._send({"action": "favorite" if favorite else "unfavorite", "item_id": item_id})

    def remove(self, item_id: str) -> None:
        self._send({"action": "delete", "item_id": item_id})

    def rename_tag(self, old: str, new: str) -> None:
        self._send({"action": "tag_rename", "old_tag": old, "new_tag": new})

    def held(self) -> dict[str, Held]:
        return {
            item_id: Held(
                item["given_url"],
                tuple(sorted(item.get("tags") or {})),
                item["status"] == "1",
                item["favorite"] == "1",
            )
            for item_id, item in self.fake.items.items()
            if item["status"] in ("0", "1")
        }


class OldPocketBackend(PocketBackend):
    """The first server generation: a malformed action refuses the whole batch."""

    name = "pocket-old"
    malformed = "refuse-batch"


# -- Karakeep (the fake) -------------------------------------------------------------------

KARAKEEP_KEY = "kk-SECRET-conformance-0123456789"


class KarakeepBackend(Backend):
    name = "karakeep"
    kind = "karakeep"

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.karakeep import FakeKarakeep
        from rulebot.sources.karakeep_api import KarakeepClient

        self.monkeypatch.setenv("KARAKEEP_API_KEY", KARAKEEP_KEY)
        with FakeKarakeep(now=T, api_key=KARAKEEP_KEY) as fake:
            self.fake = fake
            self.client = KarakeepClient(fake.base_url, KARAKEEP_KEY)  # "another client"
            try:
                yield self
            finally:
                self.client.close()

    def advance(self, seconds: int) -> None:
        super().advance(seconds)
        self.fake.now = self.now

    def source_block(self) -> str:
        return f"karakeep: {{base_url: '{self.fake.base_url}'}}\n"

    def requests(self) -> int:
        return self.fake.calls()

    def add(self, seed: Seed) -> str:
        return self.fake.add_bookmark(
            seed.url,
            seed.title,
            tags=seed.tags,
            archived=seed.archived,
            favourited=seed.favorite,
            created_at=self.now - int(seed.age_days * DAY),
            modified_at=self.now,
        )

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        have = self.fake.state.tag_names(item_id)
        gone = [t for t in have if t not in tags]
        if gone:
            self.client.detach_tags(item_id, gone)
        new = [t for t in tags if t not in have]
        if new:
            self.client.attach_tags(item_id, new)

    def set_archived(self, item_id: str, archived: bool) -> None:
        self.client.update_bookmark(item_id, archived=archived)

    def set_favorite(self, item_id: str, favorite: bool) -> None:
        self.client.update_bookmark(item_id, favourited=favorite)

    def remove(self, item_id: str) -> None:
        self.client.delete_bookmark(item_id)

    def rename_tag(self, old: str, new: str) -> None:
        tag_id = self.fake.tag_id(old)
        if tag_id is not None and self.fake.tag_id(new) is None:
            self.client.rename_tag(tag_id, new)  # the UI's rename (no merge through it)
        else:
            super().rename_tag(old, new)

    def held(self) -> dict[str, Held]:
        state = self.fake.state
        return {
            bookmark_id: Held(
                bookmark["content"]["url"],
                tuple(sorted(state.tag_names(bookmark_id))),
                bookmark["archived"],
                bookmark["favourited"],
            )
            for bookmark_id, bookmark in state.bookmarks.items()
        }


# -- Wallabag (the fake, OAuth2 included) ----------------------------------------------------


class WallabagBackend(Backend):
    name = "wallabag"
    kind = "wallabag"
    keeps_spelling = False  # labels are stored lower-cased

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.wallabag import FakeWallabag

        with FakeWallabag(
            now=T,
            client_id="7_SECRETconformance0000000000000000000000",
            client_secret="SECRETconformance-client-secret",
            username="SECRETuser-conformance",
            password="SECRETpassword-conformance",
        ) as fake:
            for name, value in fake.env.items():
                self.monkeypatch.setenv(name, value)
            self.fake = fake
            yield self

    def advance(self, seconds: int) -> None:
        super().advance(seconds)
        self.fake.now = self.now

    def source_block(self) -> str:
        return f"wallabag: {{base_url: '{self.fake.base_url}'}}\n"

    def requests(self) -> int:
        return self.fake.calls()

    def add(self, seed: Seed) -> str:
        return str(
            self.fake.add_entry(
                seed.url,
                seed.title,
                tags=seed.tags,
                archived=seed.archived,
                starred=seed.favorite,
                created_at=self.now - int(seed.age_days * DAY),
                updated_at=self.now,
            )
        )

    def full_scan_due(self) -> None:
        from rulebot.sources.wallabag import FULL_SCAN_KEY

        with Store.open(STORE) as store:  # the last full scan, 8 days earlier
            last = int(store.get_meta(FULL_SCAN_KEY) or 0)
            store.set_meta(FULL_SCAN_KEY, str(last - 8 * DAY))

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        fake = self.fake
        with fake._lock:  # the web UI's tag editor: the whole set, lower-cased
            entry = fake._entries[int(item_id)]
            entry.tags = []
            for label in tags:
                fake._attach(entry, label)
            entry.updated_at = fake.now

    def set_archived(self, item_id: str, archived: bool) -> None:
        self.fake.touch(
            int(item_id), is_archived=archived, archived_at=self.now if archived else None
        )

    def set_favorite(self, item_id: str, favorite: bool) -> None:
        self.fake.touch(
            int(item_id), is_starred=favorite, starred_at=self.now if favorite else None
        )

    def remove(self, item_id: str) -> None:
        self.fake.remove_entry(int(item_id))

    def held(self) -> dict[str, Held]:
        return {
            str(entry_id): Held(
                entry["url"],
                tuple(sorted(self.fake.labels(entry_id))),
                bool(entry["is_archived"]),
                bool(entry["is_starred"]),
            )
            for entry_id, entry in self.fake.entries.items()
        }


# -- Readeck (the fake) -----------------------------------------------------------------------

READECK_TOKEN = "rdk-SECRET-conformance-0123456789"


class ReadeckBackend(Backend):
    name = "readeck"
    kind = "readeck"

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.readeck import FakeReadeck
        from rulebot.sources.readeck_api import ReadeckClient

        self.monkeypatch.setenv("READECK_TOKEN", READECK_TOKEN)
        with FakeReadeck(now=T, token=READECK_TOKEN) as fake:
            self.fake = fake
            self.client = ReadeckClient(fake.base_url, READECK_TOKEN)
            try:
                yield self
            finally:
                self.client.close()

    def advance(self, seconds: int) -> None:
        super().advance(seconds)
        self.fake.now = self.now

    def source_block(self) -> str:
        return f"readeck: {{base_url: '{self.fake.base_url}'}}\n"

    def requests(self) -> int:
        return self.fake.calls()

    def add(self, seed: Seed) -> str:
        return self.fake.add_bookmark(
            seed.url,
            seed.title,
            labels=seed.tags,
            archived=seed.archived,
            marked=seed.favorite,
            created=self.now - int(seed.age_days * DAY),
            updated=self.now,
        )

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        self.fake.touch(item_id, labels=list(tags))

    def set_archived(self, item_id: str, archived: bool) -> None:
        self.fake.touch(item_id, is_archived=archived)

    def set_favorite(self, item_id: str, favorite: bool) -> None:
        self.fake.touch(item_id, is_marked=favorite)

    def remove(self, item_id: str) -> None:
        self.fake.remove(item_id)

    def rename_tag(self, old: str, new: str) -> None:
        self.client.rename_label(old, new)  # Readeck's own rename (it merges)

    def held(self) -> dict[str, Held]:
        return {
            bookmark_id: Held(
                bookmark["url"],
                tuple(sorted(bookmark["labels"])),
                bookmark["is_archived"],
                bookmark["is_marked"],
            )
            for bookmark_id, bookmark in self.fake.state.bookmarks.items()
        }


# -- Shaarli (Debian's real server) -------------------------------------------------------------


class ShaarliBackend(Backend):
    name = "shaarli"
    kind = "shaarli"
    clock = False  # a real server on the real clock

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from tests.shaarli_server import SECRET, ShaarliServer, require_server

        require_server()
        self.monkeypatch.setenv("SHAARLI_API_SECRET", SECRET)
        with ShaarliServer() as server:
            self.server = server
            yield self

    @property
    def now(self) -> int:
        return int(time.time()) + self._skew

    _skew = 0

    def advance(self, seconds: int) -> None:
        self._skew += seconds  # only rulebot's clock moves: the server keeps real time

    def source_block(self) -> str:
        return f"shaarli: {{base_url: '{self.server.base_url}'}}\n"

    def requests(self) -> int:
        """The API requests php -S logged."""
        return len(re.findall(r"\[\d{3}\]: \w+ /api/v1/\S*", self.server.log()))

    def add(self, seed: Seed) -> str:
        created = time.strftime(
            "%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() - seed.age_days * DAY)
        )
        return str(self.server.add(seed.url, list(seed.tags), title=seed.title, created=created))

    def _link(self, item_id: str) -> dict[str, Any]:
        answer = self.server.api("GET", f"/links/{item_id}")
        assert answer.status_code == 200, answer.text
        link: dict[str, Any] = answer.json()
        return link

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        link = self._link(item_id)
        link["tags"] = list(tags)
        answer = self.server.api("PUT", f"/links/{item_id}", link)
        assert answer.status_code == 200, answer.text

    def remove(self, item_id: str) -> None:
        answer = self.server.api("DELETE", f"/links/{item_id}")
        assert answer.status_code == 204, answer.text

    def rename_tag(self, old: str, new: str) -> None:
        answer = self.server.api("PUT", f"/tags/{old}", {"name": new})
        assert answer.status_code in (200, 404), answer.text

    def held(self) -> dict[str, Held]:
        return {
            str(link["id"]): Held(link["url"], tuple(sorted(link["tags"])), None, None)
            for link in self.server.links().values()
        }


BACKENDS: dict[str, type[Backend]] = {
    backend.name: backend
    for backend in (
        LocalBackend,
        PocketBackend,
        OldPocketBackend,
        KarakeepBackend,
        WallabagBackend,
        ReadeckBackend,
        ShaarliBackend,
    )
}
