"""HTTP for every service client: retries, deadlines, size caps, scrubbing.

What every server rulebot talks to (Pocket, Karakeep, Wallabag, …) needs
from HTTP, in one place:

- retries with capped exponential backoff and full jitter on 5xx, timeouts
  and dropped connections, except for a request that is not idempotent
  (``idempotent=False``, e.g. a create on a service that does not detect
  duplicates): after a failure that may have reached the server it is never
  re-sent blindly, ``MaybeSentError`` lets the caller check first;
- 429 honours ``Retry-After`` (seconds or an HTTP date; unreadable or
  absurd values count as absent) and backs off exponentially without it, at
  most ``MAX_RATE_WAITS`` times and never longer than ``max_wait`` a wait;
  then (and from then on, for every client sharing its ``RateBudget``) a
  ``RateLimited`` error says when to try again;
- a 401 (or any other status) is returned, never retried, so the caller can
  name its credential variables;
- no retry where nothing will answer: a refused connection (nothing listens
  there), a TLS mistake, a host name that does not exist, an answer that is
  not HTTP. These, and a retried request that never got any answer, raise
  the caller's error marked ``ServerUnreachable``, so an applier can stop a
  run after a few in a row;
- a *total* deadline per attempt: every socket operation gets at most the
  time left, so a server trickling a byte a second is cut off (a plain
  read timeout restarts with every byte);
- a response size cap, checked while streaming: a huge body is never held
  in memory, and it is fatal, not retried;
- connection errors that name ``scheme://host:port`` with a hint;
- ``scrub``/``clip``: server text is masked for secrets, then clipped. A
  secret is masked in every spelling it travels in or may come back in
  (``secret_forms``): a server echoing a form-encoded request body shows
  ``password=P%40ss+w0rd``, one echoing JSON shows ``\\u00e9`` and ``\\/``.

Secrets go in headers or bodies only, never in a URL, and the HTTP
libraries' own debug logging (which prints raw headers) is silenced here.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import html
import json as jsonlib
import logging
import math
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpcore
import httpx

from rulebot.errors import RateLimited, RulebotError, ServerUnreachable

logger = logging.getLogger("rulebot.http")

# httpcore's debug log prints raw request and response headers (tokens,
# echoed secrets); httpx's info log is redundant with ours. Whatever -v -v
# sets on the root logger, these stay at WARNING.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MAX_BACKOFF = 60.0  # seconds; cap of one backoff sleep
MAX_BODY = 64 * 1024 * 1024  # bytes; default response size cap
GARBAGE_RETRIES = 2  # a 2xx that should be JSON and is not: retried this often
MAX_RATE_WAITS = 10  # consecutive 429 waits before giving up
MAX_HEADER_DIGITS = 10  # a number header longer than this is nonsense: absent
HIDDEN = "<hidden>"
MAX_DEPTH = 64  # deeper server JSON is replaced, not walked (Python's stack is ~1000)
TOO_DEEP = "<nested too deeply>"


class HttpError(RulebotError):
    """The server could not be reached, or answered what no retry will fix."""


class BodyTooLargeError(HttpError):
    """The answer was bigger than ``max_body``; it was not read further."""


class HttpRateLimitError(HttpError, RateLimited):
    """A rate limit outlasted ``max_wait`` or ``MAX_RATE_WAITS`` waits."""


class RateBudget:
    """The waiting one run may spend on rate limits, shared by every
    ``HttpClient`` of a service (one per worker thread): once one request
    gave up, the others give up at their next rate limit instead of waiting
    the whole budget again."""

    def __init__(self) -> None:
        self.spent: RateLimited | None = None


class MaybeSentError(HttpError):
    """A request that is not idempotent failed after it may have reached the
    server (a lost or cut answer, a timeout, a 5xx): it was not re-sent. The
    caller checks whether it landed before sending it again (``pause`` first).
    ``timed_out``: no answer within the timeout, so the request may still be on
    its way and land after any check."""

    def __init__(self, message: str, problem: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.problem, self.timed_out = problem, timed_out


# -- text from a server ---------------------------------------------------------------
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


_HEX_ESCAPE = re.compile("%[0-9A-F]{2}")
_GO_ESCAPES = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e"}


@functools.lru_cache(maxsize=4096)
def secret_forms(secret: str) -> tuple[str, ...]:
    """Every spelling of ``secret`` that a request carries or an answer may
    echo: as is; URL- and form-encoded (``quote``, ``quote_plus``, either
    case of hex); JSON-escaped (ASCII-only or not, PHP's ``\\/``, Go's
    ``\\u0026``); HTML-escaped; base64 (standard or URL-safe, padded or
    not). Longest first, so a longer spelling is masked whole."""
    forms = {secret, html.escape(secret), html.escape(secret, quote=False)}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms |= {encoded, _HEX_ESCAPE.sub(lambda m: m.group().lower(), encoded)}
    for ascii_only in (True, False):
        escaped = jsonlib.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        go = "".join(_GO_ESCAPES.get(char, char) for char in escaped)
        forms |= {escaped, escaped.replace("/", "\\/"), go, go.replace("/", "\\/")}
    raw = secret.encode()
    for encoded_bytes in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        encoded = encoded_bytes.decode()
        forms |= {encoded, encoded.rstrip("=")}
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))


def _longest_first(forms: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(forms), key=lambda form: (-len(form), form)))


@functools.lru_cache(maxsize=256)
def _masks(secrets: tuple[str, ...]) -> tuple[str, ...]:
    return _longest_first(form for secret in secrets if secret for form in secret_forms(secret))


class Secrets:
    """The secrets one service's clients mask: credentials, and the tokens
    learnt or signed on the way (``add``), each in all its ``secret_forms``.
    One instance may be shared by the clients of several threads."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: dict[str, None] = {}
        self._forms: tuple[str, ...] = ()
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if not secret or secret in self._known:
            return
        with self._lock:
            self._known[secret] = None
            self._forms = _longest_first((*self._forms, *secret_forms(secret)))

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._known))

    def __len__(self) -> int:
        return len(self._known)

    def scrub(self, value: Any) -> Any:
        return _scrub(value, self._forms, 0)


