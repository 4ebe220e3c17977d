"""A fake Linkding server (its REST API under /api) that behaves like linkding
1.44.1, quirks included: the checklist of ``specs/linkding.md`` §13.

Stdlib only, so tests and users can run it anywhere::

    with FakeLinkding() as server:
        bookmark_id = server.add_bookmark("https://example.com/a", tags=["js"])
        client = LinkdingClient(server.base_url, server.token)

    python -m rulebot.fake.linkding --port 9090 --seed 200

What it reproduces: ``Authorization: Token`` or ``Bearer`` (any case); a 401
is JSON ``{"detail": …}`` with ``WWW-Authenticate: Token``, its text in
English or German after ``Accept-Language``; every path ends in ``/`` (else
301 to it), an unknown one is an HTML 404, a known one with another method a
405 with ``Allow``; two lists split by ``is_archived``, ``limit``/``offset``
(default 100, no maximum, a bad value the default) with ``count`` and
absolute ``next``/``previous`` from the Host; ``sort`` (``added_asc`` …),
``modified_since``/``added_since`` strict at microseconds and silently
dropped when unparsable (an unencoded ``+``), ``unread``/``shared`` filters
that only know ``yes``/``no``, the ``q`` search language (``search``); a
create of a URL saved already (as ``normalize_url`` compares) answers 201
after overwriting that bookmark's title, description, notes, flags and tags
(absent: emptied) and keeping its archive state and URL; PUT and PATCH both
partial (PUT needs ``url``), ``tag_names`` replacing the set, a URL equal to
another bookmark's refused; archive, unarchive and DELETE answer 204;
``tag_names`` sanitised (trimmed, inner spaces to ``-``, commas split,
duplicates dropped) and matched case-insensitively, keeping an existing tag's
first spelling; ``/api/tags/`` lists every tag, POST creates one unsanitised,
and there is no tag update or delete (405); dates ISO 8601 with microseconds
and ``Z``, ``date_added`` not writable; ``check``, the profile, the shared
list (empty: sharing is off). No rate limit, no deletion feed.

Tag and search case-folding is Unicode (``str.lower``): the Docker image's
SQLite with ICU. The test server in shared/servers/linkding folds ASCII only.

For tests, besides the API: ``add_bookmark`` (with an old ``added``, as an
import has), ``touch``, ``remove``, and the web UI's ``rename_tag`` and
``delete_tag``, which change no bookmark's ``date_modified``. Faults,
``garble`` and the record of every exchange are :mod:`rulebot.fake.base`'s.

The modules: ``model`` (the data, URL normalisation, tag sanitising, the
serializer), ``search`` (``q``), ``library`` (the state and other clients'
edits), ``server`` (the routes), ``command`` (``seed`` and ``main``).
"""

from __future__ import annotations

from rulebot.fake.base import Exchange
from rulebot.fake.linkding.command import main, seed
from rulebot.fake.linkding.model import normalize_url
from rulebot.fake.linkding.server import API_PREFIX, DEFAULT_TOKEN, FAULTS, PAGE_SIZE, FakeLinkding

__all__ = [
    "API_PREFIX",
    "DEFAULT_TOKEN",
    "FAULTS",
    "PAGE_SIZE",
    "Exchange",
    "FakeLinkding",
    "main",
    "normalize_url",
    "seed",
]
