"""Hostile servers on 127.0.0.1: the HTTP layer and the sync hold (#11.4, #11.6, #11.7, #10.8).

Each server here is a few lines inside the test: a raw socket server for
answers no well-behaved HTTP library would produce (a byte a second, a
body without end, bytes that are not HTTP), and a small Pocket-shaped
``http.server`` for answers that are valid HTTP but hostile JSON.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rulebot.errors import ServerUnreachable
from rulebot.fake.karakeep import FakeKarakeep
from rulebot.fake.linkding import FakeLinkding
from rulebot.fake.pocket import FakePocket
from rulebot.fake.readeck import FakeReadeck
from rulebot.fake.wallabag import FakeWallabag
from rulebot.http import (
    BodyTooLargeError,
    HttpClient,
    HttpError,
    HttpRateLimitError,
    MaybeSentError,
    RateBudget,
    retry_after,
)
from rulebot.library.store import Store
from rulebot.sources.cursors import MAX_SKEW
from rulebot.sources.paging import Bounds, Listing
from rulebot.sources.pocket.api import PocketClient
from rulebot.sources.pocket.sync import CURSOR_KEY
from tests.conftest import ACCESS_TOKEN, CONSUMER_KEY
from tests.helpers import Answering, rb
from tests.test_pocket_mode import write_config

# -- servers --------------------------------------------------------------------------------


class RawServer:
    """Accepts connections; ``serve(conn)`` writes whatever it likes after
    the request headers were read."""

    def __init__(self, serve: Callable[[socket.socket], None], read: bool = True) -> None:
        self._serve, self._read = serve, read
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopped = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b"" if self._read else b"\r\n\r\n"
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                self._serve(conn)
            except OSError:
                pass

    def close(self) -> None:
        self.stopped.set()
        self._sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(serve: Callable[[socket.socket], None], read: bool = True) -> RawServer:
        servers.append(RawServer(serve, read))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


class PocketLike:
    """A Pocket-shaped server whose ``/v3/get`` pages come from ``page(offset)``."""

    def __init__(self, page: Callable[[int], dict[str, Any]]) -> None:
        outer = self
        self.gets = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/v3/get":
                    outer.gets += 1
                    answer = page(int(body.get("offset", 0)))
                else:
                    answer = {"status": 1, "action_results": [True] * len(body["actions"])}
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def item(item_id: Any, **fields: Any) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "given_url": f"https://example.com/{str(item_id)[:10]}",
        "given_title": "T",
        "status": "0",
        "time_added": "1700000000",
        **fields,
    }


def pocket_config(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = ""
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POCKET_CONSUMER_KEY", CONSUMER_KEY)
    monkeypatch.setenv("POCKET_ACCESS_TOKEN", ACCESS_TOKEN)
    (tmp_path / "rules.yaml").write_text(
        "version: 1\n"
        f"pocket:\n  base_url: {url}\n  page_size: 3\n{extra}"
        "rules:\n"
        "  - name: archive-old\n"
        "    where: {tag: old}\n"
        "    actions: [archive]\n",
        encoding="utf-8",
    )


def client(url: str, **kw: Any) -> HttpClient:
    options: dict[str, Any] = {"timeout": 1.0, "max_retries": 0, "sleep": lambda s: None}
    return HttpClient(url, **{**options, **kw})


# -- the total deadline and the size cap (#11.4) ------------------------------------------------


def test_a_server_trickling_its_body_is_cut_off_at_the_total_deadline(raw) -> None:
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(200):  # one byte every 0.1 s: a read timeout never fires
            conn.sendall(b"x")
            time.sleep(0.1)

    server = raw(trickle)
    started = time.monotonic()
    with pytest.raises(HttpError, match=r"no complete answer within 0.8 s \(timeout\) once"):
        client(server.url, timeout=0.5, total_timeout=0.8).request("GET", "/")
    assert time.monotonic() - started < 3


def test_a_server_trickling_its_headers_is_cut_off_too(raw) -> None:
    def trickle(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200:
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    server = raw(trickle)
    started = time.monotonic()
    with pytest.raises(HttpError, match="timeout"):
        client(server.url, timeout=0.5, total_timeout=0.8).request("GET", "/")
    assert time.monotonic() - started < 3


def test_a_huge_body_is_refused_while_streaming_and_never_fetched_again(raw) -> None:
    def endless(conn: socket.socket) -> None:  # chunked, no Content-Length, no end
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 65536
        for _ in range(1000):
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    server = raw(endless)
    http = client(server.url, max_body=1024 * 1024, max_retries=3)
    with pytest.raises(BodyTooLargeError, match=r"larger than 1 MiB; stopped reading"):
        http.request("GET", "/")
    assert http.requests_made == 1  # fatal, not retried


def test_a_declared_huge_body_is_refused_before_reading(raw) -> None:
    def declared(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nabc")

    server = raw(declared)
    with pytest.raises(BodyTooLargeError):
        client(server.url, max_body=1000).request("GET", "/")


def test_a_request_that_is_not_idempotent_is_never_re_sent_blindly(raw) -> None:
    answers: list[bytes] = []

    def failing(conn: socket.socket) -> None:
        answers.append(b"503")
        conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    server = raw(failing)
    http = client(server.url, max_retries=3)
    with pytest.raises(MaybeSentError, match="not sent again, as it may have reached") as caught:
        http.request("POST", "/create", idempotent=False)
    assert caught.value.problem == "server answered 503 (maintenance)"
    assert len(answers) == 1
    with pytest.raises(HttpError, match="4 times; giving up"):
        http.request("POST", "/create")  # idempotent: retried
    assert len(answers) == 5


# -- unreadable numbers in headers (#11.7) ----------------------------------------------------


@pytest.mark.parametrize("value", ["²", "٣", "9" * 300, "Wed, 99 Foo 2026", "-5", "1e9"])
def test_retry_after_garbage_is_treated_as_absent(value: str) -> None:
    assert retry_after({"Retry-After": value}) is None


def test_429_with_an_absurd_retry_after_backs_off_exponentially(raw) -> None:
    answers = iter([b"429 Too Many", b"429 Too Many", b"200 OK"])

    def limited(conn: socket.socket) -> None:
        status = next(answers)
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nRetry-After: " + b"9" * 300)
        conn.sendall(b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    server = raw(limited)
    sleeps: list[float] = []
    waits: list[str] = []
    http = client(server.url, sleep=sleeps.append, on_wait=waits.append, backoff_base=1.0)
    assert http.request("GET", "/", expect_json=True).data == {}
    assert sleeps == [1.0, 2.0]
    assert waits == [
        "rate limit reached; waiting 1 s for reset",
        "rate limit reached; waiting 2 s for reset",
    ]


def test_a_spent_rate_limit_budget_says_when_to_retry_and_no_other_client_waits_again(
    raw,
) -> None:
    def limited(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 429 Too Many\r\nRetry-After: 90\r\nConnection: close\r\n"
            b"Content-Length: 0\r\n\r\n"
        )

    server = raw(limited)
    budget = RateBudget()
    sleeps: list[float] = []
    first = client(server.url, sleep=sleeps.append, rate_budget=budget, max_wait=100)
    with pytest.raises(HttpRateLimitError) as caught:
        first.request("PATCH", "/a")
    assert sleeps == [90.0] * 10 and first.requests_made == 11
    message = str(caught.value)
    assert "still rate limited after waiting 10 times; try again after " in message
    assert message.endswith(" UTC (in 2 min)")
    assert caught.value.retry_at is not None and caught.value.retry_at - time.time() > 80
    # another worker's client of the same run: one request, no wait, the same answer
    second = client(server.url, sleep=sleeps.append, rate_budget=budget, max_wait=100)
    with pytest.raises(HttpRateLimitError, match="try again after"):
        second.request("PATCH", "/b")
    assert second.requests_made == 1 and len(sleeps) == 10


def test_x_limit_headers_in_other_digits_or_hundreds_of_digits_count_as_absent(raw) -> None:
    def odd_limits(conn: socket.socket) -> None:
        body = b'{"status": 2, "list": []}'
        conn.sendall(
            "HTTP/1.1 200 OK\r\nX-Limit-User-Remaining: ٠\r\nX-Limit-User-Reset: ²\r\n"
            f"X-Limit-Key-Remaining: {'7' * 400}\r\nConnection: close\r\n".encode()
            + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    server = raw(odd_limits)
    with PocketClient(server.url, CONSUMER_KEY, ACCESS_TOKEN, max_retries=0) as pocket:
        assert pocket.get()["status"] == 2
        assert pocket.rate_limits.user_remaining is None
        assert pocket.rate_limits.key_remaining is None
        assert pocket.get()["status"] == 2  # and no wait for a reset that was never said


# -- connection errors name the server (#10.8) ---------------------------------------------------


def test_a_refused_connection_names_the_server_and_the_port_hint_without_retrying() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    sleeps: list[float] = []
    http = client(f"http://127.0.0.1:{port}", max_retries=2, sleep=sleeps.append)
    with pytest.raises(HttpError) as caught:
        http.request("GET", "/")
    message = str(caught.value)
    assert f"connection to http://127.0.0.1:{port} failed" in message
    assert "is the port right and the server up?" in message
    # nothing listens: no retry will change that, so no backoff before saying so
    assert (http.requests_made, sleeps) == (1, [])
    assert isinstance(caught.value, ServerUnreachable) and caught.value.origin in message


def test_https_to_a_plain_http_port_hints_at_tls(raw) -> None:
    # Answers the TLS ClientHello at once, as an HTTP server does.
    server = raw(lambda conn: conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"), read=False)
    url = f"https://127.0.0.1:{server.port}"
    http = client(url, max_retries=5)
    with pytest.raises(HttpError) as caught:
        http.request("GET", "/")
    assert f"connection to https://127.0.0.1:{server.port} failed" in str(caught.value)
    assert "is it plain http on this port? try http://" in str(caught.value)
    assert http.requests_made == 1  # a TLS mistake is not retried


def test_http_to_a_tls_port_hints_at_https(raw) -> None:
    # What a TLS server answers to plain HTTP: a TLS alert record, not HTTP.
    server = raw(lambda conn: conn.sendall(b"\x15\x03\x01\x00\x02\x02\x46"))
    http = client(server.url, max_retries=5)
    with pytest.raises(HttpError, match=r"is it https on an http port\? try https://"):
        http.request("GET", "/")
    assert http.requests_made == 1


def test_an_answer_cut_short_is_retried_not_taken_for_a_server_that_is_not_http(raw) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",  # the server goes mid-body
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    ]
    server = raw(lambda conn: conn.sendall(answers.pop(0)))
    http = client(server.url, max_retries=2)
    assert http.request("GET", "/").status == 200
    assert http.requests_made == 2


def test_the_cli_names_a_refused_server_once_and_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pocket_config(f"http://127.0.0.1:{port}", tmp_path, monkeypatch)
    started = time.monotonic()
    code, _out, err = rb(capsys, "sync")
    assert code == 1
    assert err.count(f"http://127.0.0.1:{port}") == 1, err
    assert "is the port right" in err and "giving up" not in err
    assert "Traceback" not in err
    assert time.monotonic() - started < 2  # was 5 retries with backoff: 7-14 s of silence


# -- hostile JSON and items (#11.4, #11.6, #11.7) -------------------------------------------------


@pytest.fixture
def pocket_like() -> Iterator[Callable[[Callable[[int], Any]], PocketLike]]:
    servers: list[PocketLike] = []

    def start(page: Callable[[int], Any]) -> PocketLike:
        servers.append(PocketLike(page))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_json_nested_200k_deep_is_a_clean_error(
    pocket_like, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = pocket_like(lambda offset: b"[" * 200_000 + b"]" * 200_000)
    pocket_config(server.url, tmp_path, monkeypatch)
    monkeypatch.setattr("rulebot.http.waiting.random.uniform", lambda low, high: 0.0)
    code, _out, err = rb(capsys, "sync")
    assert code == 1
    assert "not JSON" in err and "does not look like a Pocket v3 server" in err
    assert "Traceback" not in err and "internal error" not in err


def test_a_server_repeating_its_page_ends_the_sync_when_nothing_new_comes(
    pocket_like, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = {"status": 1, "since": 1700000000, "list": {str(i): item(str(i)) for i in (1, 2, 3)}}
    server = pocket_like(lambda offset: page)  # ignores offset, never empty
    pocket_config(server.url, tmp_path, monkeypatch)
    code, out, err = rb(capsys, "sync")
    assert code == 0, err
    assert server.gets == 2
    assert "3 items in the store" in out


def test_a_server_sending_new_items_forever_is_stopped_by_its_total(
    pocket_like, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def endless(offset: int) -> dict[str, Any]:
        ids = [str(1000 + offset + i) for i in range(3)]
        return {"status": 1, "total": "6", "list": {i: item(i) for i in ids}}

    server = pocket_like(endless)
    pocket_config(server.url, tmp_path, monkeypatch)
    code, _out, err = rb(capsys, "sync")
    assert code == 1
    assert "more than the 6 it announced" in err
    assert server.gets <= 5


BAD_ITEMS = {
    "²": item("²"),
    "long": item("1" * 5000),
    "77": item("77", time_added=str(2**64)),
    "78": item("78", word_count=2**70),
    "79": item("79", status="٣"),
    "80": item("80", time_added=str(2**40)),  # fits 64 bits, but the year 36812 (#23.6)
    "81": item("81", time_read="253402300800"),  # the year 10000
    "echo": item(ACCESS_TOKEN),  # a server echoing the token as an id: masked in the warning
}


def test_bad_ids_and_numbers_are_skipped_with_a_warning_and_never_stored(
    pocket_like, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"5": item("5", tags={"old": {"item_id": "5", "tag": "old"}})}
    pages = [{"status": 1, "since": 1700000000, "list": {**BAD_ITEMS, **good}}]

    def page(offset: int) -> dict[str, Any]:
        return pages[0] if offset == 0 else {"status": 2, "list": []}

    server = pocket_like(page)
    pocket_config(server.url, tmp_path, monkeypatch)
    code, out, err = rb(capsys, "sync")
    assert code == 0, err
    assert "1 items in the store" in out or "1 item in the store" in out
    skipped = [line for line in err.splitlines() if "skipped item" in line]
    assert len(skipped) == 8, err
    assert ACCESS_TOKEN not in err and "skipped item <hidden>" in err
    assert all(len(line) < 400 for line in skipped)  # the 5000-digit id is clipped
    assert "skipped item ²" in err
    # The store is not poisoned: every later command works.
    for args in (("plan",), ("sync", "--full"), ("export", "out.csv"), ("items",)):
        code, out, err = rb(capsys, *args)
        assert code == 0, (args, err)
        assert "Traceback" not in err
    assert server.gets >= 3


def test_an_unreadable_since_is_not_kept_as_the_cursor(
    pocket_like, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def page(offset: int) -> dict[str, Any]:
        return {"status": 2, "since": "²" * 3, "list": []}

    server = pocket_like(page)
    pocket_config(server.url, tmp_path, monkeypatch)
    for _ in range(2):
        code, _out, err = rb(capsys, "sync")
        assert code == 0, err
    assert "ignoring the server's 'since'" in err


def test_a_since_far_ahead_of_this_clock_is_not_kept_and_the_next_sync_sees_changes(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pocket.add_item("https://example.com/a", "A")
    write_config(fake_pocket, rules="rules: []\n")
    assert rb(capsys, "sync")[0] == 0
    clock = fake_pocket.now
    fake_pocket.now = 4_102_444_800  # one answer from a clock gone wrong: 2100
    code, _out, err = rb(capsys, "sync")
    assert code == 0 and "2100-01-01T00:00:00Z" in err and "not believed" in err
    fake_pocket.now = clock + 60
    fake_pocket.add_item("https://example.com/b", "B")  # saved meanwhile, in another app
    assert rb(capsys, "sync")[0] == 0
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        assert {item.given_url for item in store.items()} >= {"https://example.com/b"}
        cursor = int(store.get_meta(CURSOR_KEY) or 0)
    assert cursor <= time.time() + MAX_SKEW
    # a cursor an older rulebot kept from such an answer: the next sync is a full one
    with Store.open(Path(".rulebot/rulebot.db")) as store:
        store.set_meta(CURSOR_KEY, "4102444800")
    code, out, err = rb(capsys, "sync")
    assert code == 0 and "syncing everything to repair it" in err and "full" in out


def test_action_errors_nested_900_deep_are_scrubbed_without_a_crash(raw) -> None:
    deep: object = ACCESS_TOKEN
    for _ in range(900):  # parses (under Python's limit), but too deep to walk
        deep = [deep]
    body = json.dumps(
        {"status": 1, "action_results": [False, False], "action_errors": [deep, [ACCESS_TOKEN]]}
    ).encode()

    def answer(conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        conn.sendall(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    server = raw(answer)
    with PocketClient(server.url, CONSUMER_KEY, ACCESS_TOKEN, max_retries=0) as pocket:
        response = pocket.send([{"action": "archive", "item_id": "1"}] * 2)
    assert ACCESS_TOKEN not in json.dumps(response.action_errors)
    assert response.action_errors[1] == ["<hidden>"]


# -- ids that a `$` or a missing bound let through (#23.11) ------------------------------------
ID_RULES = "rules:\n  - name: a\n    where: {tag: x}\n    actions: [archive]\n"


def _stored_ids(tmp_path: Path) -> list[str]:
    with Store.open(tmp_path / ".rulebot" / "rulebot.db") as store:
        return sorted(item.item_id for item in store.items())


def _karakeep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    fake = FakeKarakeep(now=1_795_672_800, api_key="kk-key-0123456789")
    monkeypatch.setenv("KARAKEEP_API_KEY", "kk-key-0123456789")
    good = fake.add_bookmark("https://k.example/good", "Good", tags=["x"])
    fake.add_bookmark("https://k.example/bad", "Bad", tags=["x"], bookmark_id="bm3\n")
    return fake, good, "karakeep"


def _readeck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    fake = FakeReadeck(now=1_795_672_800, token="rd-token-0123456789")
    monkeypatch.setenv("READECK_TOKEN", "rd-token-0123456789")
    good = fake.add_bookmark("https://r.example/good", "Good", labels=["x"])
    fake.add_bookmark("https://r.example/bad", "Bad", labels=["x"], bookmark_id="rd3\n")
    return fake, good, "readeck"


def _wallabag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    fake = FakeWallabag(now=1_795_672_800)
    for name, value in fake.env.items():
        monkeypatch.setenv(name, value)
    good = fake.add_entry("https://w.example/good", "Good", tags=["x"])
    fake.add_entry("https://w.example/bad", "Bad", tags=["x"], entry_id=2**63 + 5)
    return fake, str(good), "wallabag"


def _linkding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    fake = FakeLinkding(now=1_795_672_800, token="ld-token-0123456789")
    monkeypatch.setenv("LINKDING_TOKEN", "ld-token-0123456789")
    good = fake.add_bookmark("https://l.example/good", "Good", tags=["x"])
    fake._next_bookmark = 2**63 + 5  # Linkding's ids are a database's, bounded by 2^63
    fake.add_bookmark("https://l.example/bad", "Bad", tags=["x"])
    return fake, str(good), "linkding"


@pytest.mark.parametrize(
    "make", [_karakeep, _readeck, _wallabag, _linkding], ids=lambda f: f.__name__[1:]
)
def test_an_id_with_a_trailing_newline_or_beyond_2_63_is_skipped_never_stored_or_sent(
    make: Callable[..., tuple[Any, str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`^…$` took "bm3\\n" (stored, then sent as bm3%0A) and Wallabag's ids
    had no upper bound (2^63 + 5 stored as text): each is skipped with one
    warning, and the good item next to it is acted on."""
    monkeypatch.chdir(tmp_path)
    fake, good, kind = make(tmp_path, monkeypatch)
    with fake:
        (tmp_path / "rules.yaml").write_text(
            f"version: 1\n{kind}: {{base_url: '{fake.base_url}'}}\n{ID_RULES}"
        )
        code, out, err = rb(capsys, "run", "--format", "json")
        assert code == 0, err
        result = json.loads(out)
        assert result["summary"]["failed"] == 0
        assert [o["send"]["item_id"] for o in result["succeeded"]] == [good]
        assert err.count("skipped a") == 1 and (
            "bm3\\n" in err or "rd3\\n" in err or str(2**63 + 5) in err
        ), err
        assert _stored_ids(tmp_path) == [good]
        targets = [exchange.target for exchange in fake.exchanges]
        assert not [t for t in targets if "%0A" in t.upper() or str(2**63 + 5) in t], targets


