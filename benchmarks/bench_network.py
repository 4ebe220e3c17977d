"""What a run costs on a real network, per source: requests and seconds.

Each source's fake server runs on 127.0.0.1 behind a modelled network
(``FakeServer.rtt``: a round trip per request, one more on a new connection;
``.bandwidth``: bytes a second each way, shared by every connection). For
each source the benchmark fills the fake with UNITS items, then runs the
real ``rulebot run`` (in process) twice:

- a first run: the full sync, then one rule whose action changes every item:
  UNITS units (one rule's actions on one item, ``sources/applier.py``);
- an idle run: the same command again; nothing is left to do, so it is the
  sync alone.

The apply is timed around ``run.pipeline.apply`` (the call ``rulebot run``
makes), and its requests counted on the fake. The floor it is compared to:

- per-request sources: ``ceil(units / concurrency) x RTT`` (the issue's
  floor), and, where a unit takes R requests (Linkding's tag edits: a GET
  and a PATCH), ``R x`` that (the source's floor, the ratio's denominator);
- batching sources (Pocket's ``/v3/send``, Raindrop.io's bulk update): the
  batches go one after another, so ``requests x RTT``;
- paced sources (Readwise Reader, Raindrop.io's per-item edits): the rate
  limit, not the RTT. L requests of a class in any 60 s, so R requests end
  at ``floor((R - 1) / L) x 60 s`` plus the last window's requests at the
  concurrency: ``ceil(rest / concurrency) x RTT``. They run PACED_UNITS
  units (default 100) unless told otherwise: 2,000 would take 40 minutes.

    python benchmarks/bench_network.py [--rtt 50] [--units 2000]
        [--sources karakeep,wallabag,...] [--concurrency 4] [--bandwidth 1MiB]
        [--paced-units 100]

``--concurrency 1,2,4,8,16`` runs each source at each concurrency (one
table row each). ``--scan N`` instead measures what a full scan of N items
costs (``rulebot sync --full``) at the RTT and ``--bandwidth``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rulebot.cli import main as rulebot
from rulebot.fake.base import FakeServer
from rulebot.fake.cli import bandwidth as read_bandwidth
from rulebot.run import pipeline

T = 1_795_672_800  # 2026-11-26T06:00:00Z: every item was added before it
ARCHIVE = "  - name: net\n    where: {status: unread}\n    actions: [archive]\n"
TAG = "  - name: net\n    where: {tag: old}\n    actions: [{tags_remove: [old]}]\n"
FAVORITE = "  - name: net\n    where: {favorite: false}\n    actions: [favorite]\n"
SHAARLI_TAG = "  - name: net\n    where: {tag: old}\n    actions: [{tags_replace: [new]}]\n"


@dataclass
class Source:
    """One source as the benchmark drives it."""

    name: str
    block: str  # the config block's key
    start: Callable[[], FakeServer]  # the fake, built and started (not yet behind the network)
    env: dict[str, str]
    fill: Callable[[Any, int], None]  # UNITS items that the rule changes, each once
    rule: str
    what: str  # the action, in words
    kind: str = "request"  # "request", "batch" or "paced"
    limits: dict[str, int] = field(default_factory=dict)  # paced: per minute, the unit's class
    per_unit: int = 1  # requests a unit needs (paced: the floor counts these, not retries)
    concurrency: bool = True  # the config takes `concurrency`


def _karakeep() -> Source:
    from rulebot.fake.karakeep import FakeKarakeep
    from rulebot.fake.karakeep.server import DEFAULT_API_KEY

    def fill(server: FakeKarakeep, n: int) -> None:
        for i in range(n):
            server.add_bookmark(f"https://net.example/{i}", f"Bookmark {i}", created_at=T - i)

    return Source(
        "karakeep",
        "karakeep",
        lambda: FakeKarakeep(now=T, api_key=DEFAULT_API_KEY).start(),
        {"KARAKEEP_API_KEY": DEFAULT_API_KEY},
        fill,
        ARCHIVE,
        "archive (PATCH)",
    )


def _wallabag() -> Source:
    from rulebot.fake.wallabag import FakeWallabag, model

    def fill(server: FakeWallabag, n: int) -> None:
        for i in range(n):
            server.add_entry(f"https://net.example/{i}", f"Entry {i}", created_at=T - i)

    env = {
        "WALLABAG_CLIENT_ID": model.DEFAULT_CLIENT_ID,
        "WALLABAG_CLIENT_SECRET": model.DEFAULT_CLIENT_SECRET,
        "WALLABAG_USERNAME": model.DEFAULT_USERNAME,
        "WALLABAG_PASSWORD": model.DEFAULT_PASSWORD,
    }
    return Source(
        "wallabag",
        "wallabag",
        lambda: FakeWallabag().start(),
        env,
        fill,
        ARCHIVE,
        "archive (PATCH)",
    )


def _readeck() -> Source:
    from rulebot.fake.readeck import FakeReadeck
    from rulebot.fake.readeck.server import DEFAULT_TOKEN

    def fill(server: FakeReadeck, n: int) -> None:
        for i in range(n):
            server.add_bookmark(f"https://net.example/{i}", f"Bookmark {i}", created=T - i)

    return Source(
        "readeck",
        "readeck",
        lambda: FakeReadeck(token=DEFAULT_TOKEN).start(),
        {"READECK_TOKEN": DEFAULT_TOKEN},
        fill,
        ARCHIVE,
        "archive (PATCH)",
    )


def _shaarli() -> Source:
    from rulebot.fake.shaarli import DEFAULT_SECRET, FakeShaarli

    def fill(server: FakeShaarli, n: int) -> None:
        for i in range(n):
            server.add_link(f"https://net.example/{i}", f"Link {i}", tags=["old"], created=T - i)

    return Source(
        "shaarli",
        "shaarli",
        lambda: FakeShaarli(secret=DEFAULT_SECRET).start(),
        {"SHAARLI_API_SECRET": DEFAULT_SECRET},
        fill,
        SHAARLI_TAG,
        "tags_replace (GET + PUT)",
    )


def _linkding() -> Source:
    from rulebot.fake.linkding import DEFAULT_TOKEN, FakeLinkding

    def fill(server: FakeLinkding, n: int) -> None:
        for i in range(n):
            server.add_bookmark(f"https://net.example/{i}", f"Bookmark {i}", ["old"], added=T - i)

    return Source(
        "linkding",
        "linkding",
        lambda: FakeLinkding(token=DEFAULT_TOKEN).start(),
        {"LINKDING_TOKEN": DEFAULT_TOKEN},
        fill,
        TAG,
        "tags_remove (GET + PATCH)",
    )


def _linkding_archive() -> Source:
    source = _linkding()
    source.name, source.rule, source.what = "linkding-archive", ARCHIVE, "archive (POST)"
    return source


def _readwise() -> Source:
    from rulebot.fake.readwise import FakeReadwise
    from rulebot.fake.readwise.server import DEFAULT_TOKEN

    def fill(server: FakeReadwise, n: int) -> None:
        for i in range(n):
            server.add_document(f"https://net.example/{i}", title=f"Doc {i}", created_at=T - i)

    return Source(
        "readwise",
        "readwise",
        lambda: FakeReadwise(token=DEFAULT_TOKEN).start(),  # 429 past the documented limits
        {"READWISE_TOKEN": DEFAULT_TOKEN},
        fill,
        ARCHIVE,
        "archive (PATCH /update)",
        kind="paced",
        limits={"update": 50},
    )


def _raindrop(per_item: bool) -> Source:
    from rulebot.fake.raindrop import FakeRaindrop
    from rulebot.fake.raindrop.server import DEFAULT_TOKEN

    def fill(server: FakeRaindrop, n: int) -> None:
        for i in range(n):
            server.add_raindrop(
                f"https://net.example/{i}", f"Drop {i}", tags=["old"], created=T - i
            )

    return Source(
        "raindrop-per-item" if per_item else "raindrop",
        "raindrop",
        lambda: FakeRaindrop(token=DEFAULT_TOKEN, rate_limit=120).start(),
        {"RAINDROP_TOKEN": DEFAULT_TOKEN},
        fill,
        TAG if per_item else FAVORITE,
        "tags_remove (GET + PUT)" if per_item else "favorite (bulk PUT, 100 ids)",
        kind="paced" if per_item else "batch",
        limits={"default": 120},
        per_unit=2 if per_item else 1,
    )


def _pocket() -> Source:
    from rulebot.fake.pocket import FakePocket
    from rulebot.fake.pocket.server import DEFAULT_ACCESS_TOKEN, DEFAULT_CONSUMER_KEY

    def fill(server: FakePocket, n: int) -> None:
        for i in range(n):
            server.add_item(f"https://net.example/{i}", f"Item {i}", time_added=T - i)

    env = {"POCKET_CONSUMER_KEY": DEFAULT_CONSUMER_KEY, "POCKET_ACCESS_TOKEN": DEFAULT_ACCESS_TOKEN}
    return Source(
        "pocket",
        "pocket",
        lambda: FakePocket(user_limit=10**9).start(),
        env,
        fill,
        ARCHIVE,
        "archive (/v3/send, 30 a batch)",
        kind="batch",
        concurrency=False,
    )


SOURCES: dict[str, Callable[[], Source]] = {
    "karakeep": _karakeep,
    "wallabag": _wallabag,
    "readeck": _readeck,
    "shaarli": _shaarli,
    "linkding": _linkding,
    "linkding-archive": _linkding_archive,
    "readwise": _readwise,
    "raindrop": lambda: _raindrop(False),
    "raindrop-per-item": lambda: _raindrop(True),
    "pocket": _pocket,
}
DEFAULT_SOURCES = (
    "karakeep,wallabag,readeck,shaarli,linkding,linkding-archive,readwise,raindrop,"
    "raindrop-per-item,pocket"
)


class Remote:
    """A source's fake in a process of its own, as a real server is (in this
    one it would take the GIL from rulebot): filled, started, then asked for
    its request count, given its network, stopped."""

    def __init__(self, name: str, items: int) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(name, items, child), daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def _ask(self, *message: Any) -> Any:
        self._conn.send(message)
        return self._conn.recv()

    def calls(self) -> int:
        return int(self._ask("calls"))

    def network(self, rtt: float, bandwidth: float | None) -> None:
        self._ask("network", rtt, bandwidth)

    def cpu(self) -> float:
        """CPU seconds the server's process has used so far."""
        return float(self._ask("cpu"))

    def received(self) -> int:
        """Bytes of every answer's body so far."""
        return int(self._ask("received"))

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(timeout=10)


