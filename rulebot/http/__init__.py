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

One module per responsibility: ``masking`` (secrets and server text),
``answers`` (the ``Response`` and its header and body readers), ``waiting``
(the retry and rate-limit policy), ``deadline`` (the total deadline below
httpx) and ``client`` (``HttpClient``, the attempts and their errors). This
package is what the service clients import.
"""

from __future__ import annotations

import logging

from rulebot.http.answers import (
    MAX_HEADER_DIGITS,
    Response,
    header_number,
    http_date,
    parse_json,
    retry_after,
)
from rulebot.http.client import (
    MAX_BODY,
    BodyTooLargeError,
    HttpClient,
    HttpError,
    HttpRateLimitError,
    MaybeSentError,
)
from rulebot.http.masking import (
    HIDDEN,
    MAX_DEPTH,
    TOO_DEEP,
    Secrets,
    clean,
    clip,
    describe,
    scrub,
    secret_forms,
)
from rulebot.http.waiting import GARBAGE_RETRIES, MAX_BACKOFF, MAX_RATE_WAITS, RateBudget

# httpcore's debug log prints raw request and response headers (tokens,
# echoed secrets); httpx's info log is redundant with ours. Whatever -v -v
# sets on the root logger, these stay at WARNING.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

__all__ = [
    "GARBAGE_RETRIES",
    "HIDDEN",
    "MAX_BACKOFF",
    "MAX_BODY",
    "MAX_DEPTH",
    "MAX_HEADER_DIGITS",
    "MAX_RATE_WAITS",
    "TOO_DEEP",
    "BodyTooLargeError",
    "HttpClient",
    "HttpError",
    "HttpRateLimitError",
    "MaybeSentError",
    "RateBudget",
    "Response",
    "Secrets",
    "clean",
    "clip",
    "describe",
    "header_number",
    "http_date",
    "parse_json",
    "retry_after",
    "scrub",
    "secret_forms",
]
