from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from rulebot.bulk import FREEZE_AFTER, gc_paused


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def test_the_collector_is_off_during_a_pause_and_on_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the outer pause decides
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_that_made_many_objects_freezes_them_instead_of_scanning() -> None:
    with gc_paused():
        made = [(n, [n]) for n in range(FREEZE_AFTER)]  # tracked: lists and their tuples
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)
    assert gc.get_count()[0] < FREEZE_AFTER  # nothing left for the next collection to walk


def test_a_small_pause_freezes_nothing() -> None:
    with gc_paused():
        made = [[n] for n in range(100)]
    assert gc.get_freeze_count() == 0
    assert len(made) == 100


def test_a_pause_left_by_an_error_still_turns_the_collector_back_on() -> None:
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_pause_inside_a_disabled_collector_leaves_it_disabled() -> None:
    gc.disable()
    with gc_paused():
        made = [[n] for n in range(FREEZE_AFTER + 10)]
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0  # not its choice: it did not turn the collector off
    assert made
