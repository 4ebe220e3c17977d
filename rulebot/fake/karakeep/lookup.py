"""Finding bookmarks the other ways Karakeep offers: ``GET /bookmarks/check-url``
(is this URL saved?) and ``GET /bookmarks/search`` (full-text), as karakeep.md
§7 and §12 describe them.

``check-url`` normalizes as the server's ``normalizeUrl`` does (WHATWG URL
serialization, the ``#fragment`` dropped, one trailing ``/`` dropped except
on the root), pre-selects stored URLs with ``LIKE '<normalized>%'`` (a
case-insensitive prefix) and keeps the first whose normalized form is equal.

Search runs on a search engine (Meilisearch) the fake does not have: every
word of the query must begin a word of the bookmark's title, crawled title,
URL, note, summary or one of its tag names (case-insensitive); the search
language's qualifiers (``#tag``, ``is:fav`` …) are not modelled, their words
are searched as text; ``relevance`` orders like ``desc`` (no ranking here).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from rulebot.fake.karakeep.model import Bookmark

_DEFAULT_PORTS = {"http": 80, "https": 443}
SEARCH_ORDERS = ("relevance", "asc", "desc")
SEARCH_MODES = ("fts", "semantic", "hybrid")


def normalize_url(url: str) -> str | None:
    """``normalizeUrl`` in ``checkUrl``; None where ``new URL()`` would throw."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or not parts.hostname:
        return None
    netloc = parts.hostname.lower()
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    if parts.username or parts.password:
        credentials = parts.username or ""
        if parts.password:
            credentials += f":{parts.password}"
        netloc = f"{credentials}@{netloc}"
    path = parts.path or "/"
    if path.endswith("/") and path != "/":
        path = path[:-1]
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def check_url(bookmarks: list[Bookmark], url: str) -> tuple[bool, str | None]:
    """(the URL could be read, the id of the bookmark saved under it or None)."""
    wanted = normalize_url(url)
    if wanted is None:
        return False, None
    for bookmark in bookmarks:
        if not bookmark.url.lower().startswith(wanted.lower()):  # the LIKE pre-selection
            continue
        if normalize_url(bookmark.url) == wanted:
            return True, bookmark.id
    return True, None


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def search_matches(bookmark: Bookmark, tag_names: list[str], query: str) -> bool:
    """Every word of ``query`` begins a word of the bookmark's text (a query
    without words matches everything: the engine's placeholder search)."""
    fields = [
        bookmark.title or "",
        bookmark.crawled_title or "",
        bookmark.url,
        bookmark.note or "",
        bookmark.summary or "",
        *tag_names,
    ]
    words = {word for field in fields for word in _words(field)}
    return all(any(w.startswith(q) for w in words) for q in _words(query))
