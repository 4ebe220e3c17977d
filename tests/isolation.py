"""What one test leaves behind for the next one in the same worker.

Tests run the CLI in-process (``tests.helpers.rb``), and ``main`` sets the
root logger up for its process: a level (ERROR for ``-q``) and a handler on
that call's stderr. ``root_logging_as_it_was`` puts both back after each
test. Without it a later test in the same worker logs into a closed capture
and its ``caplog`` misses every warning: a ``-q`` run left the root logger
at ERROR, and two Readeck tests that expect a warning failed whenever they
ran after it on the same worker.

tests/conftest.py takes this fixture; tests/test_isolation.py runs it on two
tests in that order, and without it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def root_logging_as_it_was() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in list(root.handlers):
        # pytest's own capture handlers come and go with each phase
        if handler not in handlers and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
