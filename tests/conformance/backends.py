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
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.library.store import Store
from rulebot.rules.capabilities import SOURCES, Capabilities
from tests.helpers import rb

from .proxy import MARK, Fault, FaultProxy, Request

T = 1_795_672_800  # 2026-11-26T06:00:00Z: the fakes' frozen clock
DAY = 86400
STORE = Path(".rulebot/rulebot.db")
KILL_AT = "RULEBOT_TEST_KILL_AT_ACTION"  # spawn(): the local apply dies at this action
# ``spawn``'s program: the CLI, which with KILL_AT set SIGKILLs itself inside
# the local library's apply transaction (a server's run is killed from outside)
SPAWNED = f"""
import os, signal, sys
kill_at = int(os.environ.get("{KILL_AT}") or 0)
if kill_at:
    import rulebot.sources.local.apply as local_apply

    apply_one, seen = local_apply._apply_planned, []
    def dying(*args, **kwargs):
        seen.append(1)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return apply_one(*args, **kwargs)
    local_apply._apply_planned = dying
from rulebot.cli import main
sys.exit(main(sys.argv[1:]))
"""


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


def action_key(action: Mapping[str, Any]) -> tuple[str, ...]:
    """A Pocket-vocabulary action as ``Backend.executed`` lists it."""
    target = action.get("item_id") or action.get("url") or action.get("old_tag") or ""
    return (str(action["action"]), str(target), str(action.get("tags", "")))


