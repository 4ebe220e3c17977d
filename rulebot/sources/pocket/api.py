"""The Pocket v3 HTTP client: one place that talks to a Pocket server.

Every call is a POST with a JSON body that carries the credentials; they
never appear in a URL, a log line, an exception message or a repr. The
client retries what is worth retrying (5xx, timeouts, dropped connections,
a garbled 200) with exponential backoff and full jitter, honours
``Retry-After``, waits out rate limits (``X-Limit-*`` headers) up to
``max_rate_wait`` seconds, and never retries a 400, 401 or a 403 that is not
a rate limit. Answers are checked for the shape callers rely on before they
are returned, so a misbehaving server yields a ``PocketError`` naming the
endpoint, never a ``KeyError`` deep inside sync.

Every Pocket action is "set state" (archive, add a tag, add a URL that is
deduplicated by the server…), so re-sending a batch whose answer was lost
is safe; that is why ``/v3/send`` is retried like the other endpoints.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rulebot import __version__
from rulebot.errors import AuthError, PocketError, RateLimitError
from rulebot.http import (
    MAX_BACKOFF,
    MAX_BODY,
    HttpClient,
    Response,
    clean,
    header_number,
    retry_after,
    scrub,
)

logger = logging.getLogger("rulebot.pocket")

CONSUMER_KEY_ENV = "POCKET_CONSUMER_KEY"
ACCESS_TOKEN_ENV = "POCKET_ACCESS_TOKEN"


class BadRequestError(PocketError):
    """HTTP 400: the server refused the request as malformed; never retried.

    On ``/v3/send`` one malformed action fails the whole batch before any
    action runs, so a sender can split the batch to find the culprit.
    """

    def __init__(self, message: str, *, endpoint: str, error_code: str, error_text: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.error_code = error_code  # X-Error-Code, "" when absent
        self.error_text = error_text  # X-Error, "" when absent


@dataclass(frozen=True)
class SendResponse:
    """What ``/v3/send`` answered, parallel to the actions sent.

    ``action_results[i]`` is ``True``, ``False`` (failed; see
    ``action_errors[i]``, a ``{"message", "type", "code"}`` dict) or, for
    ``add``/``readd``, the item object. ``action_errors[i]`` is ``None`` when
    the server sent none. ``status`` stays 1 even when actions failed.
    """

    http_status: int
    status: int
    action_results: list[Any]
    action_errors: list[Any]

    def succeeded(self, index: int) -> bool:
        result = self.action_results[index]
        return result is True or result in (1, "1") or isinstance(result, dict)


@dataclass(frozen=True)
class Authorization:
    """The result of the OAuth flow; the token stays out of the repr."""

    access_token: str = field(repr=False)
    username: str


@dataclass(frozen=True)
class RateLimits:
    """The last ``X-Limit-*`` headers seen; ``None`` where absent."""

    user_limit: int | None = None
    user_remaining: int | None = None
    user_reset: int | None = None
    key_limit: int | None = None
    key_remaining: int | None = None
    key_reset: int | None = None
    seen_at: float = 0.0  # time.monotonic() when the headers arrived

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], seen_at: float) -> RateLimits:
        def number(name: str) -> int | None:
            return header_number(headers, name)  # "²" or 300 digits: absent

        return cls(
            user_limit=number("X-Limit-User-Limit"),
            user_remaining=number("X-Limit-User-Remaining"),
            user_reset=number("X-Limit-User-Reset"),
            key_limit=number("X-Limit-Key-Limit"),
            key_remaining=number("X-Limit-Key-Remaining"),
            key_reset=number("X-Limit-Key-Reset"),
            seen_at=seen_at,
        )

    @property
    def exhausted(self) -> bool:
        return self.user_remaining == 0 or self.key_remaining == 0

    def reset_in(self) -> int | None:
        """Seconds (from ``seen_at``) until the spent budget(s) refill."""
        resets = [
            reset
            for remaining, reset in (
                (self.user_remaining, self.user_reset),
                (self.key_remaining, self.key_reset),
            )
            if remaining == 0 and reset is not None
        ]
        return max(resets) if resets else None

    def describe(self) -> str:
        parts = []
        if self.user_remaining == 0:
            parts.append(f"user budget {self.user_limit or '?'} calls")
        if self.key_remaining == 0:
            parts.append(f"consumer-key budget {self.key_limit or '?'} calls")
        return " and ".join(parts) or "budget"


class PocketClient:
    """A client for one Pocket v3 server and one user.

    HTTP itself (retries, backoff, the total deadline per request, the
    size cap, connection errors) is ``rulebot.http.HttpClient``; this class
    adds Pocket's credentials, ``X-Limit-*`` budgets and error headers.
    ``timeout`` bounds each request as a whole (connect, send, the whole
    answer), not each socket read. ``max_rate_wait``: the longest wait for a
    rate-limit reset (or a ``Retry-After``) before giving up. ``on_wait``
    receives one line per rate-limit wait; retries are logged at info level
    and only the final failure is raised. ``sleep`` is injectable for tests.
    """

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        access_token: str,
        *,
        timeout: float = 30.0,
        max_body: int = MAX_BODY,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        max_rate_wait: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] | None = None,
        consumer_key_env: str = CONSUMER_KEY_ENV,
        access_token_env: str = ACCESS_TOKEN_ENV,
    ) -> None:
        if any(mark in base_url for mark in "@?#"):  # checked first: never echo such a URL
            raise PocketError(
                "the Pocket base_url must not carry credentials or a query string; "
                f"credentials come from {consumer_key_env} and {access_token_env}"
            )
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PocketError(
                f"the Pocket base_url {clean(base_url, (), 80)!r} is not an http(s) URL; "
                "set pocket.base_url to your Pocket-compatible server's address, e.g. https://pocket.example.com"
            )
        self.base_url = base_url.strip().rstrip("/")
        self._consumer_key = consumer_key
        self._access_token = access_token
        self.timeout = timeout
        self.max_rate_wait = max_rate_wait
        self._sleep = sleep
        self._key_env, self._token_env = consumer_key_env, access_token_env
        self.rate_limits = RateLimits()
        self.show_progress = False  # the sender's "sent batch k/n" line (on a TTY only)
        self._http = HttpClient(
            self.base_url,
            timeout=timeout,
            total_timeout=timeout,
            max_body=max_body,
            user_agent=f"rulebot/{__version__}",
            secrets=(consumer_key, access_token),
            on_wait=on_wait,
            max_retries=max_retries,
            backoff_base=backoff_base,
            max_wait=max_rate_wait,
            sleep=sleep,
            rate_limited=self._rate_limited,
            detail=self._detail,
            error=PocketError,
            rate_error=RateLimitError,
            service="a Pocket v3 server",
            config_key="pocket.base_url",
        )

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._http.requests_made

    @classmethod
    def from_env(
        cls,
        base_url: str,
        consumer_key_env: str = CONSUMER_KEY_ENV,
        access_token_env: str = ACCESS_TOKEN_ENV,
        *,
        require_access_token: bool = True,
        **kw: Any,
    ) -> PocketClient:
        """Credentials from the environment; errors name the variable, never a value.

        ``require_access_token=False`` is for the OAuth flow, which has no
        token yet.
        """
        consumer_key = os.environ.get(consumer_key_env, "").strip()
        access_token = os.environ.get(access_token_env, "").strip()
        missing = [consumer_key_env] if not consumer_key else []
        if require_access_token and not access_token:
            missing.append(access_token_env)
        if missing:
            names = " and ".join(missing)
            hint = (
                "; run `rulebot auth` to get an access token" if access_token_env in missing else ""
            )
            raise AuthError(
                f"{names} {'is' if len(missing) == 1 else 'are'} not set: set "
                f"{'it' if len(missing) == 1 else 'them'} in the environment to your Pocket "
                f"credentials (they are never read from the config file){hint}"
            )
        return cls(
            base_url,
            consumer_key,
            access_token,
            consumer_key_env=consumer_key_env,
            access_token_env=access_token_env,
            **kw,
        )

    def __repr__(self) -> str:
        return f"PocketClient(base_url={self.base_url!r}, credentials=<hidden>)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PocketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------
    def get(self, **params: Any) -> dict[str, Any]:
        """``/v3/get``; ``list`` is always a dict keyed by item_id (``[]`` → ``{}``)."""
        answer = self._call("/v3/get", params)
        endpoint = "/v3/get"
        status = answer.get("status")
        if status not in (0, 1, 2, "0", "1", "2"):
            shown = self._clean(repr(status), 40) if isinstance(status, (int, str)) else "absent"
            raise self._shape(endpoint, f"'status' is {shown}, expected 0, 1 or 2")
        if int(status) == 0:
            detail = answer.get("error") or "no reason given"
            raise PocketError(f"{endpoint}: the server reported an error: {self._clean(detail)}")
        listing = answer.get("list")
        if listing is None and int(status) == 1:
            raise self._shape(endpoint, "'status' is 1 but there is no 'list'")
        if listing is None or listing == []:
            listing = {}
        if isinstance(listing, list):  # a server that sent the items as an array
            if not all(isinstance(entry, Mapping) and "item_id" in entry for entry in listing):
                raise self._shape(endpoint, "'list' is an array of something other than items")
            listing = {str(entry["item_id"]): entry for entry in listing}
        if not isinstance(listing, Mapping):
            raise self._shape(endpoint, f"'list' is a {type(listing).__name__}")
        for key, entry in listing.items():
            if not isinstance(entry, Mapping):
                shown = self._clean(repr(key), 40)
                raise self._shape(endpoint, f"entry {shown} in 'list' is not an object")
        return {**answer, "status": int(status), "list": dict(listing)}

    def send(self, actions: Sequence[Mapping[str, Any]]) -> SendResponse:
        """``/v3/send``; raises ``BadRequestError`` when the whole batch is refused."""
        if not actions:
            return SendResponse(200, 1, [], [])
        endpoint = "/v3/send"
        answer, http_status = self._call_with_status(endpoint, {"actions": list(actions)})
        results = answer.get("action_results")
        if not isinstance(results, list) or len(results) != len(actions):
            got = len(results) if isinstance(results, list) else type(results).__name__
            raise self._shape(
                endpoint, f"'action_results' has {got} entries for {len(actions)} actions"
            )
        errors = answer.get("action_errors")
        if errors is None:  # the old server sent no action_errors
            errors = [None] * len(actions)
        if not isinstance(errors, list) or len(errors) != len(actions):
            raise self._shape(endpoint, "'action_errors' does not match the actions sent")
        # Server text ends up in messages, result files, the journal and the
        # mirror: every string at any depth is masked (clipped where shown).
        secrets = (self._consumer_key, self._access_token)
        results, errors = scrub(results, secrets), scrub(errors, secrets)
        status = answer.get("status")
        return SendResponse(http_status, status if isinstance(status, int) else -1, results, errors)

    def add(
        self, url: str, title: str | None = None, tags: Sequence[str] | str | None = None
    ) -> dict[str, Any]:
        """``/v3/add``: save one URL; returns the item object."""
        params: dict[str, Any] = {"url": url}
        if title is not None:
            params["title"] = title
        if tags:
            params["tags"] = tags if isinstance(tags, str) else ",".join(tags)
        answer = self._call("/v3/add", params)
        item = answer.get("item")
        if not isinstance(item, Mapping):
            raise self._shape("/v3/add", "'item' is missing or not an object")
        return dict(item)

    def oauth_request(self, redirect_uri: str, state: str | None = None) -> str:
        """Step 1 of the OAuth flow: a request token (``code``)."""
        params = {"redirect_uri": redirect_uri, **({"state": state} if state else {})}
        answer = self._call("/v3/oauth/request", params, with_token=False)
        code = answer.get("code")
        if not isinstance(code, str) or not code:
            raise self._shape("/v3/oauth/request", "no 'code' in the answer")
        return code

    def oauth_authorize(self, code: str) -> Authorization:
        """Step 3: trade the approved code for an access token."""
        endpoint = "/v3/oauth/authorize"
        answer = self._call(endpoint, {"code": code}, with_token=False)
        token, username = answer.get("access_token"), answer.get("username")
        if not isinstance(token, str) or not token or not isinstance(username, str):
            raise self._shape(endpoint, "no 'access_token' and 'username' in the answer")
        return Authorization(access_token=token, username=username)

    # -- the request loop ------------------------------------------------------------
    def _call(
        self, endpoint: str, params: Mapping[str, Any], *, with_token: bool = True
    ) -> dict[str, Any]:
        return self._call_with_status(endpoint, params, with_token=with_token)[0]

    def _call_with_status(
        self, endpoint: str, params: Mapping[str, Any], *, with_token: bool = True
    ) -> tuple[dict[str, Any], int]:
        body: dict[str, Any] = {**params, "consumer_key": self._consumer_key}
        if with_token:
            body["access_token"] = self._access_token
        self._wait_for_budget(endpoint)
        # The OAuth calls may answer form-encoded (X-Accept ignored): parsed below.
        oauth = endpoint.startswith("/v3/oauth/")
        response = self._http.request(
            "POST",
            endpoint,
            content=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json; charset=UTF-8",
                "X-Accept": "application/json",
            },
            expect_json=not oauth,
            label=endpoint,
        )
        status = response.status
        if status == 200:
            return self._parse(endpoint, response), status
        error_code = self._clean(response.headers.get("X-Error-Code", ""), 20)
        detail = self._detail(response)
        if status == 401:
            raise AuthError(
                f"{endpoint}: the access token was rejected ({status}, {detail}): set "
                f"{self._token_env} to a valid token; run `rulebot auth` to get one"
            )
        if status == 403:
            raise AuthError(self._forbidden(endpoint, error_code, detail))
        if status == 400:
            raise BadRequestError(
                f"{endpoint}: the server refused the request as malformed (400, {detail})",
                endpoint=endpoint,
                error_code=error_code,
                error_text=self._clean(response.headers.get("X-Error", "")),
            )
        raise PocketError(
            f"{endpoint}: unexpected answer {status} ({detail}); "
            "check that pocket.base_url points at a Pocket v3 server"
        )

    def _detail(self, response: Response) -> str:
        """``X-Error-Code`` and ``X-Error``, masked then clipped."""
        error_code = self._clean(response.headers.get("X-Error-Code", ""), 20)
        error_text = self._clean(response.headers.get("X-Error", ""))
        detail = f"X-Error-Code {error_code}" if error_code else "no X-Error-Code"
        return f"{detail}: {error_text}" if error_text else detail

    def _rate_limited(self, response: Response) -> float | None:
        """Sees every answer: records ``X-Limit-*``; for a rate-limit answer,
        the seconds to wait (or ``RateLimitError`` when that is too long)."""
        limits = RateLimits.from_headers(response.headers, time.monotonic())
        self.rate_limits = limits
        if not (response.status == 429 or (response.status == 403 and limits.exhausted)):
            return None
        after = retry_after(response.headers)
        if after is not None and limits.reset_in() is None:
            limits = RateLimits(
                user_remaining=0, user_reset=math.ceil(after), seen_at=limits.seen_at
            )
            self.rate_limits = limits
        reset = limits.reset_in()
        seconds = float(reset) if reset is not None else MAX_BACKOFF
        if seconds > self.max_rate_wait:
            raise self._too_long(response.path, limits, seconds)
        self.rate_limits = RateLimits()  # waited out by the caller; the next answer says
        return seconds

    def _parse(self, endpoint: str, response: Response) -> dict[str, Any]:
        if response.data is not None:
            answer = response.data
        else:
            kind = response.headers.get("Content-Type", "")
            if "x-www-form-urlencoded" in kind:  # OAuth answers without X-Accept honoured
                return dict(parse_qsl(response.text))
            try:
                answer = response.json()
            except ValueError:
                raise self._shape(endpoint, "the body is not JSON") from None
        if not isinstance(answer, dict):
            raise self._shape(endpoint, f"the answer is a JSON {type(answer).__name__}")
        return answer

    def _forbidden(self, endpoint: str, error_code: str, detail: str) -> str:
        if error_code == "152":
            return (
                f"{endpoint}: the consumer key was rejected (403, {detail}): set "
                f"{self._key_env} to a valid Pocket consumer key"
            )
        if error_code == "158":
            return f"{endpoint}: the user did not approve the request (403, {detail})"
        if error_code == "159":
            return (
                f"{endpoint}: this request token was already used (403, {detail}); "
                "run `rulebot auth` again"
            )
        return (
            f"{endpoint}: access denied (403, {detail}): the consumer key in "
            f"{self._key_env} lacks the permission for this call; a key needs the "
            "Retrieve, Modify and Add permissions"
        )

    # -- waiting -------------------------------------------------------------------
    def _wait_for_budget(self, endpoint: str) -> None:
        """Before a call: if the last answer said the budget is spent, wait it out."""
        limits = self.rate_limits
        reset = limits.reset_in()
        if not limits.exhausted or reset is None:
            return
        left = limits.seen_at + reset - time.monotonic()
        if left > 0:
            if left > self.max_rate_wait:
                raise self._too_long(endpoint, limits, left)
            self._http.tell(f"rate limit reached; waiting {math.ceil(left)} s for reset", endpoint)
            self._sleep(left)
        self.rate_limits = RateLimits()  # assume the refill; the next answer says

    def _too_long(self, endpoint: str, limits: RateLimits, seconds: float) -> RateLimitError:
        return RateLimitError(
            f"{endpoint}: rate limit reached ({limits.describe()} spent); the server resets "
            f"in {math.ceil(seconds)} s, longer than max_rate_wait "
            f"({self.max_rate_wait:g} s); try again after the reset"
        )

    # -- messages --------------------------------------------------------------------
    def _shape(self, endpoint: str, what: str) -> PocketError:
        return PocketError(
            f"{endpoint}: the server's answer is not what a Pocket v3 server sends: {what}"
        )

    def clean(self, text: Any, limit: int = 200) -> str:
        """Server text made safe for a message: secrets masked, then clipped."""
        return clean(text, (self._consumer_key, self._access_token), limit)

    _clean = clean
