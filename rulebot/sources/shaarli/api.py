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
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Unpack

from rulebot.errors import CredentialsError, ItemDataError
from rulebot.http import Response, Secrets
from rulebot.library.item import Item
from rulebot.sources.client import Gone, ServiceClient, ServiceError, Settings, path_segment
from rulebot.sources.fields import iso_time, kind, seconds, show, text
from rulebot.sources.paging import Bounds

API_SECRET_ENV = "SHAARLI_API_SECRET"
API_PATH = "/api/v1"
SECRET_HELP = "Shaarli shows it under Tools > Configure your Shaarli > REST API secret"
CLOCK_SKEW = 5  # seconds: iat is this far in the past, for a server clock a little behind
# what the tag routes accept: ASCII word characters only (specs/shaarli.md §1);
# whole strings only (fullmatch): `$` would take "js\n" and route it as js%0A
TAG_ROUTE = re.compile(r"[A-Za-z0-9_]+")
_SHORTURL = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_LINK_ID = 2**63 - 1  # PHP's integer, and the store's


class ShaarliError(ServiceError):
    """Shaarli failed, or answered something rulebot cannot use."""


class ShaarliAuthError(ShaarliError, CredentialsError):
    """401: the secret is missing or wrong, the API is off, or the clocks disagree."""


class NotFound(ShaarliError, Gone):
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


