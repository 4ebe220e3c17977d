"""The Shaarli REST API v1 client, and how a link becomes an ``Item``.

Facts from ``specs/shaarli.md`` (checked against the real server) that shape it:

- the API lives under ``/api/v1``; auth is a JWT rulebot signs itself with
  the API secret (HS512 over ``{"iat": …}``; the server accepts a token for
  540 s after ``iat`` and none from the future, so ``iat`` is an integer a
  few seconds in the past, and every request gets a fresh token). A token
  is a credential for 9 minutes: each one signed is masked like the secret
  (it and its signature alone), in case a server echoes it;
- every auth failure is 401 ``"Not authorized"``, with no cause: the message
  lists the likely ones (secret, API disabled, clock);
- error bodies are bare JSON strings (``"Link not found"``); a route that
  does not match (a tag name outside ``[A-Za-z0-9_]+``, a wrong base URL)
  is a 404 with an empty HTML body, before auth;
- ``GET /links`` pages by ``offset``/``limit`` (``limit=0`` means 20, so
  rulebot always sends a positive limit) and has no total: a short page ends
  the scan;
- ``PUT /links/{id}`` replaces the whole link: a field left out is reset (no
  ``url`` turns the bookmark into a note). ``put_link`` always sends the five
  editable fields;
- link ids are integers from 0 and are **reused** (delete the highest id,
  create, and the new link gets it): the ``shorturl`` (a hash of the creation
  date and id, never changed) tells a link from a later one with its id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from rulebot import __version__
from rulebot.errors import CredentialsError, ItemDataError, RulebotError
from rulebot.http import HttpClient, RateBudget, Response, Secrets, clip, describe
from rulebot.library.item import Item, checked_time
from rulebot.sources.paging import Bounds, Listing

API_SECRET_ENV = "SHAARLI_API_SECRET"
API_PATH = "/api/v1"
SECRET_HELP = "Shaarli shows it under Tools > Configure your Shaarli > REST API secret"
CLOCK_SKEW = 5  # seconds: iat is this far in the past, for a server clock a little behind
# what the tag routes accept: ASCII word characters only (specs/shaarli.md §1);
# whole strings only (fullmatch): `$` would take "js\n" and route it as js%0A
TAG_ROUTE = re.compile(r"[A-Za-z0-9_]+")
_SHORTURL = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_LINK_ID = 2**63 - 1  # PHP's integer, and the store's


class ShaarliError(RulebotError):
    """Shaarli failed, or answered something rulebot cannot use."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


class ShaarliAuthError(ShaarliError, CredentialsError):
    """401: the secret is missing or wrong, the API is off, or the clocks disagree."""


class NotFound(ShaarliError):
    """404 ``Link not found`` / ``Tag not found``: the link or tag is gone (moot)."""