def test_shaarli_link_ids_beyond_2_63_and_a_shorturl_with_a_newline_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHAARLI_API_SECRET", "shaarli-secret-0123456789")

    def link(link_id: int, shorturl: str) -> dict[str, Any]:
        return {
            "id": link_id,
            "url": f"https://s.example/{shorturl.strip()}",
            "shorturl": shorturl,
            "title": "T",
            "description": "",
            "tags": ["x"],
            "private": False,
            "created": "2026-01-01T00:00:00+00:00",
            "updated": "",
        }

    links = [link(1, "good01"), link(2**63, "huge01"), link(3, "nl0001\n")]

    def answer(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        return 200, "application/json", json.dumps(links).encode()

    with Answering(answer) as server:
        (tmp_path / "rules.yaml").write_text(
            f"version: 1\nshaarli: {{base_url: '{server.url}'}}\n"
            "rules:\n  - name: a\n    where: {tag: x}\n    actions: [{tags_add: [seen]}]\n"
        )
        code, _, err = rb(capsys, "sync")
    assert code == 0, err
    assert err.count("skipped a") == 2 and str(2**63) in err and "nl0001\\n" in err, err
    assert _stored_ids(tmp_path) == ["1"]


# -- listings that never end, on every source (#23.3) ---------------------------------------------

SECRETS = {
    "KARAKEEP_API_KEY": "ak2_hostile_key",
    "READECK_TOKEN": "rdk-hostile-token",
    "SHAARLI_API_SECRET": "shaarli-hostile-secret",
    "WALLABAG_CLIENT_ID": "wb-id",
    "WALLABAG_CLIENT_SECRET": "wb-secret",
    "WALLABAG_USERNAME": "wb-user",
    "WALLABAG_PASSWORD": "wb-password",
    "POCKET_CONSUMER_KEY": CONSUMER_KEY,
    "POCKET_ACCESS_TOKEN": ACCESS_TOKEN,
}
Reply = tuple[dict[str, str], Any]  # extra headers, JSON body


class Hostile:
    """An API-shaped server on 127.0.0.1: ``answer(path, query, page_number)`` gives
    each list page; the token endpoint and everything else answer a plain 200."""

    def __init__(self, answer: Callable[[str, dict[str, str], int], Reply]) -> None:
        outer = self
        self.pages = 0

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                fields = {k: v for k, v in (p.partition("=")[::2] for p in query.split("&") if p)}
                if path == "/v3/get":
                    fields = {k: str(v) for k, v in json.loads(body).items()}
                headers: dict[str, str] = {}
                if path == "/oauth/v2/token":
                    answer_body: Any = {
                        "access_token": "wb-access",
                        "refresh_token": "wb-refresh",
                        "expires_in": 3600,
                        "token_type": "bearer",
                    }
                else:
                    outer.pages += 1
                    headers, answer_body = answer(path, fields, outer.pages)
                data = json.dumps(answer_body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def karakeep_bookmark(n: int) -> dict[str, Any]:
    return {
        "id": f"bm{n}",
        "createdAt": "2026-11-26T06:00:00.000Z",
        "modifiedAt": None,
        "title": None,
        "archived": False,
        "favourited": False,
        "tags": [],
        "content": {"type": "link", "url": f"https://k.example/{n}"},
    }


def readeck_bookmark(n: int) -> dict[str, Any]:
    return {
        "id": f"rd{n}",
        "created": "2026-11-26T06:00:00Z",
        "updated": "2026-11-26T06:00:00Z",
        "url": f"https://r.example/{n}",
        "title": "R",
        "type": "article",
        "is_archived": False,
        "is_marked": False,
        "labels": [],
    }


def wallabag_entry(n: int) -> dict[str, Any]:
    return {
        "id": n,
        "url": f"https://w.example/{n}",
        "title": "W",
        "is_archived": 0,
        "is_starred": 0,
        "tags": [],
        "created_at": "2026-11-26T06:00:00+0000",
        "updated_at": "2026-11-26T06:00:00+0000",
    }


def shaarli_link(n: int) -> dict[str, Any]:
    return {
        "id": n,
        "url": f"https://s.example/{n}",
        "shorturl": f"s{n}",
        "title": "S",
        "description": "",
        "tags": [],
        "private": False,
        "created": "2026-11-26T06:00:00+00:00",
        "updated": "",
    }


def offset(query: dict[str, str]) -> int:
    return int(query.get("offset", "0"))


def wallabag_page(page: int, items: list[dict[str, Any]], pages: int) -> Reply:
    total = pages * 10
    return {}, {
        "page": page,
        "limit": 10,
        "pages": pages,
        "total": total,
        "_links": {},
        "_embedded": {"items": items},
    }


# source, page size, the hostile pager, the config's max_items (None: automatic), what the error says
ENDLESS: dict[
    str, tuple[str, int, Callable[[str, dict[str, str], int], Reply], int | None, str]
] = {
    # new ids on every page, nothing announced: the config's bound
    "karakeep-new-ids": (
        "karakeep",
        10,
        lambda path, q, n: (
            {},
            {
                "bookmarks": [karakeep_bookmark(n * 10 + i) for i in range(10)],
                "nextCursor": f"c{n}",
            },
        ),
        200,
        "more than a sync may list (karakeep.max_items is 200)",
    ),
    # a page of entries without a readable id is no progress
    "karakeep-garbage": (
        "karakeep",
        10,
        lambda path, q, n: (
            {},
            {
                "bookmarks": [{"id": None, "junk": n * 10 + i} for i in range(10)],
                "nextCursor": f"c{n}",
            },
        ),
        None,
        "answered page 1 with nothing new (10 entries listed already or without a readable id)",
    ),
    # new ids on every page under a Total-Count that grows: the first one announced
    "readeck-growing-total": (
        "readeck",
        10,
        lambda path, q, n: (
            {"Total-Count": str(offset(q) + 20)},
            [readeck_bookmark(offset(q) + i) for i in range(10)],
        ),
        None,
        "more than the 20 it announced",
    ),
    "readeck-huge-total": (
        "readeck",
        10,
        lambda path, q, n: (
            {"Total-Count": "999999999999"},
            [readeck_bookmark(offset(q) + i) for i in range(10)],
        ),
        150,
        "more than a sync may list (readeck.max_items is 150)",
    ),
    # Wallabag: new ids and one more page each time; the same page again; empty pages
    "wallabag-growing-pages": (
        "wallabag",
        10,
        lambda path, q, n: wallabag_page(n, [wallabag_entry(n * 10 + i) for i in range(10)], n + 1),
        None,
        "more than the 20 it announced",
    ),
    "wallabag-repeated-page": (
        "wallabag",
        10,
        lambda path, q, n: wallabag_page(1, [wallabag_entry(i + 1) for i in range(10)], 100_000),
        None,
        "answered page 2 with nothing new (10 entries listed already",
    ),
    "wallabag-empty-pages": (
        "wallabag",
        10,
        lambda path, q, n: wallabag_page(
            n, [wallabag_entry(i + 1) for i in range(10)] if n == 1 else [], 100_000
        ),
        None,
        "answered page 2 with nothing new (no entry at all, before the end it announced)",
    ),
    "shaarli-new-ids": (
        "shaarli",
        10,
        lambda path, q, n: ({}, [shaarli_link(offset(q) + i) for i in range(10)]),
        120,
        "more than a sync may list (shaarli.max_items is 120)",
    ),
    # Pocket without a `total`: only the bound on a sync's size ends it
    "pocket-no-total": (
        "pocket",
        3,
        lambda path, q, n: (
            {},
            {
                "status": 1,
                "since": 1700000000,
                "list": {
                    str(1000 + offset(q) + i): item(str(1000 + offset(q) + i)) for i in range(3)
                },
            },
        ),
        60,
        "more than a sync may list (pocket.max_items is 60)",
    ),
}


@pytest.mark.parametrize("case", list(ENDLESS))
def test_a_listing_that_never_ends_is_stopped_with_nothing_stored(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kind, page_size, answer, max_items, said = ENDLESS[case]
    server = Hostile(answer)
    try:
        monkeypatch.chdir(tmp_path)
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        bound = f", max_items: {max_items}" if max_items is not None else ""
        (tmp_path / "rules.yaml").write_text(
            f"version: 1\n{kind}: {{base_url: '{server.url}', page_size: {page_size}{bound}}}\n"
            "rules:\n  - name: r\n    where: {tag: old}\n    actions: [{tags_add: [x]}]\n"
        )
        started = time.monotonic()
        code, out, err = rb(capsys, "sync")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert code == 1, out + err
    assert said in err and "stopped the sync, nothing was stored" in err, err
    assert server.url.replace("http://", "") in err and "Traceback" not in err
    limit = max_items if max_items is not None else 20 + page_size
    assert server.pages <= limit // page_size + 2  # the bound in pages, not an open end
    assert elapsed < 10
    with Store.open(tmp_path / ".rulebot" / "rulebot.db") as store:
        assert store.count() == 0


def test_the_automatic_bound_is_relative_to_the_mirror_and_an_announced_total_tightens_it() -> None:
    assert Bounds().ceiling == 100_000
    assert Bounds(mirror=80_000).ceiling == 160_000
    assert Bounds(mirror=80_000, max_items=5).ceiling == 5
    listing = Listing("GET /x", "things", origin="http://h:1", page_size=10, error=HttpError)
    listing.announce(1000)
    listing.announce(10**12)  # a count that grows later moves nothing
    assert listing.limit == 1100
    listing.announce(None)
    unannounced = Listing("GET /x", "things", origin="http://h:1", page_size=10, error=HttpError)
    assert unannounced.limit == 100_000
    # only readable ids count: a page of None is no progress
    with pytest.raises(HttpError, match="nothing new"):
        unannounced.page([None, None])
    assert unannounced.page(["a", "b", None]) == 2 and unannounced.count == 2
    assert unannounced.page(["a"], repeat_ends=True) == 0


def test_a_shaarli_link_with_an_impossible_date_or_id_is_skipped_and_never_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    links = [
        shaarli_link(1),
        {**shaarli_link(2), "created": "9999-12-31T23:59:59-14:00"},  # the year 10000 in UTC
        {**shaarli_link(3), "updated": "9999-06-01T00:00:00+00:00"},
        {**shaarli_link(4), "id": 2**64},
    ]
    server = Hostile(lambda path, q, n: ({}, links if offset(q) == 0 else []))
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SHAARLI_API_SECRET", SECRETS["SHAARLI_API_SECRET"])
        (tmp_path / "rules.yaml").write_text(
            f"version: 1\nshaarli: {{base_url: '{server.url}'}}\n"
            "rules:\n  - name: r\n    where: {tag: old}\n    actions: [{tags_add: [x]}]\n"
        )
        code, out, err = rb(capsys, "sync")
        assert code == 0, out + err
        assert "Shaarli link 2: field 'created'" in err and "Shaarli link 3: field 'updated'" in err
        assert f"Shaarli link has id {2**64}" in err
        with Store.open(tmp_path / ".rulebot" / "rulebot.db") as store:
            assert [item.item_id for item in store.items()] == ["1"]
        code, out, err = rb(capsys, "items")
        assert code == 0 and "Traceback" not in err and "internal error" not in err, err
    finally:
        server.close()