class ShaarliClient(ServiceClient):
    """One Shaarli instance. ``base_url`` is the instance root (``/api/v1`` is appended)."""

    service, config, api_path = "Shaarli", "shaarli", API_PATH
    error, not_found = ShaarliError, NotFound

    def __init__(
        self,
        base_url: str,
        secret: str | None,
        *,
        page_size: int = 100,
        secret_env: str = API_SECRET_ENV,
        clock: Callable[[], float] = time.time,
        **settings: Unpack[Settings],
    ) -> None:
        if not secret:
            raise ShaarliAuthError(
                f"Shaarli needs its REST API secret in the environment variable {secret_env}; "
                f"{SECRET_HELP}"
            )
        if page_size < 1:
            raise ShaarliError(f"shaarli page_size is {page_size}; it must be at least 1")
        self.secret_env = secret_env
        self._secret = secret
        self._clock = clock
        super().__init__(
            base_url,
            # the secret and every token signed with it, masked in all their spellings
            secrets=Secrets([secret]),
            page_size=page_size,
            **settings,
        )

    # -- links ------------------------------------------------------------------------
    def iter_links(self, *, bounds: Bounds | None = None) -> Iterator[dict[str, Any]]:
        """Every link (private ones too), newest first, ``offset``/``limit`` pages.

        Offsets shift when links are added or deleted during the scan: a link
        seen twice is yielded once. Shaarli announces no count: ``bounds``
        (what the mirror holds, the config's ``max_items``) and a page with
        nothing new stop a scan that would not end (``rulebot.sources.paging``)."""
        listing = self.listing("GET /links", "links", bounds)
        offset = 0
        while True:
            params = {"offset": str(offset), "limit": str(self.page_size), "visibility": "all"}
            page = self.call("GET", "/links", params=params).data
            if not isinstance(page, list):
                raise ShaarliError(f"GET /links: the answer is {kind(page)}, expected a list")
            last = len(page) < self.page_size
            ids = [_listed_id(raw) for raw in page]
            listing.page(ids, repeat_ends=last)
            yield from listing.once(page, ids)
            if last:
                return
            offset += len(page)

    def get_link(self, link_id: int) -> dict[str, Any]:
        answer = self.call("GET", f"/links/{link_id}", item=True).data
        return self.object(answer, f"GET /links/{link_id}")

    def put_link(self, link_id: int, link: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the link: the five editable fields, all of them (a missing one resets)."""
        body = {key: link[key] for key in ("url", "title", "description", "tags", "private")}
        path = f"/links/{link_id}"
        return self.object(self.call("PUT", path, json=body, item=True).data, f"PUT {path}")

    def delete_link(self, link_id: int) -> None:
        self.call("DELETE", f"/links/{link_id}", item=True, expect_json=False)

    def create_link(self, url: str, title: str, tags: list[str]) -> dict[str, Any]:
        """POST a link; 409 (the URL is saved already) raises ``Conflict`` with that link."""
        body = {"url": url, "title": title, "description": "", "tags": tags}
        return self.object(self.call("POST", "/links", json=body).data, "POST /links")

    # -- tags -------------------------------------------------------------------------
    def rename_tag(self, name: str, new_name: str) -> None:
        """Rename the exact spelling ``name`` in every link (the route takes ``\\w+`` only)."""
        self.call("PUT", f"/tags/{_tag_path(name)}", json={"name": new_name}, item=True)

    def delete_tag(self, name: str) -> None:
        """Remove one exact-case occurrence of ``name`` from every link."""
        self.call("DELETE", f"/tags/{_tag_path(name)}", item=True, expect_json=False)

    def info(self) -> dict[str, Any]:
        """Counters and settings: a cheap credentials check."""
        return self.object(self.call("GET", "/info").data, "GET /info")

    # -- what is Shaarli's own -------------------------------------------------------
    def token(self) -> str:
        """A token signed now, masked from now on like the secret (one per second:
        the same ``iat`` signs the same token, so the set grows with the run's length)."""
        token = make_token(self._secret, self._clock())
        self.secrets.add(token)
        self.secrets.add(token.rsplit(".", 1)[-1])  # the signature alone
        return token

    def reason(self, response: Response) -> str:
        """Shaarli's reason: a bare JSON string (``"Link not found"``), else the text."""
        answer = response.text.strip()
        if answer.startswith('"'):
            try:
                decoded = json.loads(answer)
                answer = decoded if isinstance(decoded, str) else answer
            except ValueError:
                pass
        if "text/html" in response.headers.get("content-type", "") and not answer.startswith("{"):
            answer = answer if len(answer) < 200 and "<" not in answer else ""
        return answer

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> ShaarliError | None:
        """A 401 names the likely causes; a 409 carries the link that has the URL.
        Shaarli's own 404 names what is gone: one with an empty body is a route
        that did not match, so the base URL is not a Shaarli API."""
        if response.status == 401:
            return ShaarliAuthError(
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
            return Conflict(f"{label}: another link already has this URL on Shaarli", existing)
        if response.status == 404 and not (item and detail):
            return ShaarliError(
                f"{label}: {self.origin} answered 404 without a reason; is shaarli.base_url "
                "the root of a Shaarli instance (the address you open in a browser)?",
                status=404,
            )
        return None


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
        raise ItemDataError(f"Shaarli link is {kind(raw)}, expected an object")
    link_id = raw.get("id")
    if not is_link_id(link_id):
        raise ItemDataError(
            f"Shaarli link has id {show(link_id)}, expected a whole number up to 2^63 - 1"
        )
    where = f"Shaarli link {link_id}"
    url = text(raw.get("url"), where, "url")
    title = text(raw.get("title"), where, "title")
    shorturl = raw.get("shorturl")
    if not isinstance(shorturl, str) or not _SHORTURL.fullmatch(shorturl):
        raise ItemDataError(f"{where}: field 'shorturl' is {show(shorturl)}")
    private = raw.get("private")
    if not isinstance(private, bool):
        raise ItemDataError(f"{where}: field 'private' is {show(private)}, expected true/false")
    tags = raw.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ItemDataError(f"{where}: field 'tags' is {kind(tags)}, expected a list of text")
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


def _seconds(value: Any, where: str, name: str) -> int:
    """Shaarli's ``DateTime::ATOM`` (``2026-12-01T09:14:28+00:00``) as unix seconds."""
    parsed = iso_time(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = None
    return seconds(parsed, value, where, name, "a date and time")


def _tag_path(name: str) -> str:
    # the route only matches [A-Za-z0-9_]+; callers check, this keeps the path one segment
    return path_segment(name)


def _json_or_none(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