class Conflict(ShaarliError):
    """409: another link already has this URL; ``existing`` is that link."""

    def __init__(self, message: str, existing: Any) -> None:
        super().__init__(message, status=409)
        self.existing = existing


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(secret: str, now: float) -> str:
    """A JWT as Shaarli checks it: HS512 over base64url(header).base64url(payload),
    unpadded, with an integer ``iat`` (a fractional one fails in its own second)."""
    header = _b64(json.dumps({"typ": "JWT", "alg": "HS512"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps({"iat": int(now) - CLOCK_SKEW}, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{_b64(signature)}"


class ShaarliClient:
    """One Shaarli instance. ``base_url`` is the instance root (``/api/v1`` is appended)."""

    def __init__(
        self,
        base_url: str,
        secret: str | None,
        *,
        page_size: int = 100,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        max_wait: float = 900.0,
        secret_env: str = API_SECRET_ENV,
        on_wait: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ShaarliAuthError(
                f"Shaarli needs its REST API secret in the environment variable {secret_env}; "
                f"{SECRET_HELP}"
            )
        if page_size < 1:
            raise ShaarliError(f"shaarli page_size is {page_size}; it must be at least 1")
        self.base_url = _instance_root(base_url)
        self.page_size = page_size
        self.secret_env = secret_env
        self._secret = secret
        # the secret and every token signed with it, masked in all their spellings
        self._secrets = Secrets([secret])
        self._clock = clock
        self._settings: dict[str, Any] = {
            "timeout": timeout,
            "max_retries": max_retries,
            "backoff_base": backoff_base,
            "max_wait": max_wait,
            "on_wait": on_wait,
            "rate_budget": RateBudget(),  # one for every thread: spent once, spent for all
        }
        self._local = threading.local()
        self._clients: list[HttpClient] = []
        self._lock = threading.Lock()
        self.origin = self._http().origin  # checks the URL now, not at the first request

    def __repr__(self) -> str:  # never the secret
        return f"ShaarliClient({self.base_url!r})"

    def __enter__(self) -> ShaarliClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    @property
    def requests_made(self) -> int:
        with self._lock:
            return sum(client.requests_made for client in self._clients)

    # -- links ------------------------------------------------------------------------
    def iter_links(self, *, bounds: Bounds | None = None) -> Iterator[dict[str, Any]]:
        """Every link (private ones too), newest first, ``offset``/``limit`` pages.

        Offsets shift when links are added or deleted during the scan: a link
        seen twice is yielded once. Shaarli announces no count: ``bounds``
        (what the mirror holds, the config's ``max_items``) and a page with
        nothing new stop a scan that would not end (``rulebot.sources.paging``)."""
        listing = Listing(
            "GET /links",
            "links",
            origin=self.origin,
            page_size=self.page_size,
            bounds=bounds,
            error=ShaarliError,
        )
        seen: set[int] = set()
        offset = 0
        while True:
            params = {"offset": str(offset), "limit": str(self.page_size), "visibility": "all"}
            page = self._call("GET", "/links", params=params)
            if not isinstance(page, list):
                raise ShaarliError(f"GET /links: the answer is {describe(page)}, expected a list")
            last = len(page) < self.page_size
            listing.page((_listed_id(raw) for raw in page), repeat_ends=last)
            for raw in page:
                link_id = raw.get("id") if isinstance(raw, Mapping) else None
                if isinstance(link_id, int) and link_id in seen:
                    continue
                if isinstance(link_id, int):
                    seen.add(link_id)
                yield raw
            if last:
                return
            offset += len(page)

    def get_link(self, link_id: int) -> dict[str, Any]:
        return _object(self._call("GET", f"/links/{link_id}", item=True), f"GET /links/{link_id}")

    def put_link(self, link_id: int, link: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the link: the five editable fields, all of them (a missing one resets)."""
        body = {key: link[key] for key in ("url", "title", "description", "tags", "private")}
        path = f"/links/{link_id}"
        return _object(self._call("PUT", path, json=body, item=True), f"PUT {path}")

    def delete_link(self, link_id: int) -> None:
        self._call("DELETE", f"/links/{link_id}", item=True, expect_json=False)

    def create_link(self, url: str, title: str, tags: list[str]) -> dict[str, Any]:
        """POST a link; 409 (the URL is saved already) raises ``Conflict`` with that link."""
        body = {"url": url, "title": title, "description": "", "tags": tags}
        return _object(self._call("POST", "/links", json=body), "POST /links")

    # -- tags -------------------------------------------------------------------------
    def rename_tag(self, name: str, new_name: str) -> None:
        """Rename the exact spelling ``name`` in every link (the route takes ``\\w+`` only)."""
        self._call("PUT", f"/tags/{_tag_path(name)}", json={"name": new_name}, item=True)

    def delete_tag(self, name: str) -> None:
        """Remove one exact-case occurrence of ``name`` from every link."""
        self._call("DELETE", f"/tags/{_tag_path(name)}", item=True, expect_json=False)

    def info(self) -> dict[str, Any]:
        """Counters and settings: a cheap credentials check."""
        return _object(self._call("GET", "/info"), "GET /info")

    # -- plumbing ---------------------------------------------------------------------
    def _token(self) -> str:
        """A token signed now, masked from now on like the secret (one per second:
        the same ``iat`` signs the same token, so the set grows with the run's length)."""
        token = make_token(self._secret, self._clock())
        self._secrets.add(token)
        self._secrets.add(token.rsplit(".", 1)[-1])  # the signature alone
        return token

    def _http(self) -> HttpClient:
        client: HttpClient | None = getattr(self._local, "client", None)
        if client is None:
            client = HttpClient(
                self.base_url,
                **self._settings,
                user_agent=f"rulebot/{__version__}",
                secrets=self._secrets,
                error=ShaarliError,
                service="a Shaarli server",
                config_key="shaarli.base_url",
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        item: bool = False,
        expect_json: bool = True,
    ) -> Any:
        """One API call; a non-2xx answer becomes the matching ``ShaarliError``.

        ``item``: the path names one link or tag, so Shaarli's own 404 is
        ``NotFound`` (moot). A 404 with an empty body is a route that did not
        match: the base URL is not a Shaarli API."""
        label = f"{method} {path}"
        http = self._http()
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "Accept": "application/json",
        }
        response = http.request(
            method,
            API_PATH + path,
            json=json,
            params=params,
            headers=headers,
            expect_json=expect_json,
            label=label,
        )
        if 200 <= response.status < 300:
            return response.data if expect_json else None
        detail = _error_text(response, http)
        if response.status == 401:
            raise ShaarliAuthError(
                f"{label}: Shaarli at {self.origin} refused rulebot's token signed with "
                f"{self.secret_env} (401 {detail or 'Not authorized'}); check that "
                f"{self.secret_env} is the instance's REST API secret ({SECRET_HELP}), that the "
                "REST API is enabled there, and that this machine's clock is right (Shaarli "
                "rejects tokens from the future or older than 9 minutes)",
                status=401,
                detail=detail,
            )
        if response.status == 409:
            existing = _json_or_none(response)
            raise Conflict(f"{label}: another link already has this URL on Shaarli", existing)
        if response.status == 404 and item and detail:
            raise NotFound(f"{label}: {detail} on {self.origin}", status=404, detail=detail)
        if response.status == 404:
            raise ShaarliError(
                f"{label}: {self.origin} answered 404 without a reason; is shaarli.base_url "
                "the root of a Shaarli instance (the address you open in a browser)?",
                status=404,
            )
        raise ShaarliError(
            f"{label}: Shaarli refused it ({response.status} {detail or 'without a reason'})",
            status=response.status,
            detail=detail,
        )


# -- from a link to an Item -----------------------------------------------------------------


def link_to_item(raw: Any) -> Item:
    """One Shaarli link as rulebot sees it.

    ``url``/``title``/``tags`` as they are, ``created`` -> ``time_added``,
    ``updated`` -> ``time_updated`` (``""``, never updated, reads as the
    creation time), ``private`` and ``shorturl`` kept in ``Item.extra``.
    Shaarli has no status or favourite: ``favorite`` is unknown, and the
    status field is never read (conditions on it are refused at validate).
    A link with fields of the wrong type, or a time outside 1900-2999, is an
    ``ItemDataError`` naming it.
    """
    if not isinstance(raw, Mapping):
        raise ItemDataError(f"Shaarli link is {describe(raw)}, expected an object")
    link_id = raw.get("id")
    if not is_link_id(link_id):
        raise ItemDataError(
            f"Shaarli link has id {_show(link_id)}, expected a whole number up to 2^63 - 1"
        )
    where = f"Shaarli link {link_id}"
    url = _text(raw.get("url"), where, "url")
    title = _text(raw.get("title"), where, "title")
    shorturl = raw.get("shorturl")
    if not isinstance(shorturl, str) or not _SHORTURL.fullmatch(shorturl):
        raise ItemDataError(f"{where}: field 'shorturl' is {_show(shorturl)}")
    private = raw.get("private")
    if not isinstance(private, bool):
        raise ItemDataError(f"{where}: field 'private' is {_show(private)}, expected true/false")
    tags = raw.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ItemDataError(f"{where}: field 'tags' is {describe(tags)}, expected a list of text")
    added = _seconds(raw.get("created"), where, "created")
    updated_raw = raw.get("updated")
    updated = added if updated_raw == "" else _seconds(updated_raw, where, "updated")
    return Item(
        item_id=str(link_id),
        given_url=url,
        given_title=title,
        resolved_title=title,
        favorite=None,
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        time_added=added,
        time_updated=updated,
        extra={"private": private, "shorturl": shorturl},
    )


def is_link_id(value: Any) -> bool:
    """A link id as Shaarli gives it: an integer from 0 that PHP (and SQLite) can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LINK_ID


def _listed_id(raw: Any) -> str | None:
    """A listed link's id when it is one rulebot can read (paging progress)."""
    link_id = raw.get("id") if isinstance(raw, Mapping) else None
    return str(link_id) if is_link_id(link_id) else None


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str):
        raise ItemDataError(f"{where}: field {name!r} is {describe(value)}, expected text")
    return value


def _seconds(value: Any, where: str, name: str) -> int:
    """Shaarli's ``DateTime::ATOM`` (``2026-12-01T09:14:28+00:00``) as unix seconds."""
    parsed = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ItemDataError(f"{where}: field {name!r} is {_show(value)}, expected a date and time")
    try:
        seconds = int(parsed.timestamp())
    except (OverflowError, ValueError):
        seconds = -(2**63)  # out of any range: refused below
    return checked_time(seconds, where, name)


def _show(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return clip(json.dumps(value), 60)
    return describe(value)


def _instance_root(base_url: str) -> str:
    """The instance root; a pasted ``…/api/v1`` is forgiven."""
    root = base_url.strip().rstrip("/")
    return root[: -len(API_PATH)] if root.endswith(API_PATH) else root


def _tag_path(name: str) -> str:
    # the route only matches [A-Za-z0-9_]+; callers check, this keeps the path one segment
    return quote(name, safe="")


def _object(answer: Any, label: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise ShaarliError(f"{label}: the answer is {describe(answer)}, expected an object")
    return answer


def _json_or_none(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(response: Response, http: HttpClient) -> str:
    """Shaarli's reason: a bare JSON string (``"Link not found"``), else the text."""
    text = response.text.strip()
    if text.startswith('"'):
        try:
            decoded = json.loads(text)
            text = decoded if isinstance(decoded, str) else text
        except ValueError:
            pass
    if "text/html" in response.headers.get("content-type", "") and not text.startswith("{"):
        text = text if len(text) < 200 and "<" not in text else ""
    return http.clean(text, 160)
