"""A fake Readwise Reader (API v3) that behaves like the real one, as far as it is known.

Stdlib only::

    with FakeReadwise(rate_limits=None) as server:
        doc_id = server.add_document("https://example.com/a", tags=["js"], location="later")
        client = ReadwiseClient(server.base_url, server.token)

    python -m rulebot.fake.readwise --port 8020 --seed 200

What it reproduces (``specs/readwise-reader.md``): ``Authorization: Token``
(401 ``{"detail": "Invalid token."}`` otherwise) and ``GET /api/v2/auth/``
-> 204; trailing-slash paths (the docs' samples without the slash work too);
``GET /list/`` with ``id``, ``updatedAfter`` (strict, an offset-less time
read as UTC), ``location``, ``category``, up to five ``tag`` keys (all must
match; an empty one: untagged), ``limit`` 1-100 and an opaque
``pageCursor``; ``{count, nextPageCursor, results}``; documents whose
``url`` is the Reader link and ``source_url`` the page, ``tags`` a
key -> ``{name, type, created}`` map, ISO times with microseconds, a string
``reading_time``; highlights as documents with a ``parent_id``; ``feed``
items in the same list; SAVE 201 new / 200 existing by ``url`` with
``{id, url}`` only (an unknown location falls back to ``new``);
UPDATE partial, ``tags`` replacing the set, ``seen`` setting the opened
dates, ``shortlist`` refused, ``{id, url}`` answered; BULK UPDATE of at most
50; DELETE 204, a hard delete with no tombstone; the tag list; and the rate
limits, 20 a minute (50 for save and update) per token, 429 with
``Retry-After`` and the throttled ``detail``.

Where the spec marks a fact unconfirmed (error bodies, the bulk answer, tag
key derivation: lower-cased here, list order: newest first here), the fake
picks the likely shape and rulebot's client does not depend on it.
"""

from rulebot.fake.base import Exchange
from rulebot.fake.readwise.command import main, seed
from rulebot.fake.readwise.model import Document, tag_key
from rulebot.fake.readwise.server import (
    API_PREFIX,
    DEFAULT_TOKEN,
    FAULTS,
    MAX_BULK,
    MAX_PAGE,
    RATE_LIMITS,
    FakeReadwise,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_TOKEN",
    "FAULTS",
    "MAX_BULK",
    "MAX_PAGE",
    "RATE_LIMITS",
    "Document",
    "Exchange",
    "FakeReadwise",
    "main",
    "seed",
    "tag_key",
]
