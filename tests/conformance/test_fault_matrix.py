"""The fault matrix for every source (#22, item 3): one table of ways a server
fails, each row run against every ``backend`` (tests/conformance/backends.py).

Every network source runs behind the fault proxy (``proxy.py``), so a fault
is the same event on each: a 503, a 429 with and without ``Retry-After``, a
401, an item another client deleted a moment before rulebot's request for it
(the service's own 404), a connection dropped before the server saw the
request or after it did the work, an answer later than the client's
timeout, the server vanishing mid-apply, and rulebot killed with a request
in flight. The local library has no server: the network rows are not
generated for it (there is no request to fail), and it has the kill row
(SIGKILL inside its apply transaction).

Each row checks the same things:

- the exit code and the message the user gets (one paragraph at most,
  never a traceback; a credentials error names the variables);
- the service's final state, read from the service itself: every planned
  change there once, the ``add`` one item, nothing else touched;
- nothing ran twice: what the service *executed* of rulebot's requests
  (``Backend.executed``: the fake's own record, the proxy's log for
  Shaarli) holds each change once; where an answer was lost after the work
  was done (``drop_after``, a timeout) the client cannot know and may send
  it again, so twice is allowed there, and the ``add`` must still be one item;
- a clean re-run (faults cleared, the server back) exits 0 and converges: the
  state is the one intended, the mirror is the service, and a plan after it
  is empty.

``server-gone-mid-apply`` asserts what #22 asks for, not what rulebot did
when it was written: after a few consecutive connection failures the run
stops with one message naming the server (it retried every remaining unit
six times, a failure line each).

``tests/test_fault_matrix.py`` is the older, deeper table for Pocket alone
(its batches, garbage bodies, rate-limit budgets, per-action errors); see
docs/testing.md, "The fault matrix".
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from rulebot.rules.schema import DEFAULT_CONCURRENCY

from .backends import BACKENDS, KILL_AT, Backend, Seed
from .model import folded, held_of, mirror
from .proxy import Fault, FaultProxy

ITEMS = 6  # items a row's rule acts on (one unit, one change each)
# for the server gone: enough units left that retrying each one six times
# (what rulebot did when this was written) is far more than stopping after a few
GONE_ITEMS = 12
DOCS = "https://docs.example/new"
RULES = (
    "limits: {max_actions: 1000, max_deletes: 1000}\n"
    "rules:\n"
    "  - name: add-docs\n"  # first: the one change a blind re-send could double
    f'    actions: [{{add: {{url: "{DOCS}", title: New docs, tags: [docs]}}}}]\n'
    "  - name: mark-done\n"
    "    where: {tag: later}\n"
    "    actions: [{tags_add: [done]}]\n"
)
ATTEMPTS = 6  # rulebot.http: one request and its 5 retries


def library(size: int) -> list[Seed]:
    return [
        Seed(
            f"https://f.example/{n}",
            f"F{n}",
            ("later", "keep") if n % 3 else ("later",),
            age_days=10 + n,
        )
        for n in range(size)
    ]


# -- the rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Faulted:
    """A faulted run, as a row's own check sees it."""

    backend: Backend
    code: int
    said: str  # stdout + stderr
    took: float  # seconds
    failed: list[str]  # attempts of rulebot's that got no answer at all
    seeds: list[Seed]
    armed: object  # what the row's ``arm`` gave back


def run_cli(backend: Backend, armed: object) -> tuple[int, str]:
    code, out, err = backend.cli("run")
    return code, out + err


@dataclass(frozen=True)
class Row:
    id: str
    arm: Callable[[Backend], object]  # inject the row's faults (after the mirror is synced)
    code: int = 0
    says: tuple[str, ...] = ()  # each must appear in stdout + stderr
    resend_ok: bool = False  # a lost answer may make the client send a change twice
    settings: Callable[[Backend], dict[str, object]] = lambda backend: {}
    items: int = ITEMS
    check: Callable[[Faulted], None] = lambda faulted: None  # the row's own
    run: Callable[[Backend, object], tuple[int, str]] = run_cli
    local: bool = False  # applies to the local library too