def scrub(value: Any, secrets: Sequence[str] | Secrets) -> Any:
    """``value`` with every secret masked (in each of its ``secret_forms``),
    in strings, lists, tuples and dicts (keys too), at any depth; a
    structure nested deeper than ``MAX_DEPTH`` is replaced by ``TOO_DEEP``.
    Other values come back as they are."""
    if isinstance(secrets, Secrets):
        return secrets.scrub(value)
    return _scrub(value, _masks(tuple(secrets)), 0)


def _scrub(value: Any, secrets: Sequence[str], depth: int) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, HIDDEN)
        return value
    if isinstance(value, (Mapping, list, tuple)) and depth >= MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {
            _scrub(k, secrets, depth + 1): _scrub(v, secrets, depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(entry, secrets, depth + 1) for entry in value]
    return value


def clip(text: str, limit: int = 200) -> str:
    """One short line: whitespace collapsed, controls shown as escapes, cut
    at ``limit`` characters with "…". Mask secrets *before* calling this: a
    secret cut in half is no longer found."""
    line = " ".join(text.split())
    line = _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def clean(value: Any, secrets: Sequence[str] | Secrets, limit: int = 200) -> str:
    """Server text for a message: masked, then clipped."""
    return clip(str(scrub(value, secrets) if isinstance(value, str) else value), limit)


def describe(value: Any) -> str:
    """Names an unexpected value without showing it (it may hold a secret)."""
    return f"an unexpected value of type {type(value).__name__}"


def header_number(
    headers: Mapping[str, str], name: str, max_digits: int = MAX_HEADER_DIGITS
) -> int | None:
    """A non-negative integer header; None when absent or not plain ASCII
    digits of a sane length (``"²"``, a hundred digits)."""
    text = headers.get(name, "").strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` in seconds (a delay or an HTTP date); None when absent
    or unreadable. Never raises."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    seconds = header_number(headers, "Retry-After")
    if seconds is not None:
        return float(seconds)
    if value.isdigit() or len(value) > 64:
        return None  # non-ASCII digits, or absurdly long
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - now())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def parse_json(content: bytes) -> Any:
    """``json.loads`` whose every failure is a ``ValueError`` (a body nested
    200k deep raises ``RecursionError`` in the parser)."""
    try:
        return jsonlib.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


# -- the total deadline, enforced below httpx ----------------------------------------------
class _Deadline:
    """The monotonic time the current attempt must end by (None: no bound)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def bound(self, timeout: float | None) -> float | None:
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("total deadline passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.bound(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.bound(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.bound(timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: _Deadline) -> None:
        self._inner, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, self._deadline.bound(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, self._deadline.bound(timeout), socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


_UNREACHABLE: dict[type[RulebotError], type[ServerUnreachable]] = {}


def _unreachable_kind(error: type[RulebotError]) -> type[ServerUnreachable]:
    """``error`` (a service's own error class, which callers catch) that is also
    a ``ServerUnreachable`` (which appliers count); made once per class."""
    if issubclass(error, ServerUnreachable):
        return error
    kind = _UNREACHABLE.get(error)
    if kind is None:
        made = type(error.__name__, (error, ServerUnreachable), {"__module__": error.__module__})
        kind = _UNREACHABLE.setdefault(error, made)  # type: ignore[arg-type]
    return kind


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once (it costs ~20 ms a client)."""
    return httpx.create_ssl_context()


# -- the client ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Response:
    """A complete answer. ``data`` is the parsed JSON when the request asked
    for JSON (``expect_json``), else None."""

    status: int
    headers: httpx.Headers
    content: bytes = field(repr=False)
    data: Any = field(default=None, repr=False)
    path: str = ""  # the request's path, for messages

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` (never ``RecursionError``) when it is not."""
        return parse_json(self.content)


class _Retry(Exception):
    """A failed attempt. ``unanswered``: no HTTP answer came (a connection
    problem or a timeout); ``final``: and none will come by trying again;
    ``maybe_sent``: False when the request surely never reached the server."""

    def __init__(
        self,
        problem: str,
        wait: float | None = None,
        *,
        garbage: bool = False,
        unanswered: bool = False,
        final: bool = False,
        maybe_sent: bool = True,
        timed_out: bool = False,
    ) -> None:
        super().__init__(problem)
        self.problem, self.wait, self.garbage = problem, wait, garbage
        self.unanswered, self.final = unanswered or final, final
        self.maybe_sent, self.timed_out = maybe_sent, timed_out


class _RateLimited(Exception):
    def __init__(self, wait: float | None) -> None:
        super().__init__("rate limited")
        self.wait = wait  # None: back off exponentially


class HttpClient:
    """One server. ``timeout`` bounds each socket operation, ``total_timeout``
    each attempt as a whole (connect, send, every byte of the answer).
    ``secrets`` are masked in every message built from server text (pass a
    shared ``Secrets`` to mask tokens learnt later).
    ``on_wait`` hears about rate-limit waits (retries are logged at info;
    only the final failure is raised). ``rate_limited(response)`` sees
    every answer and may say it is a rate limit and how long to wait
    (Pocket's 403 with spent ``X-Limit-*`` budgets), or raise; ``detail``
    adds the server's own error text to a 5xx problem (already cleaned);
    ``sleep`` is injectable for tests."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        total_timeout: float | None = None,
        max_body: int = MAX_BODY,
        user_agent: str = "rulebot",
        secrets: Sequence[str] | Secrets = (),
        on_wait: Callable[[str], None] | None = None,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        max_wait: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        rate_limited: Callable[[Response], float | None] | None = None,
        detail: Callable[[Response], str] | None = None,
        error: type[RulebotError] = HttpError,
        rate_error: type[RulebotError] | None = None,
        rate_budget: RateBudget | None = None,
        service: str = "the server",
        config_key: str = "the base URL",
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise error(f"{clip(base_url, 80)!r} is not an http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise error("a base URL must not carry credentials, a query or a fragment")
        self.base_url = base_url.strip().rstrip("/")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.origin = f"{parts.scheme}://{parts.hostname}:{port}"
        self.timeout = timeout
        self.total_timeout = total_timeout if total_timeout is not None else timeout
        self.max_body = max_body
        self.secrets = secrets if isinstance(secrets, Secrets) else Secrets(secrets)
        self.max_retries, self.backoff_base, self.max_wait = max_retries, backoff_base, max_wait
        self.requests_made = 0  # attempts, retries included
        self._on_wait, self._sleep, self._rate_limited = on_wait, sleep, rate_limited
        self._detail = detail
        self._error, self._rate_error = error, rate_error or HttpRateLimitError
        self._budget = rate_budget or RateBudget()
        self._service, self._config_key = service, config_key
        self._deadline = _Deadline()
        transport = httpx.HTTPTransport(verify=_tls_context())
        # Every socket operation is bounded by the attempt's deadline.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=_tls_context(), network_backend=_DeadlineBackend(self._deadline)
        )
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def clean(self, value: Any, limit: int = 200) -> str:
        """Server text for a message: secrets masked, then clipped."""
        return clean(value, self.secrets, limit)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        expect_json: bool = False,
        label: str | None = None,
        idempotent: bool = True,
    ) -> Response:
        """Send until an answer that is not worth retrying comes back, and
        return it (any status). Raises ``error`` after ``max_retries``
        retries, on a body over ``max_body``, or when a rate limit lasts
        longer than ``max_wait``. With ``expect_json`` a 2xx that is not
        JSON is retried ``GARBAGE_RETRIES`` times, then an error. ``label``
        starts every message (default ``"METHOD path"``). Not ``idempotent``:
        only what surely never reached the server (a refused connection, a
        429) is retried; anything else raises ``MaybeSentError``."""
        if json is not None:
            content = jsonlib.dumps(json).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        label = label or f"{method} {path}"
        problems: list[str] = []
        garbage = rate_waits = answered = 0
        while True:
            try:
                return self._attempt(method, path, params, headers, content, expect_json)
            except _RateLimited as limited:
                rate_waits += 1
                answered += 1
                self._rate_wait(label, limited.wait, rate_waits)
            except _Retry as retry:
                if retry.final:  # trying again would only add seconds of silence
                    raise self.unreachable(f"{label}: {retry.problem}") from None
                if not idempotent and retry.maybe_sent:
                    raise MaybeSentError(
                        f"{label}: {retry.problem}; not sent again, as it may have reached "
                        f"{self.origin} and it is not safe to repeat",
                        retry.problem,
                        timed_out=retry.timed_out,
                    ) from None
                problems.append(retry.problem)
                garbage += retry.garbage
                answered += not retry.unanswered
                if garbage > GARBAGE_RETRIES:
                    raise self._error(
                        f"{label}: {self.origin} {retry.problem} {garbage} times; it does not "
                        f"look like {self._service} (check {self._config_key})"
                    ) from None
                if len(problems) > self.max_retries:
                    message = self._give_up(label, problems)
                    if not answered:  # not one attempt got an answer
                        raise self.unreachable(message) from None
                    raise self._error(message) from None
                self.pause(len(problems), label, retry.problem, retry.wait)

    def pause(self, failures: int, label: str, problem: str, after: float | None = None) -> None:
        """Wait before retry number ``failures`` as ``request`` does: ``after``
        seconds when the server said so, else capped, jittered backoff."""
        delay = self._backoff(failures, after, label, problem)
        logger.info(
            "%s: %s; retry %d of %d in %.1f s", label, problem, failures, self.max_retries, delay
        )
        self._sleep(delay)

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        expect_json: bool,
    ) -> Response:
        self.requests_made += 1
        failure, final, unsent, timed_out = "", False, False, False
        self._deadline.at = time.monotonic() + self.total_timeout
        try:
            status, answer_headers, body = self._exchange(method, path, params, headers, content)
        except httpx.TimeoutException as exc:
            failure = f"no complete answer within {self.total_timeout:g} s (timeout)"
            unsent = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            timed_out = True
        except httpx.HTTPError as exc:
            failure, final = self._connection_problem(exc)
            unsent = isinstance(exc, httpx.ConnectError)  # the request never went out
        finally:
            self._deadline.at = None
        if failure:
            # Raised outside the except block: no exception chain keeps the
            # httpx error, whose .request holds the body with the credentials.
            raise _Retry(
                failure, unanswered=True, final=final, maybe_sent=not unsent, timed_out=timed_out
            )
        response = Response(status, answer_headers, body, path=path)
        logger.debug("%s %s: HTTP %d, %d bytes", method, path, status, len(body))
        wait = self._rate_limited(response) if self._rate_limited else None
        if wait is not None:
            raise _RateLimited(wait)
        if status == 429:
            raise _RateLimited(retry_after(response.headers))
        if status >= 500:
            raise _Retry(self._server_problem(response), retry_after(response.headers))
        if expect_json and 200 <= status < 300:
            try:
                return Response(status, answer_headers, body, parse_json(body), path)
            except ValueError:
                kind = answer_headers.get("Content-Type", "").split(";")[0] or "no content type"
                raise _Retry(
                    f"answered {status} with a body that is not JSON ({self.clean(kind, 60)})",
                    garbage=True,
                ) from None
        return response

    def _exchange(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
    ) -> tuple[int, httpx.Headers, bytes]:
        url = self.base_url + path
        with self._http.stream(
            method, url, params=params, headers=headers, content=content
        ) as response:
            declared = header_number(response.headers, "Content-Length", 19)
            if declared is not None and declared > self.max_body:
                raise self._too_large(method, path)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_body:
                    raise self._too_large(method, path)
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)

    def _too_large(self, method: str, path: str) -> BodyTooLargeError:
        mib = self.max_body / (1024 * 1024)
        return BodyTooLargeError(
            f"{method} {path}: {self.origin} sent an answer larger than {mib:g} MiB; "
            "stopped reading it (not retried)"
        )

    def _server_problem(self, response: Response) -> str:
        notes = ["maintenance"] if response.status == 503 else []
        if self._detail is not None and (detail := self._detail(response)):
            notes.append(detail)
        return f"server answered {response.status}" + (f" ({', '.join(notes)})" if notes else "")

    def _connection_problem(self, exc: httpx.HTTPError) -> tuple[str, bool]:
        """What went wrong, naming the server, with a hint at the usual mistake;
        and whether it is final: nothing listening, a TLS or host-name mistake,
        an answer that is not HTTP do not go away within a run's retries (a
        dropped connection, a DNS server's "try again" may)."""
        text = str(exc)
        lowered = text.lower()
        https = self.origin.startswith("https")
        final = True
        if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
            if "certificate" in lowered:
                hint = "the server's TLS certificate was not accepted"
            else:
                hint = "TLS failed: is it plain http on this port? try http://"
        elif "refused" in lowered:
            hint = "connection refused: is the port right and the server up?"
        elif "name or service" in lowered or "nodename" in lowered or "resolution" in lowered:
            hint = "the host name does not resolve: is it spelled right?"
            final = "temporary" not in lowered  # EAI_AGAIN: the resolver may answer next time
        elif "peer closed" in lowered:  # an answer cut short: h11 says so, as a protocol error
            hint = "the server closed the connection in the middle of its answer"
            final = False
        elif "disconnected" in lowered or isinstance(exc, (httpx.ReadError, httpx.WriteError)):
            hint = "the server closed the connection without an answer"
            final = False
        elif isinstance(exc, httpx.RemoteProtocolError):
            hint = "the answer is not HTTP" + (
                "" if https else ": is it https on an http port? try https://"
            )
        else:
            hint = clip(self.clean(text), 120) or type(exc).__name__
            final = False
        return f"connection to {self.origin} failed ({hint})", final

    def unreachable(self, message: str) -> ServerUnreachable:
        """The caller's error class, marked ``ServerUnreachable``, naming this server."""
        error = _unreachable_kind(self._error)(message)
        error.origin = self.origin
        return error

    # -- waiting ------------------------------------------------------------------------
    def _rate_wait(self, label: str, wait: float | None, waits: int) -> None:
        told = wait is not None  # the server said how long
        if wait is None:  # no Retry-After: exponential, capped
            wait = min(MAX_BACKOFF, max(1.0, self.backoff_base) * 2 ** (waits - 1))
        seconds = wait
        spent = self._budget.spent
        if spent is not None:  # another request of this run waited it all already: the same end
            error = self._rate_error(str(spent))
            if isinstance(error, RateLimited):
                error.retry_at = spent.retry_at
            raise error
        if waits > MAX_RATE_WAITS:
            raise self._rate_stop(
                f"{label}: {self.origin} still rate limited after waiting {MAX_RATE_WAITS} times",
                time.time() + seconds if told else None,
            )
        if seconds > self.max_wait:
            raise self._rate_stop(
                f"{label}: {self.origin} is rate limiting and asked to wait "
                f"{math.ceil(seconds)} s, longer than the {self.max_wait:g} s allowed",
                time.time() + seconds,
            )
        self.tell(f"rate limit reached; waiting {math.ceil(seconds)} s for reset", label)
        self._sleep(seconds)

    def _rate_stop(self, problem: str, retry_at: float | None) -> RulebotError:
        """The rate-limit error: what happened and when to try again; the
        budget is marked spent for every client sharing it."""
        if retry_at is None:
            hint = "the server did not say when its limit resets; try again later"
        else:
            minutes = max(1, math.ceil((retry_at - time.time()) / 60))
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(math.ceil(retry_at)))
            hint = f"try again after {stamp} (in {minutes} min)"
        error = self._rate_error(f"{problem}; {hint}")
        if isinstance(error, RateLimited):
            error.retry_at = retry_at
            self._budget.spent = self._budget.spent or error
        return error

    def _backoff(self, failures: int, after: float | None, label: str, problem: str) -> float:
        if after is not None:
            if after > self.max_wait:
                raise self._error(
                    f"{label}: {problem} and asked to retry after {after:g} s, longer "
                    f"than the {self.max_wait:g} s allowed; try again later"
                )
            return after
        ceiling = min(MAX_BACKOFF, self.backoff_base * 2 ** (failures - 1))
        return random.uniform(0, ceiling)  # full jitter

    def tell(self, message: str, label: str = "") -> None:
        """A wait the user should hear about: via ``on_wait``, else a warning."""
        logged = f"{label}: {message}" if label else message
        if self._on_wait is not None:
            logger.info("%s", logged)
            self._on_wait(message)
        else:
            logger.warning("%s", logged)

    def _give_up(self, label: str, problems: list[str]) -> str:
        count = len(problems)
        times = "once" if count == 1 else f"{count} times"
        if len(set(problems)) == 1:
            return f"{label}: {problems[0]} {times}; giving up"
        return f"{label}: failed {times} (last: {problems[-1]}); giving up"