def _serve(name: str, items: int, conn: Any) -> None:
    source = SOURCES[name]()
    server = source.start()
    source.fill(server, items)
    conn.send(server.base_url)
    while True:
        what, *args = conn.recv()
        if what == "calls":
            conn.send(server.calls())
        elif what == "network":
            server.rtt, server.bandwidth = args
            conn.send(None)
        elif what == "cpu":
            conn.send(time.process_time())
        elif what == "received":
            conn.send(sum(len(e.response_body) for e in server.exchanges))
        else:
            server.stop()
            conn.send(None)
            return


@dataclass
class Measured:
    source: Source
    concurrency: int
    units: int
    first_requests: int  # the whole first run: sync and apply
    apply_requests: int
    apply_seconds: float
    apply_cpu: tuple[float, float]  # CPU seconds while applying: rulebot, the server
    next_requests: int  # the run after it: nothing to do, the first run's changes synced back
    next_seconds: float
    idle_requests: int  # and the one after that: nothing changed at all
    idle_seconds: float


class ApplyTimer:
    """Wraps ``pipeline.apply``: the seconds and requests of the apply alone."""

    def __init__(self, server: Remote) -> None:
        self.server, self.seconds, self.requests, self.units = server, 0.0, 0, 0
        self.cpu = self.server_cpu = 0.0  # CPU seconds: rulebot's process, the server's
        self.real = pipeline.apply

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        before, server_cpu = self.server.calls(), self.server.cpu()
        started, cpu = time.perf_counter(), time.process_time()
        result = self.real(*args, **kwargs)
        self.seconds += time.perf_counter() - started
        self.cpu += time.process_time() - cpu
        self.server_cpu += self.server.cpu() - server_cpu
        self.requests += self.server.calls() - before
        failed = [o for o in result.outcomes if o.state != "succeeded"]
        assert not failed, failed[:3]
        self.units += len(result.outcomes)  # one action per unit here
        return result


