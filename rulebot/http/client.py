"""The client: one server, one connection, every attempt bounded.

``HttpClient.request`` sends until an answer comes that is not worth
retrying and returns it, whatever its status: a 401 (or any other status) is
the caller's to name. What it retries, and how: see ``rulebot.http``, whose
docstring is the contract; the waiting is ``rulebot.http.waiting``'s, the
deadline ``rulebot.http.deadline``'s, the masking ``rulebot.http.masking``'s.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from rulebot.errors import RateLimited, RulebotError, ServerUnreachable
from rulebot.http.answers import Response, header_number, parse_json, retry_after
from rulebot.http.deadline import Deadline, transport
from rulebot.http.masking import Secrets, clean, clip
from rulebot.http.waiting import GARBAGE_RETRIES, RateBudget, RateLimitAnswer, Retry, Waiting

logger = logging.getLogger("rulebot.http")

MAX_BODY = 64 * 1024 * 1024  # bytes; default response size cap


class HttpError(RulebotError):
    """The server could not be reached, or answered what no retry will fix."""


class BodyTooLargeError(HttpError):
    """The answer was bigger than ``max_body``; it was not read further."""


class HttpRateLimitError(HttpError, RateLimited):
    """A rate limit outlasted ``max_wait`` or ``MAX_RATE_WAITS`` waits."""


class MaybeSentError(HttpError):
    """A request that is not idempotent failed after it may have reached the
    server (a lost or cut answer, a timeout, a 5xx): it was not re-sent. The
    caller checks whether it landed before sending it again (``pause`` first).
    ``timed_out``: no answer within the timeout, so the request may still be on
    its way and land after any check."""

    def __init__(self, message: str, problem: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.problem, self.timed_out = problem, timed_out


_UNREACHABLE: dict[type[RulebotError], type[ServerUnreachable]] = {}


def _unreachable_kind(error: type[RulebotError]) -> type[ServerUnreachable]:
    """``error`` (a service's own error class, which callers catch) that is also
    a ``ServerUnreachable`` (which appliers count); made once per class."""
    if issubclass(error, ServerUnreachable):
        return error
    kind = _UNREACHABLE.get(error)
    if kind is None:
        made = type(error.__name__, (error, ServerUnreachable), {"__module__": error.__module__})
        kind = _UNREACHABLE.setdefault(error, made)
    return kind


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
    ``pace(method, path)`` is called before every attempt (a rate-limited
    service's pacer waits there for the request's slot);
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
        pace: Callable[[str, str], None] | None = None,
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
        self.max_retries = max_retries
        self.requests_made = 0  # attempts, retries included
        self._rate_limited, self._detail, self._error = rate_limited, detail, error
        self._pace = pace  # asked before every attempt (method, path): waits for its slot
        self._service, self._config_key = service, config_key
        self._waiting = Waiting(
            self.origin,
            max_retries=max_retries,
            backoff_base=backoff_base,
            max_wait=max_wait,
            sleep=sleep,
            on_wait=on_wait,
            budget=rate_budget or RateBudget(),
            error=error,
            rate_error=rate_error or HttpRateLimitError,
        )
        self._deadline = Deadline()
        self._http = httpx.Client(
            # every socket operation is bounded by the attempt's deadline
            transport=transport(self._deadline),
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
            except RateLimitAnswer as limited:
                rate_waits += 1
                answered += 1
                self._waiting.rate_wait(label, limited.wait, rate_waits)
            except Retry as retry:
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
                    message = self._waiting.give_up(label, problems)
                    if not answered:  # not one attempt got an answer
                        raise self.unreachable(message) from None
                    raise self._error(message) from None
                self.pause(len(problems), label, retry.problem, retry.wait)

    def pause(self, failures: int, label: str, problem: str, after: float | None = None) -> None:
        """Wait before retry number ``failures`` as ``request`` does: ``after``
        seconds when the server said so, else capped, jittered backoff."""
        self._waiting.pause(failures, label, problem, after)

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        expect_json: bool,
    ) -> Response:
        if self._pace is not None:  # a rate-limited service: retries keep to it too
            self._pace(method, path)
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
            raise Retry(
                failure, unanswered=True, final=final, maybe_sent=not unsent, timed_out=timed_out
            )
        response = Response(status, answer_headers, body, path=path)
        logger.debug("%s %s: HTTP %d, %d bytes", method, path, status, len(body))
        wait = self._rate_limited(response) if self._rate_limited else None
        if wait is not None:
            raise RateLimitAnswer(wait)
        if status == 429:
            raise RateLimitAnswer(retry_after(response.headers))
        if status >= 500:
            raise Retry(self._server_problem(response), retry_after(response.headers))
        if expect_json and 200 <= status < 300:
            try:
                return Response(status, answer_headers, body, parse_json(body), path)
            except ValueError:
                kind = answer_headers.get("Content-Type", "").split(";")[0] or "no content type"
                raise Retry(
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

    def tell(self, message: str, label: str = "") -> None:
        """A wait the user should hear about: via ``on_wait``, else a warning."""
        self._waiting.tell(message, label)
