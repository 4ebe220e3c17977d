"""A fake Readeck server (the API under /api) that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakeReadeck() as server:
        bookmark_id = server.add_bookmark("https://example.com/a", labels=["js"])
        client = ReadeckClient(server.base_url, server.token)

    python -m rulebot.fake.readeck --port 8000 --seed 200

What it reproduces (``specs/readeck.md``; the server's code where the YAML
differs): ``Authorization: Bearer`` (scheme any case) or Basic with the token
as the password, 401 with ``WWW-Authenticate``; plain-text errors rewritten by
the ``Accept`` header (JSON ``{"status","message"}`` with the generic status
text, bare text, else an HTML page); the list as a bare array, offset paging
with ``Total-Count``/``Total-Pages``/``Current-Page``/``Link`` (``previous``),
``limit`` 0-100 (0 or absent: 50) and **404** above 100 or for a bad number,
order ``created`` desc with no tie-breaker, the list's filters and ``sort``
keys (:mod:`.filters`); a loaded bookmark's ``authors`` ``[]``, ``null``
while a created one loads; ``/api/profile`` with its provider, dates and
settings; ``GET /bookmarks/sync`` unpaginated, ``since`` inclusive to the
whole second, delete records from a trigger table, newest first, 422 for a
bad ``since``; create answers 202 with ``Location``/``Bookmark-Id`` and
never detects a duplicate, the bookmark starting ``loaded: false``; PATCH
answers only the changed fields (+ ``id``, ``href``, ``updated``), metadata
edits included (:mod:`.update`), applies ``labels`` then ``add_labels``
then ``remove_labels`` whatever the JSON order, sorts labels case- and
accent-insensitively and keeps them case-sensitive, 400 form JSON
on bad input; DELETE is immediate (204), ``is_deleted: true`` deletes after
20 s; label info answers an object, a rename merges onto an existing label,
label rename/delete bump ``updated``; ``published``, ``word_count`` and
``reading_time`` are omitted when unknown/0; ETag and 304; no rate limit.

Faults are switchable per call (``inject``): a status on the Nth matching
call, a dropped connection before or after the work, added latency; a
bookmark's fields can be garbled in every answer (``garble``); every
request and its answer is recorded (``exchanges``, ``calls(route)``): the
plumbing of :mod:`rulebot.fake.base`.

The modules: ``model`` (the data, errors and label order), ``protocol``
(Accept-shaped errors, form errors, ETags, parameters), ``library`` (the
bookmarks and deletions on a microsecond clock, as the API shows them),
``filters`` (the list's filters and orders), ``update`` (PATCH's form),
``server`` (the routes and their answers), ``command`` (``seed`` and ``main``).
"""

from __future__ import annotations

from rulebot.fake.base import (
    Exchange,
)
from rulebot.fake.readeck.command import (
    main,
    seed,
)
from rulebot.fake.readeck.model import (
    ReadeckState,
)
from rulebot.fake.readeck.protocol import (
    DEFAULT_PAGE,
    MAX_PAGE,
)
from rulebot.fake.readeck.server import (
    API_PREFIX,
    DEFAULT_TOKEN,
    DELETE_DELAY,
    FAULTS,
    FakeReadeck,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_PAGE",
    "DEFAULT_TOKEN",
    "DELETE_DELAY",
    "FAULTS",
    "MAX_PAGE",
    "Exchange",
    "FakeReadeck",
    "ReadeckState",
    "main",
    "seed",
]
