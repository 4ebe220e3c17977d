"""The conformance suite's one fixture: ``backend``, once per source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import clear_rulebot_env

from .backends import BACKENDS, Backend


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "conformance" in item.nodeid:
            item.add_marker(pytest.mark.conformance)
            if "[shaarli" in item.nodeid:
                item.add_marker(pytest.mark.shaarli)
            if "[linkding" in item.nodeid:
                item.add_marker(pytest.mark.linkding)


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Backend]:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    chosen = BACKENDS[request.param](monkeypatch, capsys, request)
    with chosen.running() as running:
        yield running
