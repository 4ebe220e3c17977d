"""One reused JSON encoder per set of options, for the many small objects a
big plan or journal writes.

``json.dumps`` with options builds a ``JSONEncoder`` on every call, and
``JSONEncoder.encode`` builds a C encoder on every call too: about half the
cost of encoding a small dict such as a send. A first-run plan and its
journal encode 100k+ of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from typing import Any


def _unencodable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encoder(*, ensure_ascii: bool = True, sort_keys: bool = False) -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=..., sort_keys=...).encode``, with the
    default separators, made once and reused.

    Without a circular check, which rulebot's data (JSON read from files and
    servers, or built by rulebot) never needs. It is checked against the
    standard encoder on a probe; where the C accelerator is missing or
    differs, the standard encoder is returned instead."""
    standard = json.JSONEncoder(ensure_ascii=ensure_ascii, sort_keys=sort_keys).encode
    strings = encode_basestring_ascii if ensure_ascii else encode_basestring
    try:
        chunks = c_make_encoder(
            None, _unencodable, strings, None, ": ", ", ", sort_keys, False, True
        )
    except TypeError:  # pragma: no cover - no accelerator, or another signature
        return standard

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    probe = {"b": [1, 2.5, None, True, "é\n\u2028"], "a": {"z": -0.0, "y": 10**20}}
    return encode if encode(probe) == standard(probe) else standard
