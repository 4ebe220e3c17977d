"""The Wallabag v2 API client (OAuth2 password grant), and how an entry becomes an ``Item``.

Facts from ``specs/wallabag.md`` that shape it:

- tokens come from ``/oauth/v2/token`` (password grant with the four
  ``WALLABAG_*`` variables); they live in this object only, never in the
  store, a file, a URL or a log line, and are masked in every message;
- an access token lasts an hour by default: it is renewed a little ahead of
  ``expires_in``, and a 401 from ``/api`` renews it once (refresh grant, else
  a new password grant) and retries; a second 401 with a fresh token, or a
  400 ``invalid_grant``/``invalid_client`` from the token endpoint, is a
  ``CredentialsError`` naming the variables (never retried in a loop);
- the entry list is HAL-paged (``page``/``pages``/``_embedded.items``);
  paging stops at ``page == pages`` (one past the end is a 404);
- every success is 200; a 404 on one entry means it is gone (moot);
- dates are ``2016-04-05T09:07:54+0200`` in the server's own time zone;
- bulk endpoints take their payload as JSON in the query string.

One ``WallabagClient`` may be shared by worker threads: each thread gets its
own connection, the token is shared under a lock.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Unpack
from urllib.parse import urlencode

from rulebot.errors import CredentialsError, ItemDataError
from rulebot.http import HttpClient, Response, Secrets, http_date
from rulebot.library.item import ARCHIVED, UNREAD, Item, checked_count
from rulebot.sources.client import Gone, ServiceClient, ServiceError, Settings, path_segment
from rulebot.sources.fields import iso_time, kind, named_tags, optional_text, seconds, show
from rulebot.sources.paging import Bounds

logger = logging.getLogger("rulebot.wallabag")

API_PATH = "/api"
TOKEN_PATH = "/oauth/v2/token"
ENV = {
    "client_id_env": "WALLABAG_CLIENT_ID",
    "client_secret_env": "WALLABAG_CLIENT_SECRET",
    "username_env": "WALLABAG_USERNAME",
    "password_env": "WALLABAG_PASSWORD",
}
MAX_ID = 2**63 - 1  # Doctrine's bigint, and the store's: a larger id is no entry's
MASS_ACTION_LIMIT = 10  # wallabag.api_limit_mass_actions
EARLY_RENEWAL = 30  # seconds before expires_in that a token is renewed
DEFAULT_LIFETIME = 3600  # seconds: Wallabag's access token lifetime out of the box
MAX_LIFETIME = 366 * 86400  # a longer expires_in is nonsense: read as the default
CLIENT_HELP = "create an API client in Wallabag under Developer -> Create a new client"


class WallabagError(ServiceError):
    """Wallabag failed, or answered something rulebot cannot use."""


class WallabagAuthError(WallabagError, CredentialsError):
    """The client or the user's credentials were refused (or are missing)."""


class NotFound(WallabagError, Gone):
    """404 on one entry or tag: it is gone, so the action is moot."""


