"""``Item``'s generated ``__init__`` and ``replace`` (rulebot.library.item)
against what the frozen dataclass itself does: same fields, same defaults,
as frozen, equal and hashable as before."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rulebot.library.item import NO_EXTRA, Item

FIELDS = dataclasses.fields(Item)
small = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.text(max_size=5), st.booleans())
tags = st.one_of(st.none(), st.lists(st.text(max_size=4), max_size=3).map(tuple))


def reference(values: dict[str, Any]) -> Item:
    """An item filled as the dataclass's own ``__init__`` fills it: each
    field from ``values`` or its declared default."""
    item = object.__new__(Item)
    for spec in FIELDS:
        if spec.name in values:
            value = values[spec.name]
        elif spec.default is not dataclasses.MISSING:
            value = spec.default
        else:
            assert callable(spec.default_factory)  # every Item field has a default
            value = spec.default_factory()
        object.__setattr__(item, spec.name, value)
    return item


def every_field(item: Item) -> tuple[Any, ...]:
    return tuple(getattr(item, spec.name) for spec in FIELDS)


@st.composite
def field_values(draw: st.DrawFn) -> dict[str, Any]:
    values: dict[str, Any] = {"item_id": draw(st.text(min_size=1, max_size=6))}
    for spec in FIELDS[1:]:
        if draw(st.booleans()):
            values[spec.name] = draw(tags if spec.name == "tags" else small)
    return values


@given(field_values())
def test_keyword_construction_fills_every_field_as_the_dataclass_would(
    values: dict[str, Any],
) -> None:
    item = Item(**values)
    assert type(item) is Item
    assert every_field(item) == every_field(reference(values))


@given(field_values())
def test_positional_construction_is_the_keyword_one(values: dict[str, Any]) -> None:
    full = every_field(reference(values))
    assert every_field(Item(*full)) == full
    assert Item(*full) == Item(**values)


def test_defaults_are_the_declared_ones_and_extra_is_the_shared_empty_mapping() -> None:
    item = Item("1")
    assert every_field(item) == every_field(reference({"item_id": "1"}))
    assert item.extra is NO_EXTRA
    with pytest.raises(TypeError):
        Item()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Item("1", nonsense=2)  # type: ignore[call-arg]


@given(field_values(), field_values())
def test_items_stay_frozen_hashable_and_replace_changes_only_what_it_names(
    values: dict[str, Any], other: dict[str, Any]
) -> None:
    item = Item(**values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.status = 9  # type: ignore[misc]
    if item.tags is None or isinstance(item.tags, tuple):
        assert hash(item) == hash(reference(values))
    changed = item.replace(**{k: v for k, v in other.items() if k != "item_id"})
    expected = {**values, **{k: v for k, v in other.items() if k != "item_id"}}
    assert every_field(changed) == every_field(reference(expected))
    assert dataclasses.replace(item, status=1) == item.replace(status=1)
