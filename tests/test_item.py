"""``Item``'s generated ``__init__`` and ``replace`` (rulebot.library.item)
against what the frozen dataclass itself does: same fields, same defaults,
as frozen, equal and hashable as before."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rulebot.library.item import NO_EXTRA, Item
from rulebot.library.item_rows import rows_to_items, tagged_rows_to_items

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


# -- rows_to_items: an Item per stored row, filled slot by slot ------------------

stored_rows = st.tuples(
    st.text(min_size=1, max_size=6),  # item_id
    *[st.text(max_size=4)] * 4,  # given/resolved url and title
    st.integers(0, 3),  # status
    st.sampled_from([None, 0, 1]),  # favorite
    st.sampled_from([0, 1]),  # tags_known
    *[st.one_of(st.none(), st.integers(0, 2**40))] * 6,  # four times, word count, minutes
    st.one_of(st.none(), st.text(max_size=3)),  # lang
    st.sampled_from([None, 0, 1]),  # is_article
    *[st.one_of(st.none(), st.integers(0, 2))] * 2,  # has_image, has_video
    st.text(max_size=4),  # excerpt
    st.sampled_from([None, "", '{"unread": true}', '{"k": [1, "x"]}']),  # extra
)


def row_item(row: tuple[Any, ...], tags: tuple[str, ...]) -> Item:
    """What a stored row means, field by field, through the dataclass's own fill."""
    (item_id, gu, ru, gt, rt, status, fav, known, ta, tu, tr, tf, wc, ttr, lang, article,
     image, video, excerpt, extra) = row  # fmt: skip
    return reference(
        {
            "item_id": item_id, "given_url": gu, "resolved_url": ru, "given_title": gt,
            "resolved_title": rt, "status": status,
            "favorite": None if fav is None else fav == 1,
            "tags": tags if known else None,
            "time_added": ta, "time_updated": tu, "time_read": tr, "time_favorited": tf,
            "word_count": wc, "time_to_read": ttr, "lang": lang,
            "is_article": None if article is None else article == 1,
            "has_image": image, "has_video": video, "excerpt": excerpt,
            "extra": json.loads(extra) if extra else NO_EXTRA,
        }
    )  # fmt: skip


@given(st.lists(st.tuples(stored_rows, tags.map(lambda t: t or ())), max_size=6))
def test_rows_become_the_items_they_store(
    rows: list[tuple[tuple[Any, ...], tuple[str, ...]]],
) -> None:
    """Both generated readers fill every slot as the dataclass would: the
    tags from a mapping (``rows_to_items``) or from a JSON array after the
    columns (``tagged_rows_to_items``, the plan's streamed read)."""
    by_id: dict[str, tuple[str, ...]] = {}  # as the store reads them: untagged items absent
    for row, found in rows:
        if found and row[0] not in by_id:
            by_id[row[0]] = found
    expected = [row_item(row, by_id.get(row[0], ())) for row, _ in rows]
    mapped = rows_to_items([row for row, _ in rows], by_id)
    assert [type(i) for i in mapped] == [Item] * len(rows)
    assert [every_field(i) for i in mapped] == [every_field(i) for i in expected]
    parsed = {json.dumps(found): found for _, found in rows}
    tagged = tagged_rows_to_items([(*row, json.dumps(found)) for row, found in rows], parsed)
    expected = [row_item(row, found) for row, found in rows]
    assert [every_field(i) for i in tagged] == [every_field(i) for i in expected]
    for item in tagged:  # handed back as frozen as any Item
        with pytest.raises(dataclasses.FrozenInstanceError):
            item.status = 9  # type: ignore[misc]