class WallabagClient(ServiceClient):
    """One Wallabag instance. ``base_url`` is the instance root (``/api`` is appended)."""

    service, config, api_path = "Wallabag", "wallabag", API_PATH
    error, not_found = WallabagError, NotFound

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str | None],
        *,
        env: Mapping[str, str] | None = None,
        page_size: int = 500,
        clock: Callable[[], float] = time.monotonic,
        **settings: Unpack[Settings],
    ) -> None:
        self.env = {**ENV, **(env or {})}
        missing = [self.env[key] for key in ENV if not credentials.get(key)]
        if missing:
            raise WallabagAuthError(
                f"Wallabag needs {', '.join(missing)} in the environment "
                f"({self._variables()}); {CLIENT_HELP}"
            )
        self._credentials = {key: str(credentials[key]) for key in ENV}
        self._clock = clock
        self._token_lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self.token_requests = 0
        # `total` on the first and on the last page of the last listing
        self.first_total: int | None = None
        self.last_total: int | None = None
        # the server's clock (its Date header, UTC) when the last listing began
        self.listed_at: int | None = None
        super().__init__(
            base_url,
            # the credentials and every token issued, masked in every spelling
            secrets=Secrets(self._credentials.values()),
            page_size=page_size,
            **settings,
        )

    def close(self) -> None:
        super().close()
        self._access = self._refresh = None  # tokens die with the session

    @property
    def requests_made(self) -> int:
        """HTTP attempts so far (token requests and retries included), over every thread."""
        return super().requests_made

    # -- entries ---------------------------------------------------------------------------
    def iter_entries(
        self, *, since: int | None = None, bounds: Bounds | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entry (raw dicts, metadata only), oldest change first with ``since``,
        else by id; one ``GET /entries.json`` per page, pages 1..``pages``. The
        listing is stopped (``rulebot.sources.paging``) past the ``total`` the first
        page announced, past ``bounds``, or at a page with nothing new (a page
        repeated, or empty before ``pages``)."""
        listing = self.listing("GET /api/entries.json", "entries", bounds)
        params = {
            "sort": "updated" if since else "created",
            "order": "asc",
            "detail": "metadata",
            "perPage": str(self.page_size),
        }
        if since:
            params["since"] = str(since)
        page, pages = 1, 1
        self.listed_at = None
        while page <= pages:
            response = self._call(
                "GET", "/entries.json", params={**params, "page": str(page)}, raw=True
            )
            if page == 1:
                date = response.headers.get("date")
                self.listed_at = http_date(date)
                if self.listed_at is None and date:
                    logger.warning(
                        "GET /api/entries.json: Wallabag's Date header %r is not a date; the "
                        "sync cursor comes from the entries it listed instead",
                        self._http().clean(date, 60),
                    )
            answer = self.object(response.data, "GET /api/entries.json")
            items, pages = _page(answer, page)
            total = answer.get("total")
            self.last_total = total if isinstance(total, int) else None
            if page == 1:
                self.first_total = self.last_total
                listing.announce(self.last_total)
            if items or page > 1:  # an empty library is one empty page
                # the last page may hold only repeats: entries shifted by a change meanwhile
                listing.page((_listed_id(raw) for raw in items), repeat_ends=page >= pages)
            yield from items
            page += 1

    def create_entry(self, url: str, *, title: str | None = None, tags: Sequence[str] = ()) -> Any:
        """POST an entry (200 for a new and for an existing one: a re-post merges tags)."""
        form = {"url": url}
        if title:
            form["title"] = title
        if tags:
            form["tags"] = ",".join(tags)
        return self._call("POST", "/entries.json", form=form)

    def update_entry(
        self, entry_id: str, *, archive: bool | None = None, starred: bool | None = None
    ) -> Any:
        form = {
            key: "1" if value else "0"
            for key, value in (("archive", archive), ("starred", starred))
            if value is not None
        }
        return self._call("PATCH", f"/entries/{path_segment(entry_id)}.json", form=form, item=True)

    def delete_entry(self, entry_id: str) -> None:
        """A hard delete; a second one is a 404 (``NotFound``)."""
        path = f"/entries/{path_segment(entry_id)}.json"
        self._call("DELETE", path, params={"expect": "id"}, item=True)

    def add_tags(self, entry_id: str, labels: Sequence[str]) -> Any:
        """Add tags (lower-cased and created by the server); the entry afterwards."""
        path = f"/entries/{path_segment(entry_id)}/tags.json"
        return self._call("POST", path, form={"tags": ",".join(labels)}, item=True)

    def remove_tag(self, entry_id: str, tag_id: int) -> Any:
        """Remove one tag (by its global numeric id); the entry afterwards."""
        path = f"/entries/{path_segment(entry_id)}/tags/{int(tag_id)}.json"
        return self._call("DELETE", path, item=True)

    def bulk_add_tags(self, changes: Sequence[tuple[str, Sequence[str]]]) -> list[Any]:
        """Add tags to several entries by URL in one request (at most the mass-action
        limit per request); ``[{"url", "entry": id | false}]``."""
        listed = [{"url": url, "tags": ",".join(tags)} for url, tags in changes]
        answer = self._call("POST", "/entries/tags/lists.json", params={"list": json.dumps(listed)})
        if not isinstance(answer, list):
            raise WallabagError("POST /api/entries/tags/lists.json: the answer is not a list")
        return answer

    # -- tags -------------------------------------------------------------------------------
    def list_tags(self) -> list[dict[str, Any]]:
        """This user's tags ``{id, label, slug, nbEntries}``."""
        answer = self._call("GET", "/tags.json")
        if not isinstance(answer, list) or not all(_is_tag(t) for t in answer):
            raise WallabagError(f"GET /api/tags.json: {self.origin} answered an unreadable list")
        return answer

    def delete_tag_label(self, label: str) -> None:
        """Remove a tag from every entry of this user; unknown is ``NotFound``."""
        self._call("DELETE", "/tag/label.json", params={"tag": label}, item=True)

    # -- OAuth --------------------------------------------------------------------------------
    def token(self) -> str:
        """A valid access token: the current one, renewed shortly before it expires."""
        with self._token_lock:
            if self._access is None or self._clock() >= self._expires_at:
                self._renew(None)
            assert self._access is not None
            return self._access

    def _renewed(self, stale: str) -> str:
        """After a 401 with ``stale``: a new token (another thread may have made one)."""
        with self._token_lock:
            if self._access == stale or self._access is None:
                self._renew(stale)
            assert self._access is not None
            return self._access

    def _renew(self, stale: str | None) -> None:
        """Refresh grant when a refresh token is held, else (or when it is refused)
        the password grant. Called with the token lock held."""
        if self._refresh is not None:
            answer = self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
            if answer is not None:
                return
        answer = self._grant(
            {
                "grant_type": "password",
                "username": self._credentials["username_env"],
                "password": self._credentials["password_env"],
            }
        )
        if answer is None:  # a password grant refused: named in _grant
            raise AssertionError("unreachable")

    def _grant(self, fields: dict[str, str]) -> dict[str, Any] | None:
        """One token request; None when a refresh token was refused (use the password)."""
        form = {
            "client_id": self._credentials["client_id_env"],
            "client_secret": self._credentials["client_secret_env"],
            **fields,
        }
        http = self._http()
        self.token_requests += 1
        response = http.request(
            "POST",
            TOKEN_PATH,
            content=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            label="POST /oauth/v2/token",
        )
        code, text = _oauth_error(response, http)
        refreshing = fields["grant_type"] == "refresh_token"
        if response.status == 200:
            answer = _token_answer(response)
            if answer is None:
                raise WallabagError(
                    f"POST /oauth/v2/token: {self.origin} answered 200 without a usable token; "
                    "is wallabag.base_url the root of a Wallabag instance?"
                )
            self._access, self._refresh = answer["access_token"], answer.get("refresh_token")
            for token in (self._access, self._refresh):
                if token:
                    self.secrets.add(token)
            lifetime = token_lifetime(answer["expires_in"])
            # renewed a little early (never more than a quarter of its life early)
            self._expires_at = self._clock() + lifetime - min(EARLY_RENEWAL, lifetime / 4)
            return answer
        if refreshing and response.status == 400:
            self._refresh = None  # expired or rotated away: fall back to the password
            return None
        if response.status == 400 and code == "invalid_grant":
            raise WallabagAuthError(
                f"Wallabag at {self.origin} refused the user name or password in "
                f"{self.env['username_env']}/{self.env['password_env']} ({text}); "
                "the user name may also be the account's e-mail address",
                status=400,
                detail=text,
            )
        if response.status == 400 and code in ("invalid_client", "unauthorized_client"):
            raise WallabagAuthError(
                f"Wallabag at {self.origin} refused the API client in "
                f"{self.env['client_id_env']}/{self.env['client_secret_env']} ({text}); "
                f"{CLIENT_HELP} and copy its client ID and secret",
                status=400,
                detail=text,
            )
        if response.status == 404:
            raise WallabagError(
                f"POST /oauth/v2/token: {self.origin} answered 404; is wallabag.base_url the "
                "root of a Wallabag instance (the address you open in a browser)?",
                status=404,
            )
        raise WallabagError(
            f"POST /oauth/v2/token: Wallabag refused it ({response.status} "
            f"{text or 'without a reason'})",
            status=response.status,
            detail=text,
        )

    def _variables(self) -> str:
        return ", ".join(self.env[key] for key in ENV)

    # -- plumbing -------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        item: bool = False,
        raw: bool = False,
    ) -> Any:
        """One API call with the token; a 401 renews the token once and retries.
        The answer's JSON, or with ``raw`` the whole 200 response."""
        label = f"{method} {API_PATH}{path}"
        token = self.token()
        response = self._send(method, path, token, params, form, label)
        if response.status == 401:
            token = self._renewed(token)
            response = self._send(method, path, token, params, form, label)
            if response.status == 401:
                code, text = _oauth_error(response, self._http())
                raise WallabagAuthError(
                    f"{label}: Wallabag at {self.origin} refused a token it had just issued "
                    f"(401 {text or code or 'Unauthorized'}); check the API client and user "
                    f"in {self._variables()}",
                    status=401,
                    detail=text,
                )
        if response.status == 200:
            return response if raw else response.data
        raise self.refusal(response, label, item=item)

    def reason(self, response: Response) -> str:
        """FOSRest's ``{"code", "message"}`` or an OAuth body, else the text."""
        try:
            answer = response.json()
        except ValueError:
            return response.text.strip()
        if isinstance(answer, dict):
            for key in ("message", "error_description", "error"):
                if isinstance(answer.get(key), str):
                    return str(answer[key])
        return response.text.strip()

    def refused(
        self, response: Response, label: str, detail: str, *, item: bool
    ) -> WallabagError | None:
        if response.status == 403 and item:
            # another user's entry is a 404 (a 403 on 2.6): gone for us either way
            return NotFound(f"{label}: not found on {self.origin} ({detail})", status=404)
        return None

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        form: Mapping[str, str] | None,
        label: str,
    ) -> Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        content = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(form).encode()
        return self.request(
            method, path, label=label, params=params, headers=headers, content=content
        )


