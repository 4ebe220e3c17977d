"""``BookmarkFilter`` as the API uses it (specs/shaarli.md §5): visibility,
``searchtags`` (AND, ``-`` excludes, ``*`` wildcards, description
``#hashtags`` too, ASCII case folding unless case-sensitive) and
``searchterm`` (lower-cased substrings of title, description, URL and tags,
``"exact phrases"``, ``-word`` excludes)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from rulebot.fake.shaarli.model import Link

VISIBILITIES = ("all", "public", "private")
# BookmarkFilter::$HASHTAG_CHARS is \p{Pc}\p{N}\p{L}\p{Mn}; Python's \w is close
_HASHTAG = re.compile(r"(?<!\w)#(\w+?)\b")


def visible(links: Iterable[Link], visibility: str) -> list[Link]:
    """Any visibility but public/private is all."""
    if visibility == "public":
        return [link for link in links if not link.private]
    if visibility == "private":
        return [link for link in links if link.private]
    return list(links)


def split_tags(text: str) -> list[str]:
    """``tags_str2array`` with the default separator (whitespace)."""
    return [tag for tag in re.split(r"\s+", text.strip()) if tag]


def filter_tags(
    links: list[Link], wanted: list[str], *, case_sensitive: bool, visibility: str
) -> list[Link]:
    """``filterTags``: every wanted tag (``-tag`` none of them), as a whole
    tag of the link or a ``#hashtag`` of its description."""
    if not wanted:
        return visible(links, visibility)
    if visibility == "public":
        wanted = [tag for tag in wanted if not tag.startswith(".")]
        if not wanted:
            return []
    flags = re.ASCII if case_sensitive else re.ASCII | re.IGNORECASE  # PCRE without /u
    pattern = re.compile("^" + "".join(_tag_regex(tag) for tag in wanted) + ".*$", flags)
    found = []
    for link in visible(links, visibility):
        search = " ".join(tag.strip(" \t\n\r\0\x0b") for tag in link.tags if tag)
        if link.description.strip() and "#" in link.description:
            hashtags = _HASHTAG.findall(link.description)
            if hashtags:
                search += " " + " ".join(hashtags)
        if pattern.match(search):
            found.append(link)
    return found


def _tag_regex(tag: str) -> str:
    """``tag2regex``: a lookahead for one whole tag, ``*`` matching within it."""
    if tag in ("", "-", "*"):
        return ""
    negated = tag.startswith("-")
    body = tag[1:] if negated else tag
    pieces = [("[^ ]*?" if part == "*" else re.escape(part)) for part in re.split(r"(\*)", body)]
    return ("(?!" if negated else "(?=") + ".*(?:^| )" + "".join(pieces) + "(?:$| ))"


def filter_text(links: list[Link], terms: str, *, visibility: str) -> list[Link]:
    """``filterFulltext``: case-insensitive AND of the words and phrases."""
    if not terms:
        return visible(links, visibility)
    search = html.unescape(terms).lower()
    exact = [phrase for phrase in re.findall(r'"([^"]+)"', search) if phrase]
    words = [word for word in re.sub(r'"([^"]+)"', "", search).strip().split(" ") if word]
    exclude = [word[1:] for word in words if word.startswith("-") and len(word) > 1]
    required = exact + [word for word in words if not (word.startswith("-") and len(word) > 1)]
    found = []
    for link in visible(links, visibility):
        tag_text = " ".join(tag.strip() for tag in link.tags if tag)
        content = "\\".join(
            part.lower() for part in (link.title, link.description, link.url, tag_text)
        )
        content += "\\"
        if all(needle in content for needle in required) and not any(
            needle in content for needle in exclude
        ):
            found.append(link)
    return found


def search(
    links: list[Link],
    *,
    tags: str | list[str] = "",
    term: str = "",
    visibility: str = "all",
    case_sensitive: bool = False,
) -> list[Link]:
    """``BookmarkFileService::search``: the tag filter, then the text filter."""
    if visibility not in VISIBILITIES:
        visibility = "all"
    if not tags and not term:
        return visible(links, visibility)
    found = links
    if tags:
        wanted = split_tags(tags) if isinstance(tags, str) else tags
        found = filter_tags(found, wanted, case_sensitive=case_sensitive, visibility=visibility)
    if term:
        found = filter_text(found, term, visibility=visibility)
    return found