def each(*faults: tuple[str, dict[str, Any]]) -> Callable[[Backend], None]:
    def arm(backend: Backend) -> None:
        for fault, kw in faults:
            backend.inject(fault, **kw)

    return arm


def proxied(backend: Backend) -> FaultProxy:
    assert backend.proxy is not None
    return backend.proxy


def waited(faulted: Faulted) -> None:
    assert faulted.took >= 1.0, "Retry-After: 1 was not waited out"


def did_not_wait(faulted: Faulted) -> None:
    assert faulted.took < 5, "it waited, though the wait asked for is past max_rate_wait"


def never_retried(faulted: Faulted) -> None:
    """A 401 is a credentials problem naming the variables, and nothing is
    sent again once the server refused them (an OAuth2 client renews its
    token once and tries once more)."""
    backend = faulted.backend
    missing = [variable for variable in backend.credentials if variable not in faulted.said]
    assert not missing, f"the message does not name {missing}:\n{faulted.said}"
    refused = Counter(
        (e.request.method, e.request.path) for e in proxied(backend).log if e.answered == 401
    )
    most = 2 if backend.renews_token else 1
    assert refused and max(refused.values()) <= most, f"a refused request was retried: {refused}"
    assert backend.executed() == [], "the run went on after the server refused the credentials"


def stopped_once(faulted: Faulted) -> None:
    """The target (#22): after a few consecutive connection failures the run
    stops with ONE clear message naming the server, instead of retrying every
    remaining unit six times; the attempts at the vanished server are bounded
    by the units in flight when it went and a couple more, each given a
    request's usual retries."""
    address = proxied(faulted.backend).base_url.removeprefix("http://")
    naming = [line for line in faulted.said.splitlines() if address in line]
    bound = ATTEMPTS * (DEFAULT_CONCURRENCY + 2)
    shown = "\n".join(naming[:3] + ["…"] * (len(naming) > 3))
    assert len(naming) == 1 and len(faulted.failed) <= bound, (
        f"{len(naming)} lines name {address} (one wanted), {len(faulted.failed)} attempts at "
        f"the server once it was gone (at most {bound} wanted):\n{shown}"
    )
    assert len(faulted.backend.executed()) <= len(faulted.seeds), "it never stopped"


def hold_a_change(backend: Backend) -> Fault | None:
    """The third change a run sends is held at the proxy (the local library: none)."""
    return backend.inject("hold", nth=3) if backend.upstream else None


def killed(backend: Backend, held: object) -> tuple[int, str]:
    """``rulebot run`` SIGKILLed mid-apply: a server's run while its third
    change is on the way (the server then does it, and nobody hears the
    answer); the local library's inside its one transaction, at the third action."""
    if not backend.upstream:
        process = backend.spawn("run", env={KILL_AT: "3"})
        out, err = process.communicate(timeout=30)
        return process.returncode, out + err
    assert isinstance(held, Fault)
    process = backend.spawn("run")
    try:
        assert held.held.wait(20), "the run never reached the request to kill it in"
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        held.release.set()  # the server gets the request nobody waits for
    return process.returncode, out + err


def nothing_committed(faulted: Faulted) -> None:
    if not faulted.backend.upstream:
        assert faulted.backend.executed() == [], "a killed local apply left part of its work"