# -- from an entry to an Item -------------------------------------------------------------------


def entry_to_item(raw: Any) -> Item:
    """One entry as rulebot sees it.

    ``is_archived``/``is_starred`` (0/1) -> status and favorite,
    ``archived_at``/``starred_at`` -> ``time_read``/``time_favorited``, tags
    by label, ``created_at``/``updated_at`` -> added/updated, ``reading_time``
    (minutes) -> ``time_to_read``, ``language`` -> ``lang``, ``given_url`` and
    ``url`` (after redirects). Wallabag has no word count and does not say
    what an entry is: those stay unknown. Wrong types, a number past 2^63-1 and
    a time outside 1900-2999 are an ``ItemDataError`` naming the entry and the field.
    """
    if not isinstance(raw, Mapping):
        raise ItemDataError(f"Wallabag entry is {kind(raw)}, expected an object")
    entry_id = raw.get("id")
    if not _is_id(entry_id):
        raise ItemDataError(
            f"Wallabag entry has id {show(entry_id)}, expected a number from 1 to 2^63 - 1"
        )
    where = f"Wallabag entry {entry_id}"
    url = optional_text(raw.get("url"), where, "url") or ""
    given = optional_text(raw.get("given_url"), where, "given_url") or url
    reading = raw.get("reading_time")
    if reading is not None and (isinstance(reading, bool) or not isinstance(reading, int)):
        raise ItemDataError(f"{where}: field 'reading_time' is {show(reading)}, expected minutes")
    if reading is not None:
        checked_count(reading, where, "reading_time")
    language = optional_text(raw.get("language"), where, "language")
    domain = optional_text(raw.get("domain_name"), where, "domain_name")
    return Item(
        item_id=str(entry_id),
        given_url=given,
        resolved_url=url if url != given else "",
        given_title=optional_text(raw.get("title"), where, "title") or "",
        status=ARCHIVED if _int_flag(raw.get("is_archived"), where, "is_archived") else UNREAD,
        favorite=_int_flag(raw.get("is_starred"), where, "is_starred"),
        tags=named_tags(raw.get("tags"), where, "label"),
        time_added=_seconds(raw.get("created_at"), where, "created_at"),
        time_updated=_seconds(raw.get("updated_at"), where, "updated_at", nullable=True),
        time_read=_seconds(raw.get("archived_at"), where, "archived_at", nullable=True),
        time_favorited=_seconds(raw.get("starred_at"), where, "starred_at", nullable=True),
        word_count=None,
        time_to_read=reading if reading else None,  # 0 is "not computed", not "instant"
        lang=language or None,
        is_article=None,
        has_image=None,
        has_video=None,
        extra={"domain_name": domain} if domain else {},
    )


