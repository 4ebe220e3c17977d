"""Shaarli's pure parts: the JWT rulebot signs, a link as an Item, the `private` condition."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.rules.conditions import compile_where
from rulebot.sources.shaarli.api import link_to_item, make_token


def _part(text: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return decoded


def test_the_token_is_hs512_unpadded_with_an_integer_iat_a_little_in_the_past() -> None:
    token = make_token("s3cret", 1_800_000_000.9)
    head, body, sig = token.split(".")
    assert "=" not in token
    assert _part(head) == {"typ": "JWT", "alg": "HS512"}
    assert _part(body) == {"iat": 1_799_999_995}  # integer: a fractional iat fails
    expected = hmac.new(b"s3cret", f"{head}.{body}".encode(), hashlib.sha512).digest()
    assert sig == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()


LINK = {
    "id": 0,
    "url": "https://a.example/x",
    "shorturl": "mmcL9A",
    "title": "A",
    "description": "d",
    "tags": ["Foo", "bar"],
    "private": True,
    "created": "2026-12-01T11:41:51+01:00",
    "updated": "",
}


def test_a_link_becomes_an_item_id_zero_and_never_updated_included() -> None:
    item = link_to_item(LINK)
    assert (item.item_id, item.url, item.title, item.tags) == (
        "0",
        LINK["url"],
        "A",
        ("Foo", "bar"),
    )
    assert item.time_added == item.time_updated == 1_796_121_711
    assert item.favorite is None and item.extra == {"private": True, "shorturl": "mmcL9A"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "0"), ("id", True), ("id", -1), ("tags", "a b"), ("private", 1), ("created", "x")],
)
def test_a_garbled_link_is_an_item_data_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ItemDataError, match=field if field != "id" else "id"):
        link_to_item({**LINK, field: value})


def test_private_matches_the_flag_and_is_unknown_without_it() -> None:
    where = compile_where({"private": True})
    assert where.matches(Item("1", extra={"private": True}), 0) is True
    assert where.matches(Item("1", extra={"private": False}), 0) is False
    assert where.matches(Item("1"), 0) is None  # not Shaarli: unknown, never a match
    assert compile_where({"not": {"private": True}}).matches(Item("1"), 0) is None
