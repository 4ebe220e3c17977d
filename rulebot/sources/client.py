"""What every service's API client shares: a connection per thread, one
error per refusal, the paging guard and the checks of an answer's shape.

A service's client (``sources/<name>/api.py``) subclasses ``ServiceClient``
and says only what is its own: its name, config block and API path, its
error classes, the credential a request carries (``token``), how the server
words a refusal (``reason``) and which refusals mean something of their own
(``refused``: a 401 naming the credential variable, a 409 …). Here:

- a client may be shared by worker threads: each thread gets its own
  ``rulebot.http.HttpClient`` (which keeps per-attempt state), all sharing
  one ``RateBudget`` (spent once, spent for all) and one ``Secrets``;
  ``requests_made`` counts every attempt of every thread;
- ``call`` is one request below the API path; a 2xx answer is returned,
  any other becomes the service's error (``refusal``): a 404 on a path that
  names one item or tag is its ``not_found`` (a ``Gone``: the action on it
  is moot), any other 404 asks whether the base URL is the instance's root;
- ``listing`` is the paging guard (``sources.paging``) for this server;
  ``object`` is an answer that must be a JSON object.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypedDict, Unpack
from urllib.parse import quote

from rulebot import __version__
from rulebot.errors import RulebotError
from rulebot.http import HttpClient, RateBudget, Response, Secrets
from rulebot.sources.fields import kind
from rulebot.sources.pacing import Pacer
from rulebot.sources.paging import Bounds, Listing


class Settings(TypedDict, total=False):
    """How a client talks to its server, as every ``ServiceClient`` takes it:
    ``timeout`` bounds each socket operation, ``total_timeout`` each attempt
    (default: ``timeout``), ``max_wait`` the longest rate-limit wait;
    ``on_wait`` hears about those waits; ``sleep`` is injectable for tests;
    ``rate_limits`` changes the client's declared ones (``sources.pacing``)
    and ``pace_clock`` is its pacer's (injectable for tests)."""

    timeout: float
    total_timeout: float | None
    max_retries: int
    backoff_base: float
    max_wait: float
    on_wait: Callable[[str], None] | None
    sleep: Callable[[float], None]
    rate_limits: Mapping[str, int]
    pace_clock: Callable[[], float]


DEFAULTS: Settings = {
    "timeout": 30.0,
    "total_timeout": None,
    "max_retries": 5,
    "backoff_base": 0.5,
    "max_wait": 900.0,
    "on_wait": None,
    "sleep": time.sleep,
}


