"""URL normalisation (rulebot/library/urls.py): properties over generated URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rulebot.library.urls import normalise_url

segment = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789-_.~%", min_size=1, max_size=8)
hosts = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8), min_size=1, max_size=3
).map(".".join)
paths = st.lists(segment, max_size=4).map(lambda parts: "/" + "/".join(parts))
names = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6).filter(
    lambda n: not n.startswith("utm_") and n not in {"fbclid", "gclid", "mc_cid", "mc_eid"}
)
params = st.lists(st.tuples(names, segment), max_size=3, unique_by=lambda p: p[0])
tracking = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "utm_source",
                "utm_medium",
                "fbclid",
                "gclid",
                "mc_cid",
                "mc_eid",
                "ref_src",
                "UTM_Campaign",
            ]
        ),
        segment,
    ),
    max_size=3,
)


def build(scheme: str, www: bool, host: str, port: str, path: str, query: list, frag: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in query)
    return (
        f"{scheme}://{'www.' if www else ''}{host}{port}{path}"
        + (f"?{q}" if q else "")
        + (f"#{frag}" if frag else "")
    )


@given(st.text(max_size=80))
def test_normalising_twice_changes_nothing(url: str) -> None:
    once = normalise_url(url)
    assert normalise_url(once) == once


@given(
    hosts,
    paths,
    params,
    tracking,
    st.booleans(),
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["", ":80", ":443"]),
    st.booleans(),
    segment,
)
def test_variants_of_one_page_are_equal(
    host: str,
    path: str,
    query: list,
    noise: list,
    www: bool,
    scheme: str,
    port: str,
    slash: bool,
    frag: str,
) -> None:
    plain = build("https", False, host, "", path, query, "")
    variant = build(
        scheme,
        www,
        host.upper(),
        port,
        path + ("/" if slash else ""),
        list(reversed(query)) + noise,
        frag,
    )
    assert normalise_url(variant) == normalise_url(plain)


@given(hosts, paths, paths, params)
def test_different_paths_are_different(host: str, a: str, b: str, query: list) -> None:
    if a.rstrip("/") != b.rstrip("/"):
        assert normalise_url(build("https", False, host, "", a, query, "")) != normalise_url(
            build("https", False, host, "", b, query, "")
        )


@given(hosts, paths, params, names, segment)
def test_a_real_parameter_makes_a_different_page(
    host: str, path: str, query: list, name: str, value: str
) -> None:
    if name in {k for k, _ in query}:
        return
    base = build("https", False, host, "", path, query, "")
    more = build("https", False, host, "", path, [*query, (name, value)], "")
    assert normalise_url(base) != normalise_url(more)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://www.Example.com/a/?utm_source=x#top", "http://example.com/a", True),
        ("https://example.com:443/a?b=2&a=1", "https://example.com/a?a=1&b=2", True),
        (
            "https://example.com/a?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ref_src=5",
            "example.com/a",
            True,
        ),
        ("https://example.com:8080/a", "https://example.com/a", False),
        ("https://example.com/A", "https://example.com/a", False),
        ("https://example.com/a?id=1", "https://example.com/a?id=2", False),
        ("https://blog.example.com/a", "https://example.com/a", False),
    ],
)
def test_examples(a: str, b: str, same: bool) -> None:
    assert (normalise_url(a) == normalise_url(b)) is same
