"""A fault-injecting HTTP proxy on 127.0.0.1, in front of any server.

The fault matrix puts one in front of every service (the fakes and the real
Shaarli, which cannot inject faults itself) and points rulebot's config at
it, so a fault is the same thing on every source: the proxy answers
503/429/401 itself, drops the connection before forwarding, forwards and
then drops the answer (the server did the work; the client never hears),
holds a request past the client's timeout, runs a callback just before
forwarding (another client deleting the item), or vanishes (refusing
connections) until brought back.

Each request is logged with the phase its backend gives it (``sync``,
``apply`` or ``None``), what the proxy did and the server's status, so a
test can count what reached the server and what was retried. Requests the
proxy forwards carry ``X-Conformance-Proxy: 1``: a fake's own records then
tell rulebot's requests from a test's edits.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MARK = "X-Conformance-Proxy"
# hop-by-hop headers: never forwarded either way (Content-Length is recomputed)
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    target: str  # path and query, as sent
    headers: dict[str, str]
    body: bytes
    phase: str | None


@dataclass
class Fault:
    """What to do to the ``nth`` matching request from now on (and ``count - 1`` more).

    ``kind``: "status" answers ``status`` with ``headers`` and never forwards;
    "drop" closes the connection without forwarding; "drop_after" forwards,
    then closes without answering; "slow" waits ``seconds``, then forwards
    (the client may have given up: the server still does the work); "call"
    runs ``callback`` and then forwards; "hold" sets ``held`` and forwards
    only once ``release`` is set; "gone" closes the listener and every
    connection from this request on (connections refused) until ``back()``.
    ``on``: the phase it applies to; ``writes``: only requests that are not
    GETs; ``when``: any further test on the request."""

    kind: str
    on: str | None = "apply"
    nth: int = 1
    count: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    writes: bool = False
    when: Callable[[Request], bool] | None = None
    callback: Callable[[Request], None] | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    seen: int = 0  # matching requests so far
    fired: int = 0  # requests it was done to

    def matches(self, request: Request) -> bool:
        return (
            (self.on is None or request.phase == self.on)
            and (not self.writes or request.method != "GET")
            and (self.when is None or self.when(request))
        )


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy saw it: what it did, and the server's status
    (None: never forwarded, or forwarded and no answer came back)."""

    request: Request
    fault: str | None
    forwarded: bool
    status: int | None  # the server's answer, when forwarded
    answered: int | None  # what the client got (None: the connection was dropped)


_PAGES = {
    401: b"Unauthorized",
    404: b"Not Found",
    429: b"Too Many Requests",
    500: b"<html><body><h1>500 Internal Server Error</h1></body></html>",
    502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: b"<html><body><h1>503 Service Unavailable</h1></body></html>",
}


