"""URL normalisation: when two saved URLs are "the same page".

One function, used by the ``duplicate`` condition and by ``explain URL``.
Scheme and leading ``www.`` are ignored, the host is lower-cased, a default
port (80, 443), trailing slashes and the fragment are dropped, tracking
parameters are removed and the remaining ones sorted. The path and real
parameters are kept exactly as written (``/A`` and ``/a`` are different
pages on most servers). The result is a key, not a URL to visit: it has no
scheme. Normalising a key again gives the same key.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

TRACKING = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ref_src"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PORT = re.compile(r"^(.*?):(\d*)$")


def _tracking(pair: str) -> bool:
    name = unquote(pair.partition("=")[0]).strip().lower()
    return name in TRACKING or name.startswith("utm_")


def normalise_url(url: str) -> str:
    """The comparison key of ``url`` (see the module docstring)."""
    rest = url.strip()
    while _SCHEME.match(rest):
        rest = _SCHEME.sub("", rest, count=1)
    try:
        parts = urlsplit("//" + rest)
    except ValueError:  # not a URL (a stray "[" …): compared as written
        return rest
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = hostport.lower(), ""
    matched = _PORT.match(host)
    if matched and not host.endswith("]"):
        host, port = matched.group(1), matched.group(2)
    if port in ("80", "443"):
        port = ""
    while host.startswith("www."):
        host = host[4:]
    path = parts.path.rstrip("/")
    pairs = sorted(p for p in parts.query.split("&") if p and not _tracking(p))
    key = f"{userinfo}{at}{host}{':' + port if port else ''}{path}"
    key += "?" + "&".join(pairs) if pairs else ""
    # what the split left at either end (a space before a dropped `#`) must not
    # survive into the key, or normalising the key would change it again
    stripped = key.strip()
    return stripped if stripped == key else normalise_url(stripped)