def _int_flag(value: Any, where: str, name: str) -> bool:
    # 0/1 integers; JSON booleans are accepted too (older serializers)
    if value in (0, 1) and isinstance(value, (int, bool)):
        return bool(value)
    raise ItemDataError(f"{where}: field {name!r} is {show(value)}, expected 0 or 1")


def _seconds(value: Any, where: str, name: str, *, nullable: bool = False) -> int | None:
    """``2016-04-05T09:07:54+0200`` (server-local, with its offset) as unix seconds."""
    if value is None and nullable:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            parsed = iso_time(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = None
    return seconds(parsed, value, where, name, "a date like 2016-04-05T09:07:54+0200")


# -- helpers -----------------------------------------------------------------------------------


def _page(answer: Mapping[str, Any], page: int) -> tuple[list[Any], int]:
    embedded = answer.get("_embedded")
    items = embedded.get("items") if isinstance(embedded, Mapping) else None
    pages = answer.get("pages")
    if not isinstance(items, list) or isinstance(pages, bool) or not isinstance(pages, int):
        raise WallabagError(f"GET /api/entries.json page {page}: the answer is not a page")
    if pages > 1_000_000:
        raise WallabagError(f"GET /api/entries.json: the server claims {pages} pages")
    return items, pages


def _listed_id(raw: Any) -> str | None:
    """A listed entry's id when it is one rulebot can read (paging progress)."""
    entry_id = raw.get("id") if isinstance(raw, Mapping) else None
    if isinstance(entry_id, bool) or not isinstance(entry_id, int) or entry_id < 1:
        return None
    return str(entry_id)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _is_tag(tag: Any) -> bool:
    return isinstance(tag, Mapping) and _is_id(tag.get("id")) and isinstance(tag.get("label"), str)


def token_lifetime(value: Any) -> float:
    """``expires_in`` in seconds. One that is no sane lifetime (not a number,
    0 or less, NaN, infinite, above a year: ``1e400``) counts as Wallabag's
    default hour; a token the server kills sooner is renewed on its 401."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DEFAULT_LIFETIME
    if isinstance(value, float) and not math.isfinite(value):
        return DEFAULT_LIFETIME
    return float(value) if 0 < value <= MAX_LIFETIME else DEFAULT_LIFETIME


def _token_answer(response: Response) -> dict[str, Any] | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    access, expires = answer.get("access_token"), answer.get("expires_in")
    refresh = answer.get("refresh_token")
    if not isinstance(access, str) or not access or not isinstance(expires, (int, float)):
        return None
    if refresh is not None and not isinstance(refresh, str):
        return None
    return answer


def _oauth_error(response: Response, http: HttpClient) -> tuple[str, str]:
    """(error code, description) of an OAuth error body; masked and clipped."""
    try:
        answer = response.json()
    except ValueError:
        return "", http.clean(response.text.strip(), 160)
    if isinstance(answer, dict):
        code = answer.get("error")
        text = answer.get("error_description") or code or ""
        return (str(code) if isinstance(code, str) else ""), http.clean(str(text), 160)
    return "", ""
