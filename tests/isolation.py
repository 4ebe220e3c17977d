"""What one test leaves behind for the next one in the same worker.

Tests run the CLI in-process (``tests.helpers.rb``), and ``main`` sets the
root logger up for its process: a level (ERROR for ``-q``) and a handler on
that call's stderr. ``root_logging_as_it_was`` puts both back after each
test, and before each one: a fixture of a wider scope, set up first, may
have run the CLI too (``tests/test_fuzz.py``'s ``library``). Without it a
later test in the same worker logs into a closed capture and its
``caplog`` misses every warning: a ``-q`` run left the root logger at
ERROR, and three tests that expect a warning (two Readeck, one Linkding)
failed whenever they ran after it on the same worker.

tests/conftest.py takes this fixture; tests/test_isolation.py runs it on such
tests in that order, and without it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

_ROOT = logging.getLogger()
# as the session began (conftest imports this module before any test runs)
_LEVEL, _HANDLERS = _ROOT.level, tuple(_ROOT.handlers)


def _as_the_session_began() -> None:
    _ROOT.setLevel(_LEVEL)
    for handler in list(_ROOT.handlers):
        # pytest's own capture handlers come and go with each phase
        if handler not in _HANDLERS and not type(handler).__module__.startswith("_pytest"):
            _ROOT.removeHandler(handler)


@pytest.fixture(autouse=True)
def root_logging_as_it_was() -> Iterator[None]:
    _as_the_session_began()  # a module- or session-scoped fixture may have run the CLI
    yield
    _as_the_session_began()
