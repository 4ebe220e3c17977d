"""Shared fixtures: a fake Pocket server on 127.0.0.1 with distinctive credentials."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from rulebot.fakepocket import FakePocket
from tests.helpers import clear_rulebot_env
from tests.isolation import root_logging_as_it_was  # noqa: F401 (autouse fixture)
from tests.linkding_server import Account, LinkdingServer, require_server
from tests.strict_skips import (  # noqa: F401 (hooks)
    pytest_make_collect_report,
    pytest_runtest_makereport,
)

pytest_plugins = ["pytester"]  # tests/test_ci.py runs a session of its own

# Property tests are derandomized by default, so the suite that gates a
# landing is repeatable; HYPOTHESIS_PROFILE=explore searches afresh each run;
# HYPOTHESIS_PROFILE=thorough searches afresh with ten times the examples
# (tests/helpers.py: examples(); docs/testing.md, "Property tests").
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Rules files the schema passed are remembered between runs (rulebot.rules.validated):
# in a directory of this session's own, never the developer's ~/.cache; the CLI
# tests' subprocesses inherit it.
os.environ["RULEBOT_CACHE_DIR"] = tempfile.mkdtemp(prefix="rulebot-validated-")
atexit.register(shutil.rmtree, os.environ["RULEBOT_CACHE_DIR"], ignore_errors=True)


# Tests Ctrl-C the processes they start (a run, a demo, a fake server). A shell
# starts a background job (`pytest &`, `nohup pytest &`) with SIGINT ignored,
# and a child inherits that: it would never hear the test's Ctrl-C. Handling
# SIGINT here as Python does by default gives each child the default again.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# -- parallel workers (pytest-xdist: ``-n auto`` in pyproject's addopts) -----------------------


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Two workers per CPU (at most 8): much of the suite waits (on sockets, the
    servers' answers, subprocesses, timeouts) rather than computes, so a second
    worker per core fills those waits. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` or
    ``-n N`` choose otherwise; ``-n 0`` runs in this one process."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return min(8, 2 * len(os.sched_getaffinity(0)))


# Distinctive on purpose: tests grep outputs and files for them.
CONSUMER_KEY = "ck-SECRET-1234"
ACCESS_TOKEN = "at-SECRET-5678"


def use_fake_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work in tmp_path with only the fake server's credentials in the env."""
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("POCKET_CONSUMER_KEY", CONSUMER_KEY)
    monkeypatch.setenv("POCKET_ACCESS_TOKEN", ACCESS_TOKEN)


@pytest.fixture
def fake_pocket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePocket]:
    """A running FakePocket; the env holds its credentials, the cwd is tmp_path."""
    use_fake_credentials(tmp_path, monkeypatch)
    with FakePocket(consumer_key=CONSUMER_KEY, access_token=ACCESS_TOKEN) as server:
        yield server


@pytest.fixture(scope="session")
def linkding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkdingServer]:
    """One real Linkding for the session (tests/linkding_server.py), so one per
    pytest-xdist worker, each on a port of its own: skipped where the server
    package is absent, failed instead with RULEBOT_REAL_SERVERS=1. (Not one for
    all workers: tests count the requests a server's log holds.)"""
    require_server()
    with LinkdingServer(tmp_path_factory.mktemp("linkding") / "server") as server:
        yield server


@pytest.fixture
def linkding(
    linkding_server: LinkdingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Account:
    """A fresh account (its own library) on the session's real Linkding; the env
    holds its token as LINKDING_TOKEN, the cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    account = linkding_server.account()
    monkeypatch.setenv("LINKDING_TOKEN", account.token)
    return account
