"""A fake Raindrop.io server (REST API v1) that behaves like the real one, quirks included.

Stdlib only, so tests and users can run it anywhere::

    with FakeRaindrop() as server:
        raindrop_id = server.add_raindrop("https://example.com/a", tags=["js"])

    python -m rulebot.fake.raindrop --port 8070 --seed 200

What it reproduces (``specs/raindrop.md``, the recorded traffic where it and
the docs differ): ``Authorization: Bearer`` with a plain-text 401
``Unauthorized``; an unknown route is Express's HTML 404; every success is
200 with ``result: true``, errors ``{"result": false, "status"|"error",
"errorMessage"}``; ``x-ratelimit-*`` headers on every answer and, when
``rate_limit`` is set, a 429 with ``Retry-After`` only; lists paged by
zero-based ``page`` and ``perpage`` (at most 50) with ``count`` and
``collectionId``, sorted by ``-created`` (default), ``-lastUpdate`` (used,
undocumented) …; ``important`` left out of list items when false; integer
``_id``, ``collection`` as ``{"$ref","$id","oid"}`` plus a flat
``collectionId``; ``creatorRef`` a bare id in create answers; dates with
milliseconds; create never deduplicates a link, puts it in Unsorted
(``-1``) without a ``collection`` object and titles it with the link; the
first DELETE moves to Trash (``-99``, ``removed: true``, ``lastUpdate``
bumped), a second one deletes for good; the bulk ``PUT /raindrops/{cid}``
appends tags (``[]`` clears), sets ``important``, moves, and answers
``modified`` (the raindrops it matched in that collection); the bulk DELETE
trashes, or deletes for good in ``-99``; tags keep each raindrop's case,
``GET /tags`` groups case variants; ``PUT /tags`` renames or merges and
``DELETE /tags`` removes, by exact name, bumping ``lastUpdate``
(both unconfirmed on the real service: ``bump_on_tag_edits = False`` serves
the other reading); ``POST /import/url/exists``.
Not modelled: highlights, covers, files, sharing, OAuth, the search
language beyond dates, ``#tag``, ``❤️`` and words.

Faults and records are :mod:`rulebot.fake.base`'s. The modules: ``model``
(the data and the errors), ``library`` (the state, as the API shows it),
``server`` (the routes), ``command`` (``seed`` and ``main``).
"""

from rulebot.fake.raindrop.command import main, seed
from rulebot.fake.raindrop.model import ALL, TRASH, UNSORTED
from rulebot.fake.raindrop.server import API_PREFIX, DEFAULT_TOKEN, FAULTS, FakeRaindrop

__all__ = [
    "ALL",
    "API_PREFIX",
    "DEFAULT_TOKEN",
    "FAULTS",
    "TRASH",
    "UNSORTED",
    "FakeRaindrop",
    "main",
    "seed",
]