ROWS = [
    # one 503 on the listing, two on the first change: retried, nothing lost or doubled
    Row("503-retried", each(("503", {"on": "sync"}), ("503", {"count": 2}))),
    # a change answered 503 until rulebot gives up: one failure, the re-run does it
    Row(
        "503-until-give-up",
        each(("503", {"count": ATTEMPTS})),
        code=1,
        says=("503", f"{ATTEMPTS} times", "giving up"),
    ),
    Row("429-retry-after", each(("429", {"retry_after": 1})), says=("waiting 1 s",), check=waited),
    Row("429-without-retry-after", each(("429", {"count": 2}))),
    # Retry-After is honoured up to max_rate_wait, never past it
    Row(
        "429-retry-after-past-the-cap",
        each(("429", {"retry_after": 3600})),
        code=1,
        says=("3600 s, longer than",),
        settings=lambda backend: {"max_rate_wait": 5},
        check=did_not_wait,
    ),
    # the credentials refused from the first change on
    Row(
        "401-never-retried",
        each(("401", {"count": 99})),
        code=1,
        says=("401",),
        check=never_retried,
    ),
    # another client deletes an item as rulebot's change to it is on the way
    Row("404-item-gone-is-moot", each(("404", {}))),
    Row("drop-before-work", each(("drop", {"count": 2}))),
    # requests 1 (the add) and 3 are done by the server, their answers lost
    Row(
        "drop-after-work",
        each(("drop_after", {}), ("drop_after", {"nth": 3})),
        resend_ok=True,
    ),
    # the add reaches the server after the client's timeout (and its retry)
    Row(
        "timeout",
        lambda backend: backend.inject("slow", seconds=2 * backend.quick_timeout),
        resend_ok=True,
        settings=lambda backend: {"timeout": backend.quick_timeout},
    ),
    # the server vanishes (connections refused) from the fourth change on
    Row(
        "server-gone-mid-apply",
        each(("gone", {"nth": 4})),
        code=1,
        items=GONE_ITEMS,
        check=stopped_once,
    ),
    Row(
        "killed-mid-apply",
        hold_a_change,
        code=-signal.SIGKILL,
        run=killed,
        check=nothing_committed,
        local=True,
    ),
]
CLEAN = Row("clean", lambda backend: None)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff sleeps stay real but short: the matrix tests outcomes, not the jitter."""
    monkeypatch.setattr("rulebot.http.waiting.MAX_BACKOFF", 0.05)
    monkeypatch.setattr("rulebot.sources.pocket.api.MAX_BACKOFF", 0.05)


@pytest.fixture
def failures(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every attempt of this process's HTTP clients that got no answer at all
    (refused, dropped, timed out): a proxy that is gone cannot count them."""
    failed: list[str] = []
    send = httpx.HTTPTransport.handle_request

    def counted(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        try:
            return send(transport, request)
        except httpx.TransportError:
            failed.append(f"{request.method} {request.url}")
            raise

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", counted)
    yield failed


# -- the checks every row makes ---------------------------------------------------------------


def intended(seeds: list[Seed], gone: list[str]) -> dict[str, tuple[str, ...]]:
    """Every item's tags once the rules have run: a library item gains ``done``
    (unless another client deleted it), and the add is there with its tag."""
    state = {s.url: tuple(sorted({*s.tags, "done"})) for s in seeds if s.url not in gone}
    return {**state, DOCS: ("docs",)}


def check_state(backend: Backend, seeds: list[Seed]) -> None:
    held = list(backend.held().values())
    urls = Counter(h.url for h in held)
    assert urls[DOCS] == 1, f"the add made {urls[DOCS]} items"
    assert all(n == 1 for n in urls.values()), f"an item twice: {urls}"
    have = {h.url: h.folded().tags for h in held}
    assert have == intended(seeds, backend.removed)


def check_partial(backend: Backend, seeds: list[Seed]) -> None:
    """After a failed run: each item as it was or as the rules meant, never
    anything else; the add at most once."""
    before = {s.url: tuple(sorted(s.tags)) for s in seeds if s.url not in backend.removed}
    after = intended(seeds, backend.removed)
    held = list(backend.held().values())
    urls = Counter(h.url for h in held)
    assert all(n == 1 for n in urls.values()), f"an item twice: {urls}"
    for h in held:
        assert h.folded().tags in (before.get(h.url), after[h.url]), f"{h.url} holds {h.tags}"
    assert set(urls) - {DOCS} == set(before), "an item appeared or went"


def check_once(backend: Backend, resend_ok: bool) -> None:
    counts = Counter(backend.executed())
    most = 2 if resend_ok else 1
    over = {key: n for key, n in counts.items() if n > most}
    assert not over, f"executed more than {most}x: {over}"


def check_mirror(backend: Backend) -> None:
    held = {item.url: held_of(item, backend.caps) for item in mirror().values()}
    assert folded(held) == folded(backend.by_url())


def check_said(row: Row, code: int, said: str) -> None:
    want = row.code
    assert code == want, f"exit {code}, not {want}:\n{said}"
    for text in row.says:
        assert text in said, f"{text!r} not in:\n{said}"
    assert "Traceback" not in said and "internal error" not in said, said
    errors = [line for line in said.splitlines() if line.startswith("rulebot: error:")]
    assert len(errors) <= 1, said  # one paragraph at most


class Problems(list[str]):
    """What a row found, gathered so one test reports every check that failed
    (the faulted run's and the re-run's) rather than the first."""

    def check(self, what: str, check: Callable[..., None], *args: Any) -> None:
        try:
            check(*args)
        except AssertionError as err:
            self.append(f"{what}: {err}")


# -- the table ------------------------------------------------------------------------------


# Defects this matrix found that are not fixed on main yet: strict, so the row
# fails the suite the moment the fix lands and the entry must go.
OPEN_DEFECTS: dict[tuple[str, str], str] = {}
# Where a source answers a row differently by design: (source, row) -> exit code.
# Readeck does not detect duplicate URLs, so a create whose answer did not come
# within the timeout (it may still land) is never sent again in the same run:
# that run fails, and the re-run sends it only if it did not land.
EXIT_CODES = {("readeck", "timeout"): 1}


# Every (source, row) pair that means something: the local library has no
# server, so it is asked only the rows marked ``local`` (the kill row).
PAIRS = [
    (name, row) for name, source in BACKENDS.items() for row in ROWS if row.local or source.network
]


@pytest.mark.parametrize(
    ("backend", "row"),
    PAIRS,
    ids=[f"{name}-{row.id}" for name, row in PAIRS],
    indirect=["backend"],
)
def test_fault_matrix(
    backend: Backend, row: Row, failures: list[str], request: pytest.FixtureRequest
) -> None:
    if (backend.name, row.id) in OPEN_DEFECTS:
        why = OPEN_DEFECTS[backend.name, row.id]
        request.applymarker(pytest.mark.xfail(strict=True, reason=why))
    if (backend.name, row.id) in EXIT_CODES:
        row = replace(row, code=EXIT_CODES[backend.name, row.id])
    seeds = library(row.items)
    backend.seed(seeds)
    if backend.upstream:
        backend.intercept()
    settings = {"batch_size": 3} if backend.caps.batches else {}  # several batches
    backend.configure(RULES, **settings, **row.settings(backend))
    backend.sync()
    armed = row.arm(backend)

    started = time.monotonic()
    code, said = row.run(backend, armed)
    took = time.monotonic() - started
    if backend.proxy is not None:
        backend.proxy.settle()
        unfired = [f.kind for f in backend.proxy.injected if not f.fired]
        assert not unfired, f"faults armed but never met: {unfired}"  # the row tested nothing

    found = Problems()
    found.check("the faulted run", check_said, row, code, said)
    found.check("the faulted run", check_once, backend, row.resend_ok)
    found.check(
        "the faulted run", row.check, Faulted(backend, code, said, took, failures, seeds, armed)
    )
    if row.code == 0:
        found.check("the faulted run", check_state, backend, seeds)
        found.check("the faulted run: the mirror", check_mirror, backend)
    else:
        found.check("the faulted run", check_partial, backend, seeds)

    # a clean re-run (the faults gone, the server back) finishes the work, and
    # over both runs nothing ran twice
    backend.back()
    code, out, err = backend.cli("run")
    if backend.proxy is not None:
        backend.proxy.settle()
    found.check("the re-run", check_said, CLEAN, code, out + err)
    found.check("the re-run", check_state, backend, seeds)
    found.check("the re-run", check_once, backend, row.resend_ok)
    found.check("the re-run: the mirror", check_mirror, backend)
    code, out, err = backend.cli("plan", "--detailed-exitcode")
    found.check("a plan after the re-run", check_said, CLEAN, code, out + err)
    assert not found, "\n\n".join(found)
