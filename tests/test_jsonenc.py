from __future__ import annotations

import json
from typing import TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebot.jsonenc import encoder
from tests.helpers import examples

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


class Options(TypedDict):
    ensure_ascii: bool
    sort_keys: bool


OPTIONS: list[Options] = [
    {"ensure_ascii": True, "sort_keys": False},
    {"ensure_ascii": False, "sort_keys": False},
    {"ensure_ascii": True, "sort_keys": True},  # the journal's
]


@pytest.mark.parametrize("options", OPTIONS)
@settings(max_examples=examples(200), deadline=None, derandomize=True)
@given(value=json_values)
def test_the_reused_encoder_writes_what_the_standard_one_writes(
    options: Options, value: object
) -> None:
    assert encoder(**options)(value) == json.JSONEncoder(**options).encode(value)


@pytest.mark.parametrize("options", OPTIONS)
def test_the_reused_encoder_can_be_called_again_and_again(options: Options) -> None:
    encode = encoder(**options)
    values = [{"b": 1, "a": [n, "é"]} for n in range(3)]
    assert [encode(v) for v in values] == [json.JSONEncoder(**options).encode(v) for v in values]


def test_the_reused_encoder_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        encoder()({"tags": {"a"}})
