"""The conformance suite's one fixture: ``backend``, once per source.

A test runs on every source unless it is marked ``@pytest.mark.sources(test)``,
``test`` taking a ``Backend`` class: then only on the sources it accepts. A
question that has no meaning for a source (a clock the real servers do not
let a test move) is not asked of it, rather than asked and skipped; a test
that parametrizes ``backend`` itself (the fault matrix's (source, row) pairs)
chooses its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import clear_rulebot_env

from .backends import BACKENDS, Backend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    own = metafunc.definition.iter_markers("parametrize")
    if any("backend" in str(mark.args[0]) for mark in own):
        return
    wanted = metafunc.definition.get_closest_marker("sources")
    chosen = [
        name for name, backend in BACKENDS.items() if wanted is None or wanted.args[0](backend)
    ]
    metafunc.parametrize("backend", chosen, ids=chosen, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "conformance" in item.nodeid:
            item.add_marker(pytest.mark.conformance)
            if "[shaarli" in item.nodeid:
                item.add_marker(pytest.mark.shaarli)
            if "[linkding" in item.nodeid:
                item.add_marker(pytest.mark.linkding)


@pytest.fixture
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