class ServiceError(RulebotError):
    """A service failed, or answered something rulebot cannot use.

    ``status`` is the HTTP status when there was an answer; ``detail`` the
    server's own text (secrets masked, clipped)."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


class Gone(ServiceError):
    """The item (or tag) an action names is gone on the server: the action is
    moot. Each service's ``NotFound`` is one, and that service's error too."""


class ServiceClient:
    """One instance of a service; ``base_url`` is its root (``api_path`` is
    appended, and forgiven when pasted: ``pasted``)."""

    service: ClassVar[str]  # "Karakeep", in messages
    config: ClassVar[str]  # "karakeep": the config block (``karakeep.base_url``)
    api_path: ClassVar[str]  # "/api/v1"
    pasted: ClassVar[tuple[str, ...]] = ()  # base URL endings forgiven besides api_path
    error: ClassVar[type[ServiceError]] = ServiceError
    not_found: ClassVar[type[ServiceError]] = Gone
    rate_error: ClassVar[type[RulebotError] | None] = None  # None: rulebot.http's
    # requests per minute per endpoint class (``sources.pacing``); none: not paced
    rate_limits: ClassVar[Mapping[str, int]] = {}

    def __init__(
        self, base_url: str, *, secrets: Secrets, page_size: int, **settings: Unpack[Settings]
    ) -> None:
        self.base_url = instance_root(base_url, (self.api_path, *self.pasted))
        self.page_size = page_size
        self.secrets = secrets  # the credentials and every token learnt, masked in messages
        limits = {**self.rate_limits, **settings.pop("rate_limits", {})}
        clock = settings.pop("pace_clock", time.monotonic)
        self._settings: dict[str, Any] = {
            **DEFAULTS,
            **settings,
            "rate_budget": RateBudget(),  # one for every thread: spent once, spent for all
        }
        # one for every thread: the limits are the token's, whichever thread sends
        self.pacer: Pacer | None = None
        if limits:
            self.pacer = Pacer(
                limits, clock=clock, sleep=self._settings["sleep"], on_wait=settings.get("on_wait")
            )
            self._settings["pace"] = self._pace
        self.max_retries: int = self._settings["max_retries"]
        self._local = threading.local()
        self._clients: list[HttpClient] = []
        self._clients_lock = threading.Lock()
        self.origin = self._http().origin  # checks the URL now, not at the first request

    def __repr__(self) -> str:  # never a credential
        return f"{type(self).__name__}({self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    @property
    def requests_made(self) -> int:
        """HTTP attempts so far, retries included, over every thread."""
        with self._clients_lock:
            return sum(client.requests_made for client in self._clients)

    # -- what a service says of its own -----------------------------------------------
    def rate_class(self, method: str, path: str) -> str:
        """Which of ``rate_limits`` one request (``path`` below the host) counts against."""
        return "default"

    def _pace(self, method: str, path: str) -> None:
        if self.pacer is not None:
            self.pacer.wait(self.rate_class(method, path))

    def token(self) -> str:
        """The credential a request carries as ``Authorization: Bearer``."""
        raise NotImplementedError

    def reason(self, response: Response) -> str:
        """The server's own words for a refusal (masked and clipped by ``refusal``)."""
        return response.text.strip()

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> ServiceError | None:
        """The error for a refusal that means something to this service (a 401
        naming its credential variable); None: ``refusal``'s own reading."""
        return None

    def rate_limited(self, response: Response) -> float | None:
        """Seconds to wait when ``response`` is a rate limit the server words
        its own way; None: ``rulebot.http`` reads 429 and ``Retry-After``."""
        return None

    # -- requests ------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        """Every API request's: the credential, and JSON for errors too."""
        return {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}

    def request(
        self,
        method: str,
        path: str,
        *,
        label: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expect_json: bool = True,
        idempotent: bool = True,
    ) -> Response:
        """One request below ``api_path``, answered with any status
        (``headers``: instead of this client's own)."""
        return self._http().request(
            method,
            self.api_path + path,
            json=json,
            params=params,
            content=content,
            headers=headers if headers is not None else self.headers(),
            expect_json=expect_json,
            label=label,
            idempotent=idempotent,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        label: str | None = None,
        item: bool = False,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        expect_json: bool = True,
        idempotent: bool = True,
    ) -> Response:
        """One API call: a 2xx answer, or this service's error (``refusal``).

        ``item``: the call names one item or tag, so a 404 is ``not_found``
        (moot); elsewhere a 404 means the base URL is not this service's API."""
        label = label or f"{method} {path}"
        response = self.request(
            method,
            path,
            label=label,
            json=json,
            params=params,
            expect_json=expect_json,
            idempotent=idempotent,
        )
        if 200 <= response.status < 300:
            return response
        raise self.refusal(response, label, item=item)

    def refusal(self, response: Response, label: str, *, item: bool = False) -> ServiceError:
        """The error for an answer that is no success: the service's own
        reading first (``refused``); else a 404 on an item is ``not_found``,
        any other 404 asks about the base URL, anything else names the status
        and the server's reason."""
        detail = self._http().clean(self.reason(response), 160)
        special = self.refused(response, label, detail, item=item)
        if special is not None:
            return special
        status = response.status
        if status == 404 and item:
            return self.not_found(
                f"{label}: not found on {self.origin} ({detail})", status=404, detail=detail
            )
        if status == 404:
            return self.error(
                f"{label}: {self.origin} answered 404 ({detail}); is {self.config}.base_url the "
                f"root of a {self.service} instance (the address you open in a browser)?",
                status=404,
                detail=detail,
            )
        return self.error(
            f"{label}: {self.service} refused it ({status} {detail or 'without a reason'})",
            status=status,
            detail=detail,
        )

    # -- answers -------------------------------------------------------------------
    def listing(self, label: str, noun: str, bounds: Bounds | None = None) -> Listing:
        """The guard of one paged listing of ``noun`` from this server."""
        return Listing(
            label,
            noun,
            origin=self.origin,
            page_size=self.page_size,
            bounds=bounds,
            error=self.error,
        )

    def object(self, answer: Any, label: str) -> dict[str, Any]:
        """``answer``, which must be a JSON object."""
        if not isinstance(answer, dict):
            raise self.error(f"{label}: the answer is {kind(answer)}, expected an object")
        return answer

    def _http(self) -> HttpClient:
        """This thread's connection (an ``HttpClient`` keeps per-attempt state)."""
        client: HttpClient | None = getattr(self._local, "client", None)
        if client is None:
            client = HttpClient(
                self.base_url,
                **self._settings,
                user_agent=f"rulebot/{__version__}",
                secrets=self.secrets,
                rate_limited=self.rate_limited,
                error=self.error,
                rate_error=self.rate_error,
                service=f"a {self.service} server",
                config_key=f"{self.config}.base_url",
            )
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client


def checked_token(
    token: str | None, env: str, *, error: type[RulebotError], needs: str, hint: str
) -> str:
    """The credential from ``env``, or ``error`` saying what the service
    ``needs`` ("Readeck needs an API token"), the variable, and where to get it."""
    if not token or not token.strip():
        raise error(f"{needs} in the environment variable {env}; {hint}")
    return token.strip()


def checked_page_size(
    page_size: int, most: int, *, error: type[RulebotError], config: str, answers: str
) -> int:
    """``page_size`` when the service takes it (1 to ``most``), else ``error``:
    "readeck page_size is 500; Readeck answers 1 to 100 bookmarks per page"."""
    if not 1 <= page_size <= most:
        raise error(f"{config} page_size is {page_size}; {answers.format(most=most)}")
    return page_size


def instance_root(base_url: str, pasted: tuple[str, ...]) -> str:
    """The instance root: a pasted API path (any of ``pasted``) is forgiven."""
    root = base_url.strip().rstrip("/")
    for suffix in pasted:
        if root.endswith(suffix):
            return root[: -len(suffix)]
    return root


def path_segment(value: str) -> str:
    """An id as one path segment: anything else is quoted so it cannot change the route."""
    return quote(str(value), safe="")