@contextlib.contextmanager
def timed_apply(server: Remote) -> Iterator[ApplyTimer]:
    timer = ApplyTimer(server)
    pipeline.apply = timer  # rulebot run calls pipeline.apply
    try:
        yield timer
    finally:
        pipeline.apply = timer.real


def quiet(*args: str) -> None:
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()) as err,
    ):
        code = rulebot(["-q", *args])
    if code != 0:
        raise SystemExit(f"rulebot {' '.join(args)}: exit {code}\n{err.getvalue()}")


def config(source: Source, server: Remote, workdir: Path, concurrency: int) -> Path:
    block = f"base_url: '{server.base_url}'"
    if source.concurrency:
        block += f", concurrency: {concurrency}"
    path = workdir / "rules.yaml"
    path.write_text(
        f"version: 1\n{source.block}: {{{block}}}\nstore: {workdir / 'rulebot.db'}\n"
        f"limits: {{max_actions: 1000000, max_deletes: 0}}\nrules:\n{source.rule}",
        encoding="utf-8",
    )
    return path


def measure(
    source: Source, units: int, concurrency: int, rtt: float, bandwidth: float | None
) -> Measured:
    os.environ.update(source.env)
    with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
        server = Remote(source.name, units)
        try:
            server.network(rtt, bandwidth)
            path = str(config(source, server, Path(tmp), concurrency))
            with timed_apply(server) as timer:
                quiet("-c", path, "run")
            if timer.units != units:
                raise SystemExit(f"{source.name}: {timer.units} units applied, not {units}")
            first = server.calls()
            after = [first]
            seconds = []
            for _ in range(2):
                started = time.perf_counter()
                with timed_apply(server) as idle:
                    quiet("-c", path, "run")
                seconds.append(time.perf_counter() - started)
                after.append(server.calls())
                if idle.units:
                    raise SystemExit(f"{source.name}: a later run applied {idle.units} actions")
            return Measured(
                source,
                concurrency,
                units,
                first,
                timer.requests,
                timer.seconds,
                (timer.cpu, timer.server_cpu),
                after[1] - after[0],
                seconds[0],
                after[2] - after[1],
                seconds[1],
            )
        finally:
            server.stop()


