"""What every fake server shares, so each fake holds only its service.

A fake (``rulebot.fake.pocket``, ``.karakeep``, ...) is a :class:`FakeServer`
subclass that brings its data model, its routes and their documented quirks,
through three methods:

- ``_resolve(method, path)``: the route a request takes, as
  ``("METHOD /template", handler name or None, path parameters)``; a
  :class:`Routes` table does the usual matching;
- ``_answer(request, fault)``: do the work and answer it (``fault`` is the
  injected fault that lets the work happen: ``slow``, ``drop_after``, or one
  of the fake's own, such as Wallabag's ``expire``);
- ``_fault_reply(fault, request)``: the canned answer of an answer-only fault
  (``status``, or the fake's own, such as Pocket's ``503`` or ``garbage``),
  shaped as that service's errors are.

Everything else is here, the same code for every fake: start and stop on
127.0.0.1 (port 0 picks a free one; ``stop`` behaves like a server that
died), the clock (``now``, which also drives the ``Date`` header;
``date_header`` sends a fixed one instead), added ``latency``, the network
between client and server (``rtt`` and ``bandwidth``, below), switchable
faults (``inject``, ``clear_faults``, and the data fault ``garble``) and the
record of every request and its answer (``exchanges``, ``calls(route)``).

The common faults (a fake lists the kinds it takes in ``FAULTS``):
"status" answers ``status`` (``body`` overrides the text), "drop" closes the
connection before doing the work, "drop_after" does the work and then closes
without answering, "slow" waits ``seconds`` and then answers, "die" stops
the server (``stop``) instead of answering, the work undone.

The network: ``rtt`` (seconds) is one round trip, paid by every request
before it is answered, and once more by the first request on a new
connection (its TCP handshake; TLS would add one or two more); ``bandwidth``
(bytes a second, each way) is the link every connection shares: a request's
body goes up it and an answer's body comes down it, one transfer after
another, so N answers of S bytes sent together are all through after
N·S/bandwidth (headers are not counted). Each request waits on its own
thread (the server has one per connection) and holds no lock while it waits:
N requests sent together over N connections are answered after one round
trip, not N.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Reply:
    """An answer on its way out; a fake (or a test's subclass) may still change it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(
    status: int,
    answer: Any,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    body = json.dumps(answer).encode()
    return Reply(status, body, {"Content-Type": content_type, **(headers or {})})


def text_reply(status: int, text: str, content_type: str = "text/plain; charset=UTF-8") -> Reply:
    return Reply(status, text.encode(), {"Content-Type": content_type})


@dataclass(frozen=True)
class Request:
    """One request as it arrived, and the route it takes."""

    method: str
    target: str  # path plus query string, exactly as sent
    path: str  # without the query string
    query: dict[str, str]  # the last value of each parameter
    multi: dict[str, list[str]]  # every value of each parameter
    headers: dict[str, str]  # keys in lower case
    raw_body: bytes
    route: str  # "METHOD /template", e.g. "PATCH /bookmarks/{id}"
    handler: str | None  # the fake's method that answers it; None: no such route
    params: list[str]  # the path parameters, in order


@dataclass(frozen=True)
class Exchange:
    """One request as the server saw it and what it answered (None: dropped)."""

    method: str
    path: str  # without the query string
    target: str  # path plus query string, exactly as sent
    route: str  # "METHOD /template", e.g. "PATCH /bookmarks/{id}"
    query: dict[str, str]
    headers: dict[str, str]  # keys in lower case
    raw_body: bytes
    status: int | None
    response_headers: dict[str, str]
    response_body: bytes
    fault: str | None  # the injected fault that shaped the answer, if any

    @property
    def json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None


@dataclass
class Fault:
    """An injected fault, waiting for the calls it will shape."""

    kind: str
    route: str | None = None  # as ``calls`` names routes; None: any
    status: int = 503
    skip: int = 0  # matching calls to let through before firing
    remaining: int = 1
    seconds: float = 2.0
    body: str | None = None
    retry_after: int | None = None
    answer: Any = None


def is_http_url(url: str) -> bool:
    """An http(s) URL with a host and no space (what the services' validators let through)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url


def parse_iso(text: str) -> datetime | None:
    """An ISO 8601 time ("Z" is UTC, and so is no zone at all); None when unreadable."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def route_matches(wanted: str, route: str) -> bool:
    """ "GET /bookmarks" matches that route only; "/bookmarks" matches every method."""
    return wanted == route if " " in wanted else route.split(" ", 1)[1] == wanted


class Routes:
    """A route table: ``(METHOD, "/template/{id}", handler name)`` in the order
    they are tried; each ``{name}`` matches one path segment (``segment``)."""

    def __init__(
        self,
        table: Iterable[tuple[str, str, str]],
        *,
        prefix: str = "",
        segment: str = "[^/]+",
        suffix: str = "",
        unquote_params: bool = True,
    ) -> None:
        self.prefix, self.unquote_params = prefix, unquote_params
        self._compiled = [
            (method, template, handler, re.compile(f"^{_pattern(template, segment)}{suffix}$"))
            for method, template, handler in table
        ]

    def resolve(self, method: str, path: str) -> tuple[str, str | None, list[str]]:
        """(route key, handler name or None, path parameters); an unknown
        path is its own route key (``"GET /nowhere"``) with no handler."""
        if path.startswith(self.prefix + "/"):
            relative = path[len(self.prefix) :]
            for route_method, template, handler, pattern in self._compiled:
                match = pattern.match(relative)
                if match and route_method == method:
                    found = list(match.groups())
                    if self.unquote_params:
                        found = [unquote(g) for g in found]
                    return f"{method} {template}", handler, found
        return f"{method} {path}", None, []


def _pattern(template: str, segment: str) -> str:
    return re.sub(r"\\\{\w+\\\}", lambda _: f"({segment})", re.escape(template))


class FakeServer:
    """A fake server's plumbing and state; start with ``with`` or ``start()``."""

    name: ClassVar[str] = "server"  # "pocket": its logger (rulebot.fake.pocket) and log lines
    FAULTS: ClassVar[tuple[str, ...]] = ("status", "drop", "drop_after", "slow", "die")
    # the faults that let the work happen; any other kind but "drop" and "die"
    # is an answer instead of the work (``_fault_reply``)
    WORKING_FAULTS: ClassVar[tuple[str, ...]] = ("slow", "drop_after")
    # headers every answer carries unless it has its own
    default_headers: ClassVar[Mapping[str, str]] = {}
    log_requests: ClassVar[bool] = True  # each request a debug line on the fake's logger
    routes: ClassVar[Routes] = Routes(())  # none: every request is "METHOD /path", no handler

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        now: int | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.latency = latency  # seconds added to every answer
        self.rtt = 0.0  # seconds: a round trip, per request (two on a new connection)
        self.bandwidth: float | None = None  # bytes a second each way (None: no cap)
        self._up, self._down = _Link(), _Link()  # the shared link, one per direction
        # sent as the Date header instead of the clock's time: a server (or a
        # proxy in front of it) whose clock is wrong, or a garbled header
        self.date_header: str | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._now = int(time.time()) if now is None else now
        self._clock_frozen = now is not None
        self._arrivals: list[Request] = []  # every request, recorded as it arrives
        self._exchanges: list[Exchange] = []  # ... and with its answer
        self._faults: list[Fault] = []
        self._connection = threading.local()  # `used`: a request came on it before
        self._garbling = threading.local()  # `hit`: this request showed a garbled item
        self._garbled: dict[Any, dict[str, Any]] = {}  # raw fields shown per item id
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> Self:
        httpd = _Server((self.host, self.port), _Handler)
        httpd.fake = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a server that died: new connections are refused, and a
        request on a connection still open is dropped unanswered, undone.
        ``start()`` brings it back on the same port."""
        self._stopping.set()  # cuts latency and "slow" faults short
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The instance root, as a user would configure it."""
        return f"http://{self.host}:{self.port}"

    # -- clock -------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Server time in whole seconds: the wall clock (never going back)
        until a test sets it; then it stays where it was set."""
        with self._lock:
            if not self._clock_frozen:
                self._now = max(self._now, int(time.time()))
            return self._now

    @now.setter
    def now(self, value: int) -> None:
        with self._lock:
            self._now, self._clock_frozen = int(value), True

    # -- the record ----------------------------------------------------------------
    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def calls(self, route: str | None = None) -> int:
        """Requests received, for ``route`` only if given: "GET /bookmarks"
        (that method) or "/bookmarks" (any method), as ``Exchange.route`` names them."""
        with self._lock:
            arrivals = [request.route for request in self._arrivals]
        return sum(1 for seen in arrivals if route is None or route_matches(route, seen))

    # -- faults --------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        count: int = 1,
        route: str | None = None,
        *,
        status: int = 503,
        nth: int = 1,
        seconds: float = 2.0,
        body: str | None = None,
        retry_after: int | None = None,
        answer: Any = None,
        path: str | None = None,
    ) -> None:
        """Fault the ``nth`` matching call from now on (and ``count - 1`` more after it).

        ``kind`` is one of the fake's ``FAULTS`` (see the module's doc);
        ``route`` limits it to one route, as ``calls`` names them (``path``
        is Pocket's name for it); ``retry_after`` adds that header to an
        answer-only fault; ``answer`` is the JSON of Pocket's "answer" fault.
        """
        if kind not in self.FAULTS:
            raise ValueError(f"unknown fault {kind!r}; choose from {', '.join(self.FAULTS)}")
        if nth < 1 or count < 1:
            raise ValueError("nth and count start at 1")
        if route is not None and path is not None:
            raise ValueError("give route or path, not both")
        fault = Fault(
            kind,
            route if route is not None else path,
            status,
            nth - 1,
            count,
            seconds,
            body,
            retry_after,
            answer,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Forget every fault still waiting, and every ``garble``."""
        with self._lock:
            self._faults.clear()
            self._garbled.clear()

    def garble(self, item_id: Any, **fields: Any) -> None:
        """A data fault: from now on every answer shows these raw ``fields`` for
        the item (a number past 2^63, a date in the year 10000 …) instead of what
        the server holds; exchanges while one is set are recorded with the
        fault ``"garble"``. ``clear_faults`` ends it."""
        with self._lock:
            self._garbled.setdefault(item_id, {}).update(fields)

    def _shown(self, item_id: Any, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` as this request shows it: with the item's garbled fields, if any."""
        if item_id in self._garbled:
            answer.update(self._garbled[item_id])
            self._garbling.hit = True
        return answer

    def _take_fault(self, route: str) -> Fault | None:
        for fault in self._faults:
            if fault.route is not None and not route_matches(fault.route, route):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    # -- request handling ------------------------------------------------------------
    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Reply | None:
        """Answer one request; None means: close the connection without answering."""
        if self._stopping.is_set():
            return None  # stopped: a dead server answers nothing and does nothing
        request = self._request(method, target, headers, raw_body)
        self._garbling.hit = False
        with self._lock:
            self._arrive(request)
            fault = self._take_fault(request.route)
        if fault is not None and fault.kind == "die":
            self.stop()
        # the network and the added latency, waited outside every lock; the
        # server has a thread per connection, so its first request is the
        # connection's first (the handshake: one more round trip)
        new_connection = not getattr(self._connection, "used", False)
        self._connection.used = True
        pause = self.latency + self.rtt * (2 if new_connection else 1)
        pause += self._up.transfer(len(raw_body), self.bandwidth)
        if pause > 0:
            self._stopping.wait(pause)
        reply: Reply | None
        if self._stopping.is_set() or (fault is not None and fault.kind == "drop"):
            reply = None
        elif fault is not None and fault.kind not in self.WORKING_FAULTS:
            reply = self._fault_reply(fault, request)
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = str(fault.retry_after)
        else:
            if fault is not None and fault.kind == "slow":
                self._stopping.wait(fault.seconds)
            reply = self._answer(request, fault)
            if fault is not None and fault.kind == "drop_after":
                reply = None
        if reply is not None:
            for name, value in self.default_headers.items():
                reply.headers.setdefault(name, value)
            coming_down = self._down.transfer(len(reply.body), self.bandwidth)
            if coming_down > 0:
                self._stopping.wait(coming_down)
        shaped_by = fault.kind if fault is not None else "garble" if self._garbling.hit else None
        with self._lock:
            self._exchanges.append(
                Exchange(
                    request.method,
                    request.path,
                    request.target,
                    request.route,
                    request.query,
                    request.headers,
                    request.raw_body,
                    None if reply is None else reply.status,
                    {} if reply is None else dict(reply.headers),
                    b"" if reply is None else reply.body,
                    shaped_by,
                )
            )
        return reply

    def _request(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Request:
        parts = urlsplit(target)
        multi = parse_qs(parts.query, keep_blank_values=True)
        route, handler, params = self._resolve(method, parts.path)
        return Request(
            method,
            target,
            parts.path,
            {name: values[-1] for name, values in multi.items()},
            multi,
            {name.lower(): value for name, value in headers.items()},
            raw_body,
            route,
            handler,
            params,
        )

    def _arrive(self, request: Request) -> None:
        """Record a request as it arrives (under the lock)."""
        self._arrivals.append(request)

    # -- what a fake brings --------------------------------------------------------
    def _resolve(self, method: str, path: str) -> tuple[str, str | None, list[str]]:
        """(route key, handler name or None, path parameters): by ``routes``."""
        return self.routes.resolve(method, path)

    def _answer(self, request: Request, fault: Fault | None) -> Reply:
        """Do the work of ``request`` and answer it."""
        raise NotImplementedError

    def _fault_reply(self, fault: Fault, request: Request) -> Reply:
        """The answer of an answer-only fault ("status": its status, as plain text)."""
        text = fault.body if fault.body is not None else HTTPStatus(fault.status).phrase
        return text_reply(fault.status, text)


# -- the HTTP plumbing -------------------------------------------------------------------


class _Link:
    """One direction of the network: transfers go through it one after
    another at the bandwidth (a lock only to book the slot, never to wait)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free_at = 0.0  # time.monotonic() when the transfers booked so far are through

    def transfer(self, size: int, bandwidth: float | None) -> float:
        """Book ``size`` bytes: the seconds until they are through (0: no cap)."""
        if not bandwidth or size <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self._free_at = max(now, self._free_at) + size / bandwidth
            return self._free_at - now


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        _logger(self.fake).debug("fake %s: connection error", self.fake.name, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server behind its proxy
    # Headers and body go out in two writes; with Nagle on, the body waits for
    # the client's delayed ACK of the headers: ~40 ms added to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw_body = self.rfile.read(length) if length > 0 else b""
            headers = dict(self.headers.items())
            reply = self.server.fake._handle(self.command, self.path, headers, raw_body)
            if reply is None:
                self.close_connection = True
                return
            self.send_response(reply.status)  # with a Date from the fake's clock
            for name, value in reply.headers.items():
                self.send_header(name, value)
            bodiless = reply.status in (204, 304)  # no Content-Length, no body (RFC 9110)
            if not bodiless:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if not bodiless:
                self.wfile.write(reply.body)
        except OSError:  # the client gave up (timeout) before we answered
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def date_time_string(self, timestamp: float | None = None) -> str:
        """``Date`` from the fake's clock (which tests may freeze), as the
        server's own; ``date_header`` instead when set."""
        fake = self.server.fake
        return fake.date_header or formatdate(fake.now, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        fake = self.server.fake
        if fake.log_requests:
            _logger(fake).debug(f"fake {fake.name}: " + format, *args)


def _logger(fake: FakeServer) -> logging.Logger:
    return logging.getLogger(f"rulebot.fake.{fake.name}")