class FaultProxy:
    """``with FaultProxy(upstream, phase) as proxy``: ``proxy.base_url`` stands
    in for ``upstream``; ``phase(method, path)`` names a request's phase."""

    def __init__(
        self, upstream: str, phase: Callable[[str, str], str | None] = lambda m, p: None
    ) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname and parts.port, upstream
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.phase = phase
        self.port = 0
        self.log: list[Exchange] = []
        self.in_flight = 0
        self._faults: list[Fault] = []
        self.injected: list[Fault] = []  # every fault so far, fired or not
        self._lock = threading.Lock()
        self._gone = False
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._busy: set[socket.socket] = set()  # connections with a request being handled

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> FaultProxy:
        httpd = _Server(("127.0.0.1", self.port), _Handler)
        httpd.proxy = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def _close_listener(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def stop(self) -> None:
        self._stopping.set()
        for fault in self._faults:
            fault.release.set()
        self._close_listener()
        self._drop_connections()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults -----------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        assert fault.nth >= 1 and fault.count >= 1
        with self._lock:
            self._faults.append(fault)
            self.injected.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            for fault in self._faults:
                fault.release.set()
            self._faults.clear()

    def back(self) -> None:
        """The server is reachable again, on the same port."""
        if self._gone:
            self._gone = False
            self.start()

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being handled (a held or slow one outlives its client)."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not self.in_flight, "the proxy is still forwarding a request"

    def requests(self, phase: str | None = None) -> list[Exchange]:
        with self._lock:
            return [e for e in self.log if phase is None or e.request.phase == phase]

    def _take(self, request: Request) -> Fault | None:
        """The fault this request meets. Every fault counts the requests it
        matches from its injection on, so ``nth`` means the same whichever
        other faults fire: two faults (nth 1 and nth 3) hit requests 1 and 3."""
        chosen = None
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(request):
                    continue
                fault.seen += 1
                if fault.seen >= fault.nth + fault.count - 1:
                    self._faults.remove(fault)
                if chosen is None and fault.seen >= fault.nth:
                    chosen = fault
                    fault.fired += 1
        return chosen

    def _vanish(self) -> None:
        """The server is gone: new connections are refused, open ones closed."""
        self._gone = True
        threading.Thread(target=self._close_listener, daemon=True).start()
        self._drop_connections()

    def _drop_connections(self) -> None:
        """Close every connection waiting for its next request (one being
        answered gets its answer: the server went right after it)."""
        with self._lock:
            connections = list(self._connections - self._busy)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- one request ------------------------------------------------------------
    def handle(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """The answer to relay, or None to close the connection without one."""
        fault = None if self._gone else self._take(request)
        kind = "gone" if self._gone else (fault.kind if fault else None)
        if kind == "gone":
            if not self._gone:
                self._vanish()
            return self._logged(request, "gone", False, None, None)
        if fault is not None and kind == "status":
            body = _PAGES.get(fault.status, b"")
            headers = [("Content-Type", "text/html"), *fault.headers.items()]
            return self._logged(request, kind, False, None, (fault.status, headers, body))
        if kind == "drop":
            return self._logged(request, kind, False, None, None)
        if fault is not None and kind == "slow":
            self._stopping.wait(fault.seconds)
        if fault is not None and kind == "call" and fault.callback is not None:
            fault.callback(request)
        if fault is not None and kind == "hold":
            fault.held.set()
            fault.release.wait(30)
        try:
            answer = self._forward(request)
        except OSError:
            return self._logged(request, kind, True, None, None)
        if kind == "drop_after":
            return self._logged(request, kind, True, answer[0], None)
        return self._logged(request, kind, True, answer[0], answer)

    def _logged(
        self,
        request: Request,
        fault: str | None,
        forwarded: bool,
        status: int | None,
        answer: tuple[int, list[tuple[str, str]], bytes] | None,
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        exchange = Exchange(request, fault, forwarded, status, answer[0] if answer else None)
        with self._lock:
            self.log.append(exchange)
        return answer

    def _forward(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            headers[MARK] = "1"
            upstream.request(request.method, request.target, body=request.body, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP]
            return response.status, kept, body
        finally:
            upstream.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer (its timeout, a kill)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers behind it
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        proxy = self.server.proxy
        with proxy._lock:
            proxy._connections.add(self.connection)

    def finish(self) -> None:
        proxy = self.server.proxy
        with proxy._lock:
            proxy._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def _serve(self) -> None:
        proxy = self.server.proxy
        with proxy._lock:
            proxy.in_flight += 1
            proxy._busy.add(self.connection)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            if len(body) < length:  # the client died mid-request: a server never runs it
                self.close_connection = True
                return
            path = urlsplit(self.path).path
            request = Request(
                self.command,
                path,
                self.path,
                dict(self.headers.items()),
                body,
                proxy.phase(self.command, path),
            )
            answer = proxy.handle(request)
            if answer is None:
                self.close_connection = True
                return
            status, headers, content = answer
            self.send_response_only(status)  # the server's own Date and Server headers
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        except OSError:  # the client gave up (its timeout, a kill) before the answer
            self.close_connection = True
        finally:
            with proxy._lock:
                proxy.in_flight -= 1
                proxy._busy.discard(self.connection)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
