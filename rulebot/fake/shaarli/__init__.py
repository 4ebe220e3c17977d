"""A fake Shaarli server (REST API v1) that behaves like the real one, quirks included.

Stdlib only, so tests and users without PHP can run it anywhere::

    with FakeShaarli() as server:
        link_id = server.add_link("https://example.com/a", tags=["js"])
        client = ShaarliClient(server.base_url, server.secret)

    python -m rulebot.fake.shaarli --port 8090 --seed 200

What it reproduces (``specs/shaarli.md``, Debian's Shaarli 0.12.1, and held
to that server by ``tests/test_shaarli_fake_vs_real.py``): JWT HS512 auth
(the signature alone checked, ``iat`` not in the future nor older than
540 s, every failure a 401 ``"Not authorized"``); error bodies as bare JSON
strings, a route that does not match (a non-digit id, a tag outside
``[A-Za-z0-9_]+``) an empty HTML 404 before auth, a wrong method a 405;
``/links`` with ``offset``/``limit`` (``0`` or empty means 20, ``all``),
``visibility``, ``searchtags``/``searchterm``; ids from 0, reused; the
``shorturl`` hash; ATOM dates and ``updated: ""``; URL clean-up (tracking
parameters, schemes other than lower-case http/https); tag clean-up (trimmed,
one leading ``-`` stripped, order and duplicates kept); 409 with the
existing link on a duplicate URL; PUT replacing every field; the tag list
merging case variants by ASCII ``strtolower`` (and PHP's integer keys for
numeric tags); tag rename/delete touching the exact spelling's first copy;
``/history`` newest first with its ``since``/``offset``/``limit`` rules;
a PHP error (``tags`` as a string) as 200 with an HTML page, nothing saved.
What it does not do is in docs/shaarli.md.

Faults are switchable per call (``inject``, ``garble``, ``clear_faults``);
every request and its answer is recorded (``exchanges``, ``calls(route)``):
the plumbing of :mod:`rulebot.fake.base`.

The modules: ``model`` (the data and PHP's ways with it), ``search`` (the
link filters), ``library`` (the links, tags and history, as the API shows
them), ``server`` (the routes, auth and answers), ``command`` (``seed`` and
``main``).
"""

from rulebot.fake.base import (
    Exchange,
)
from rulebot.fake.shaarli.command import (
    main,
    seed,
)
from rulebot.fake.shaarli.server import (
    API_PREFIX,
    DEFAULT_SECRET,
    FAULTS,
    TOKEN_DURATION,
    FakeShaarli,
)

__all__ = [
    "API_PREFIX",
    "DEFAULT_SECRET",
    "FAULTS",
    "TOKEN_DURATION",
    "Exchange",
    "FakeShaarli",
    "main",
    "seed",
]