class Backend:
    """A source and the service behind it, seen from the outside."""

    name: ClassVar[str]
    kind: ClassVar[str]
    # the service keeps the spelling a tag was first given (False: it lower-cases)
    keeps_spelling: ClassVar[bool] = True
    # the server's clock can be moved (fakes); the real servers run on real time
    clock: ClassVar[bool] = True
    # a server behind the source (False: the local library, no request to fail)
    network: ClassVar[bool] = True
    # -- faults (tests/conformance/test_fault_matrix.py) --
    # rulebot's requests by phase: (regex on "METHOD /path", "sync" | "apply");
    # the first match wins, a request matching none (auth, a health check) has none
    phases: ClassVar[tuple[tuple[str, str], ...]] = ()
    # where a request names one item: a regex on "METHOD /path" with a group "id"
    item_route: ClassVar[str] = ""
    # the environment variables a refused credential must be named by
    credentials: ClassVar[tuple[str, ...]] = ()
    # a 401 makes the client renew its token once and try again (OAuth2)
    renews_token: ClassVar[bool] = False
    # a client timeout that every healthy answer beats by far, for the timeout rows
    quick_timeout: ClassVar[float] = 0.3

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest | None = None,
    ) -> None:
        self.monkeypatch, self.capsys = monkeypatch, capsys
        self.request = request  # for a session's shared server (a real one slow to start)
        self._now = T
        self.upstream = ""  # the service's own address (a network source)
        self.proxy: FaultProxy | None = None
        self.removed: list[str] = []  # URLs a "404" fault had another client delete

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

    def source_block(self, **settings: object) -> str:
        """The config's source block; ``settings`` are more keys in it (``timeout``…)."""
        if not self.upstream:
            return ""
        url = self.proxy.base_url if self.proxy is not None else self.upstream
        extra = "".join(f", {key}: {value}" for key, value in settings.items())
        return f"{self.kind}: {{base_url: '{url}'{extra}}}\n"

    def cli(self, command: str, *args: str) -> tuple[int, str, str]:
        """The real entry point, on this backend's clock: (exit code, stdout, stderr)."""
        clock = self.now_arg() if command in ("plan", "run", "undo", "apply") else []
        return rb(self.capsys, command, *args, *clock)

    def spawn(
        self, command: str, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """``cli`` in a process of its own (one a test can kill), in the current directory."""
        clock = self.now_arg() if command in ("plan", "run", "undo", "apply") else []
        return subprocess.Popen(
            [sys.executable, "-c", SPAWNED, command, *args, *clock],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # -- faults ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _serving(self, upstream: str) -> Iterator[None]:
        """The service is up at ``upstream``; a proxy put in front goes with it."""
        self.upstream = upstream
        try:
            yield
        finally:
            if self.proxy is not None:
                self.proxy.stop()
                self.proxy = None

    def intercept(self) -> FaultProxy:
        """Put the fault proxy in front of the service: a config written from
        now on points rulebot at it (the test's own edits still go direct)."""
        if not self.upstream:
            raise NotImplementedError(f"{self.name} has no server to put a proxy in front of")
        if self.proxy is None:
            self.proxy = FaultProxy(self.upstream, self.phase).start()
        return self.proxy

    def phase(self, method: str, path: str) -> str | None:
        request = f"{method} {path}"
        return next((phase for pattern, phase in self.phases if re.match(pattern, request)), None)

    def item_of(self, request: Request) -> str | None:
        """The item a request of rulebot's acts on, if it names one."""
        found = re.match(self.item_route, f"{request.method} {request.path}")
        return found.group("id") if self.item_route and found else None

    def inject(
        self,
        fault: str,
        *,
        on: str = "apply",
        nth: int = 1,
        count: int = 1,
        retry_after: int | None = None,
        seconds: float = 0.0,
    ) -> Fault:
        """The ``nth`` request of ``on`` (``apply``: the requests that carry out
        a plan; ``sync``: the listing) meets ``fault``, and ``count - 1`` after it:

        "503", "401", "429" (``Retry-After: retry_after`` when given): that answer;
        "drop": the connection closes before the server sees the request;
        "drop_after": the server does the work, the answer is lost;
        "slow": the server gets it ``seconds`` late (past the client's timeout);
        "404": another client deletes the item just before the server gets the
        request (the first request naming an item), so the server's own 404;
        "hold": the request waits for ``fault.release`` (a kill lands meanwhile);
        "gone": the server vanishes (connections refused) until ``back()``."""
        proxy = self.proxy
        if proxy is None:
            raise NotImplementedError(f"{self.name}: call intercept() before configure()")
        if fault in ("503", "401", "429"):
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            made = Fault("status", on, nth, count, status=int(fault), headers=headers)
        elif fault == "404":
            known = self.held()  # an item of the library, not one the run creates

            def names_known(request: Request) -> bool:
                return self.item_of(request) in known

            def remove(request: Request) -> None:
                item_id = str(self.item_of(request))
                self.removed.append(known[item_id].url)
                self.remove(item_id)

            made = Fault("call", on, nth, count, when=names_known, callback=remove)
        elif fault == "hold":
            made = Fault("hold", on, nth, count, writes=True)
        elif fault in ("drop", "drop_after", "slow", "gone"):
            made = Fault(fault, on, nth, count, seconds=seconds)
        else:
            raise ValueError(f"unknown fault {fault!r}")
        return proxy.inject(made)

    def back(self) -> None:
        """Faults cleared, the server reachable again."""
        if self.proxy is not None:
            self.proxy.clear()
            self.proxy.back()

    def executed(self) -> list[tuple[str, ...]]:
        """What the service carried out of rulebot's changes (its own record,
        never the test's edits), one entry per execution: the same entry twice
        means the same change ran twice."""
        raise NotImplementedError

    def _executed_exchanges(self, exchanges: Sequence[Any]) -> list[tuple[str, ...]]:
        """A fake's record of the requests it answered 2xx that came from rulebot
        (through the proxy) and change something."""
        return [
            (e.method, e.path, hashlib.sha256(e.raw_body).hexdigest()[:12])
            for e in exchanges
            if e.headers.get(MARK.lower())
            and e.method != "GET"
            and e.status is not None
            and 200 <= e.status < 300
            and self.phase(e.method, e.path) == "apply"
        ]

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

    def configure(self, rules: str, **settings: object) -> Path:
        """rules.yaml: the source block (with ``settings`` in it), then ``rules``."""
        path = Path("rules.yaml")
        path.write_text(f"version: 1\n{self.source_block(**settings)}{rules}")
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
    network = False

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

    def executed(self) -> list[tuple[str, ...]]:
        """Every action a committed apply journaled as done (a killed one left none)."""
        if not STORE.exists():
            return []
        with self._store() as store:
            return [
                action_key(entry.send)
                for run in store.journal_runs(limit=1000)
                for entry in store.journal_entries(run.run_id)
                if entry.state == "confirmed"
            ]

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
    phases = ((r"POST /v3/get$", "sync"), (r"POST /v3/send$", "apply"))
    credentials = ("POCKET_ACCESS_TOKEN",)  # a 401 is the token's (the key's is a 403)

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.pocket import FakePocket

        self.monkeypatch.setenv("POCKET_CONSUMER_KEY", POCKET_KEY)
        self.monkeypatch.setenv("POCKET_ACCESS_TOKEN", POCKET_TOKEN)
        with (
            FakePocket(
                consumer_key=POCKET_KEY,
                access_token=POCKET_TOKEN,
                now=T,
                malformed_actions=self.malformed,
            ) as fake,
            self._serving(fake.base_url),
        ):
            self.fake = fake
            self._own: Counter[tuple[str, ...]] = Counter()  # the test's own sends
            yield self

    def advance(self, seconds: int) -> None:
        super().advance(seconds)
        self.fake.now = self.now

    def requests(self) -> int:
        return self.fake.calls()

    def item_of(self, request: Request) -> str | None:
        """The first item a ``/v3/send`` batch acts on."""
        try:
            actions = json.loads(request.body)["actions"]
        except (ValueError, KeyError, TypeError):
            return None
        return next((str(a["item_id"]) for a in actions if a.get("item_id")), None)

    def executed(self) -> list[tuple[str, ...]]:
        """Every action the server ran (``FakePocket.applied``), less the test's own."""
        ran = Counter(action_key(action) for action in self.fake.applied)
        return sorted((ran - self._own).elements())

    def _send(self, *actions: dict[str, Any]) -> None:
        self._own.update(action_key(action) for action in actions)
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


class FakeBackend(Backend):
    """A source served by one of rulebot's fakes: its clock moves with the
    backend's, and it records every request and what each one executed."""

    fake: Any

    def advance(self, seconds: int) -> None:
        super().advance(seconds)
        self.fake.now = self.now

    def requests(self) -> int:
        return self.fake.calls()

    def executed(self) -> list[tuple[str, ...]]:
        return self._executed_exchanges(self.fake.exchanges)


class KarakeepBackend(FakeBackend):
    name = "karakeep"
    kind = "karakeep"
    phases = ((r"GET /api/v1/bookmarks$", "sync"), (r"\w+ /api/v1/(bookmarks|tags)", "apply"))
    item_route = r"\w+ /api/v1/bookmarks/(?P<id>[^/]+)"
    credentials = ("KARAKEEP_API_KEY",)

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.karakeep import FakeKarakeep
        from rulebot.sources.karakeep.api import KarakeepClient

        self.monkeypatch.setenv("KARAKEEP_API_KEY", KARAKEEP_KEY)
        with FakeKarakeep(now=T, api_key=KARAKEEP_KEY) as fake, self._serving(fake.base_url):
            self.fake = fake
            self.client = KarakeepClient(fake.base_url, KARAKEEP_KEY)  # "another client"
            try:
                yield self
            finally:
                self.client.close()

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


class WallabagBackend(FakeBackend):
    name = "wallabag"
    kind = "wallabag"
    keeps_spelling = False  # labels are stored lower-cased
    phases = ((r"GET /api/entries\.json$", "sync"), (r"\w+ /api/(entries|tags?)\b", "apply"))
    item_route = r"\w+ /api/entries/(?P<id>\d+)"
    credentials = (
        "WALLABAG_CLIENT_ID",
        "WALLABAG_CLIENT_SECRET",
        "WALLABAG_USERNAME",
        "WALLABAG_PASSWORD",
    )
    renews_token = True

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.wallabag import FakeWallabag

        with (
            FakeWallabag(
                now=T,
                client_id="7_SECRETconformance0000000000000000000000",
                client_secret="SECRETconformance-client-secret",
                username="SECRETuser-conformance",
                password="SECRETpassword-conformance",
            ) as fake,
            self._serving(fake.base_url),
        ):
            for name, value in fake.env.items():
                self.monkeypatch.setenv(name, value)
            self.fake = fake
            yield self

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
        from rulebot.sources.wallabag.source import FULL_SCAN_KEY

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


class ReadeckBackend(FakeBackend):
    name = "readeck"
    kind = "readeck"
    phases = ((r"GET /api/bookmarks(/sync)?$", "sync"), (r"\w+ /api/bookmarks", "apply"))
    item_route = r"\w+ /api/bookmarks/(?!labels$|sync$)(?P<id>[^/]+)$"
    credentials = ("READECK_TOKEN",)

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.readeck import FakeReadeck
        from rulebot.sources.readeck.api import ReadeckClient

        self.monkeypatch.setenv("READECK_TOKEN", READECK_TOKEN)
        with FakeReadeck(now=T, token=READECK_TOKEN) as fake, self._serving(fake.base_url):
            self.fake = fake
            self.client = ReadeckClient(fake.base_url, READECK_TOKEN)
            try:
                yield self
            finally:
                self.client.close()

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
        if any(old in held.tags for held in self.held().values()):
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


# -- Raindrop.io (the fake) ------------------------------------------------------------------

RAINDROP_TOKEN = "rd-SECRET-conformance-0123456789"


class RaindropBackend(FakeBackend):
    """Raindrop.io, with an archive collection named in the config (by title),
    so every action is there; another client's delete is one for good (Trash
    emptied), which only a full scan sees."""

    name = "raindrop"
    kind = "raindrop"
    phases = (
        # reads: the listing, and the lookup of a create whose answer was lost
        (r"GET /rest/v1/(raindrops/|tags$|collections)|POST /rest/v1/import/url/exists", "sync"),
        (r"\w+ /rest/v1/(raindrops?|tags|import)\b", "apply"),
    )
    item_route = r"\w+ /rest/v1/raindrop/(?P<id>\d+)"
    credentials = ("RAINDROP_TOKEN",)

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.raindrop import FakeRaindrop

        self.monkeypatch.setenv("RAINDROP_TOKEN", RAINDROP_TOKEN)
        with FakeRaindrop(now=T, token=RAINDROP_TOKEN) as fake, self._serving(fake.base_url):
            self.fake = fake
            self.archive = fake.add_collection("Archive")
            yield self

    def source_block(self, **settings: object) -> str:
        return super().source_block(archive_collection="Archive", **settings)

    def add(self, seed: Seed) -> str:
        from rulebot.fake.raindrop import UNSORTED

        return str(
            self.fake.add_raindrop(
                seed.url,
                seed.title,
                tags=seed.tags,
                important=seed.favorite,
                collection=self.archive if seed.archived else UNSORTED,
                created=self.now - int(seed.age_days * DAY),
                last_update=self.now,
            )
        )

    def full_scan_due(self) -> None:
        from rulebot.sources.raindrop.source import FULL_SCAN_KEY

        with Store.open(STORE) as store:  # the last full scan, 8 days earlier
            last = int(store.get_meta(FULL_SCAN_KEY) or 0)
            store.set_meta(FULL_SCAN_KEY, str(last - 8 * DAY))

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        self.fake.touch(int(item_id), tags=list(tags))

    def set_archived(self, item_id: str, archived: bool) -> None:
        from rulebot.fake.raindrop import UNSORTED

        self.fake.touch(int(item_id), collection=self.archive if archived else UNSORTED)

    def set_favorite(self, item_id: str, favorite: bool) -> None:
        self.fake.touch(int(item_id), important=favorite)

    def remove(self, item_id: str) -> None:
        self.fake.purge(int(item_id))

    def rename_tag(self, old: str, new: str) -> None:
        answer = httpx.put(  # the web app's rename: account-wide, lastUpdate untouched
            f"{self.fake.base_url}/rest/v1/tags",
            json={"tags": [old], "replace": new},
            headers={"Authorization": f"Bearer {RAINDROP_TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text

    def held(self) -> dict[str, Held]:
        return {
            str(raindrop_id): Held(
                raindrop["link"],
                tuple(sorted(raindrop["tags"])),
                raindrop["collectionId"] == self.archive,
                raindrop["important"],
            )
            for raindrop_id, raindrop in self.fake.raindrops.items()
        }


# -- Shaarli (Debian's real server) -------------------------------------------------------------


class ShaarliBackend(Backend):
    name = "shaarli"
    kind = "shaarli"
    clock = False  # a real server on the real clock
    phases = ((r"GET /api/v1/links$", "sync"), (r"\w+ /api/v1/(links|tags)", "apply"))
    item_route = r"\w+ /api/v1/links/(?P<id>\d+)"
    credentials = ("SHAARLI_API_SECRET",)
    quick_timeout = 0.6  # PHP's built-in server, one request at a time

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from tests.shaarli_server import SECRET, ShaarliServer, require_server

        require_server()
        self.monkeypatch.setenv("SHAARLI_API_SECRET", SECRET)
        with ShaarliServer() as server, self._serving(server.base_url):
            self.server = server
            yield self

    @property
    def now(self) -> int:
        return int(time.time()) + self._skew

    _skew = 0

    def advance(self, seconds: int) -> None:
        self._skew += seconds  # only rulebot's clock moves: the server keeps real time

    def executed(self) -> list[tuple[str, ...]]:
        """The server keeps no record of its own to read: the proxy's log of
        the changes it forwarded and the server answered 2xx."""
        assert self.proxy is not None, "intercept() first"
        return [
            (e.request.method, e.request.path, hashlib.sha256(e.request.body).hexdigest()[:12])
            for e in self.proxy.requests("apply")
            if e.request.method != "GET" and e.status is not None and 200 <= e.status < 300
        ]

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


# -- Readwise Reader (the fake; rulebot's pacing set far above what a test sends) ------------


class ReadwiseBackend(FakeBackend):
    name = "readwise"
    kind = "readwise"
    phases = ((r"GET /api/v3/list/?$", "sync"), (r"\w+ /api/v3/(save|update|delete)/", "apply"))
    item_route = r"\w+ /api/v3/(update|delete)/(?P<id>[^/]+)"
    credentials = ("READWISE_TOKEN",)

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from rulebot.fake.readwise import DEFAULT_TOKEN, FakeReadwise

        self.monkeypatch.setenv("READWISE_TOKEN", DEFAULT_TOKEN)
        # the service's own limits off, rulebot's far above: the suite is not paced
        with FakeReadwise(now=T, rate_limits=None) as fake, self._serving(fake.base_url):
            self.fake = fake
            yield self

    def source_block(self, **settings: object) -> str:
        return super().source_block(rate_limits="{list: 100000, update: 100000}", **settings)

    def full_scan_due(self) -> None:
        from rulebot.sources.readwise.source import FULL_SCAN_KEY

        with Store.open(STORE) as store:  # the last full scan, 8 days earlier
            last = int(store.get_meta(FULL_SCAN_KEY) or 0)
            store.set_meta(FULL_SCAN_KEY, str(last - 8 * DAY))

    def add(self, seed: Seed) -> str:
        created = self.now - int(seed.age_days * DAY)
        return self.fake.add_document(
            seed.url,
            title=seed.title,
            tags=seed.tags,
            location="archive" if seed.archived else "new",
            created_at=created,
            updated_at=self.now,
        )

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        self.fake.change(item_id, tags=list(tags))

    def set_archived(self, item_id: str, archived: bool) -> None:
        self.fake.change(item_id, location="archive" if archived else "later")

    def remove(self, item_id: str) -> None:
        self.fake.remove(item_id)

    def held(self) -> dict[str, Held]:
        with self.fake._lock:
            docs = list(self.fake.docs.values())
        return {
            doc.id: Held(
                doc.source_url,
                tuple(sorted(str(t["name"]) for t in doc.tags.values())),
                doc.location == "archive",
                None,
            )
            for doc in docs
            if doc.parent_id is None and doc.location != "feed"
        }


# -- Linkding (the real server, shared/servers/linkding) ------------------------------------


class LinkdingBackend(Backend):
    """The real Linkding 1.44.1 the session started (tests/linkding_server.py);
    each backend is an account of its own on it: a library no other test sees."""

    name = "linkding"
    kind = "linkding"
    clock = False  # a real server on the real clock
    phases = (
        (r"GET /api/(tags|bookmarks|bookmarks/archived)/$", "sync"),
        # asked before an add (when planning, and before the create): never a change
        (r"GET /api/bookmarks/check/$", "check"),
        (r"\w+ /api/bookmarks/", "apply"),
    )
    item_route = r"\w+ /api/bookmarks/(?P<id>\d+)/$"
    credentials = ("LINKDING_TOKEN",)
    quick_timeout = 1.0  # gunicorn: a worker's first request can take 0.4 s

    @contextlib.contextmanager
    def running(self) -> Iterator[Backend]:
        from tests.linkding_server import LinkdingServer, require_server

        require_server()
        assert self.request is not None, "the Linkding backend needs the test's request"
        server: LinkdingServer = self.request.getfixturevalue("linkding_server")
        self.account = server.account()
        self.monkeypatch.setenv("LINKDING_TOKEN", self.account.token)
        with self._serving(server.base_url):
            yield self

    @property
    def now(self) -> int:
        return int(time.time()) + self._skew

    _skew = 0

    def advance(self, seconds: int) -> None:
        self._skew += seconds  # only rulebot's clock moves: the server keeps real time

    def executed(self) -> list[tuple[str, ...]]:
        """The server keeps no record of its own to read: the proxy's log of
        the changes it forwarded and the server answered 2xx."""
        assert self.proxy is not None, "intercept() first"
        return [
            (e.request.method, e.request.path, hashlib.sha256(e.request.body).hexdigest()[:12])
            for e in self.proxy.requests("apply")
            if e.request.method != "GET" and e.status is not None and 200 <= e.status < 300
        ]

    def requests(self) -> int:
        """The API requests gunicorn logged (every account's: tests run one at a time)."""
        return self.account.server.api_requests()

    def add(self, seed: Seed) -> str:
        bookmark_id = self.account.add(
            seed.url, list(seed.tags), title=seed.title, is_archived=seed.archived
        )
        self.account.set_added(bookmark_id, time.time() - seed.age_days * DAY)
        return str(bookmark_id)

    def set_tags(self, item_id: str, tags: Sequence[str]) -> None:
        self.account.patch(item_id, tag_names=list(tags))

    def set_archived(self, item_id: str, archived: bool) -> None:
        self.account.patch(item_id, is_archived=archived)

    def remove(self, item_id: str) -> None:
        self.account.delete(item_id)

    def rename_tag(self, old: str, new: str) -> None:
        """The web UI's tag editor (invisible to ``modified_since``), where it
        would take the rename; onto a tag the account has, it refuses (a
        merge), so then one bookmark at a time."""
        names = set(self.account.tags().values())
        if old in names and not {n for n in names if n.lower() == new.lower()} - {old}:
            self.account.rename_tag_in_ui(old, new)
        else:
            super().rename_tag(old, new)

    def held(self) -> dict[str, Held]:
        return {
            item_id: Held(b["url"], tuple(sorted(b["tag_names"])), b["is_archived"], None)
            for item_id, b in self.account.bookmarks().items()
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
        RaindropBackend,
        ShaarliBackend,
        ReadwiseBackend,
        LinkdingBackend,
    )
}