def floors(m: Measured, rtt: float) -> tuple[float, float, str]:
    """(the issue's floor, the source's floor, how the source's is reckoned)."""
    c, n = m.concurrency, m.units
    issue = math.ceil(n / c) * rtt
    per_unit = m.apply_requests / n
    if m.source.kind == "batch":
        return issue, m.apply_requests * rtt, f"{m.apply_requests} batches × RTT"
    if m.source.kind == "paced":
        limit = next(iter(m.source.limits.values()))
        needed = n * m.source.per_unit  # a request refused (429) and sent again is not in it
        windows = (needed - 1) // limit
        rest = needed - windows * limit
        paced = windows * 60 + math.ceil(rest / c) * rtt
        return issue, paced, f"⌊({needed}−1)/{limit}⌋ min + ⌈{rest}/c⌉ × RTT"
    r = round(per_unit)
    if r <= 1:
        return issue, issue, "⌈units/c⌉ × RTT"
    return issue, r * issue, f"{r} × ⌈units/c⌉ × RTT ({r} requests a unit)"


HEADER = (
    "| source | action | concurrency | units | first run: requests (apply) "
    "| apply | ⌈units/c⌉×RTT | source floor | apply ÷ floor | CPU: rulebot, server "
    "| next run | idle run |\n"
    "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"
)


def row(m: Measured, rtt: float) -> None:
    """One table row (printed as soon as it is measured)."""
    issue, floor, how = floors(m, rtt)
    conc = str(m.concurrency) if m.source.concurrency else "-"
    print(
        f"| {m.source.name} | {m.source.what} | {conc} | {m.units} "
        f"| {m.first_requests} ({m.apply_requests}) | {m.apply_seconds:.2f} s "
        f"| {issue:.2f} s | {floor:.2f} s: {how} | {m.apply_seconds / floor if floor else math.inf:.2f}× "
        f"| {m.apply_cpu[0]:.2f} s, {m.apply_cpu[1]:.2f} s "
        f"| {m.next_requests} req, {m.next_seconds:.2f} s "
        f"| {m.idle_requests} req, {m.idle_seconds:.2f} s |",
        flush=True,
    )


def scan(source: Source, items: int, rtt: float, bandwidth: float | None) -> None:
    """A full sync of ``items`` at the RTT and bandwidth: requests, bytes, seconds."""
    os.environ.update(source.env)
    with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
        server = Remote(source.name, items)
        try:
            server.network(rtt, bandwidth)
            path = str(config(source, server, Path(tmp), 4))
            started = time.perf_counter()
            quiet("-c", path, "sync", "--full")
            seconds = time.perf_counter() - started
            received = server.received()
            print(
                f"| {source.name} | {items} | {server.calls()} | {received / 2**20:.1f} MiB "
                f"| {seconds:.2f} s |",
                flush=True,
            )
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", type=float, default=50.0, metavar="MS", help="round trip, ms")
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--paced-units", type=int, default=100, metavar="N")
    parser.add_argument("--sources", default=DEFAULT_SOURCES, help="comma-separated")
    parser.add_argument("--concurrency", default="4", help="one or more, comma-separated")
    parser.add_argument("--bandwidth", type=read_bandwidth, default=None, metavar="RATE")
    parser.add_argument("--scan", type=int, default=0, metavar="N", help="measure full scans")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.sources.split(",") if name.strip()]
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        parser.error(f"unknown source {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    rtt = args.rtt / 1000
    cap = "no bandwidth cap" if args.bandwidth is None else f"{args.bandwidth:,.0f} B/s each way"
    if args.scan:
        print(f"full scan (`rulebot sync --full`), RTT {args.rtt:g} ms, {cap}\n")
        print("| source | items | requests | answer bodies | wall |")
        print("|---|---:|---:|---:|---:|")
        for name in names:
            scan(SOURCES[name](), args.scan, rtt, args.bandwidth)
        return 0
    levels = [int(c) for c in args.concurrency.split(",")]
    print(
        f"RTT {args.rtt:g} ms per request (one more per new connection), {cap}; "
        f"{args.units} units ({args.paced_units} on paced sources)\n"
    )
    print(HEADER, flush=True)
    for name in names:
        source = SOURCES[name]()
        units = args.paced_units if source.kind == "paced" else args.units
        for concurrency in levels if source.concurrency else levels[:1]:
            row(measure(source, units, concurrency, rtt, args.bandwidth), rtt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
