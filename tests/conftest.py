"""Shared fixtures: a fake Pocket server on 127.0.0.1 with distinctive credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rulebot.fakepocket import FakePocket
from tests.helpers import clear_rulebot_env

# Distinctive on purpose: tests grep outputs and files for them.
CONSUMER_KEY = "ck-SECRET-1234"
ACCESS_TOKEN = "at-SECRET-5678"


@pytest.fixture
def fake_pocket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePocket]:
    """A running FakePocket; the env holds its credentials, the cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("POCKET_CONSUMER_KEY", CONSUMER_KEY)
    monkeypatch.setenv("POCKET_ACCESS_TOKEN", ACCESS_TOKEN)
    with FakePocket(consumer_key=CONSUMER_KEY, access_token=ACCESS_TOKEN) as server:
        yield server
