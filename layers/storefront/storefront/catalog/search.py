"""Product search, as rules: what a shopper's query means, and where a page ends.

No database here: the repository turns a :class:`SearchQuery` into SQL.

A query is cut into words (runs of letters and digits: everything else
separates words, as PostgreSQL's text search parser mostly does), so no
character a shopper types reaches the text search query syntax. Every word
must match; the last one also matches as a prefix while the shopper may still
be typing it (``q`` ends with it, and it has two characters or more).

Results come in two phases, each ranked, each paged by keyset over
(rank, id): *words*, the products whose name or description has every word
(ranked by ``ts_rank``, a name match above a description match); and, only
when the words find fewer than a page, *similar*: products whose name has,
for each word of three letters or more, a word like it (``pg_trgm``'s strict
word similarity, 0.5 or more), so a typo still finds something; ranked by the
mean of those similarities. Similar products always come after every word match,
and the cursor says which phase the next page continues, so a walk over the
pages returns each product once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import struct
from decimal import Decimal
from enum import IntEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from storefront.catalog.domain import Product
from storefront.errors import InvalidInput

__all__ = [
    "MAX_QUERY_LENGTH",
    "Phase",
    "Position",
    "SearchPage",
    "SearchQuery",
    "decode_search_cursor",
    "encode_search_cursor",
    "search_terms",
]

MAX_QUERY_LENGTH = 100
MAX_TERMS = 10
# A last word shorter than this is matched whole: "c:*" would rank most of the catalog.
MIN_PREFIX_LENGTH = 2
# Shorter words have too few trigrams to be a typo of anything in particular:
# "s" is like every name with a word that starts with s.
MIN_TYPO_LENGTH = 3
_WORD = re.compile(r"[^\W_]+")


class Phase(IntEnum):
    WORDS = 1
    SIMILAR = 2


class Position(BaseModel):
    """Where a page ended: the phase, and the rank and id of its last product."""

    model_config = ConfigDict(frozen=True)

    phase: Phase
    rank: float
    last_id: UUID


class SearchQuery(BaseModel):
    """A search, normalized: two spellings of one search share their cached pages."""

    model_config = ConfigDict(frozen=True)

    terms: tuple[str, ...] = Field(min_length=1)
    prefix: bool
    category_id: UUID | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    after: Position | None = None
    limit: int = 20

    def text_query(self) -> str:
        """The terms in PostgreSQL's tsquery syntax: ``leather & wallet:*``.

        Safe to hand to ``to_tsquery``: terms hold letters and digits only.
        """
        words = list(self.terms)
        if self.prefix:
            words[-1] += ":*"
        return " & ".join(words)

    def typo_terms(self) -> tuple[str, ...]:
        """The words typo tolerance looks for similar ones of (none: it does not run)."""
        return tuple(term for term in self.terms if len(term) >= MIN_TYPO_LENGTH)

    def fingerprint(self) -> bytes:
        """Four bytes naming this search (not its page): a cursor carries them,
        so a cursor handed to another search is refused, not misread."""
        search = self.model_dump_json(exclude={"after", "limit"})
        return hashlib.sha256(search.encode()).digest()[:4]


class SearchPage(BaseModel):
    items: list[Product]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last one"
    )
    word_matches: int = Field(
        ge=0,
        description=(
            "How many of `items`, from the first, have every word of `q`; the"
            " rest were found by similarity to `q` (typo tolerance), which is"
            " tried only when the words find fewer than a page"
        ),
    )


def search_terms(q: str) -> tuple[tuple[str, ...], bool]:
    """The words of ``q``, lowercased, and whether the last is a prefix."""
    terms = tuple(word.lower() for word in _WORD.findall(q))
    if not terms:
        raise InvalidInput("q", "has no letters or digits to search for")
    if len(terms) > MAX_TERMS:
        raise InvalidInput("q", f"has more than {MAX_TERMS} words")
    # q ends with its last word: the shopper may still be typing it.
    still_typing = _WORD.fullmatch(q[-1]) is not None and len(terms[-1]) >= MIN_PREFIX_LENGTH
    return terms, still_typing


def check_price_range(min_price: Decimal | None, max_price: Decimal | None) -> None:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidInput("max_price", "must not be below min_price")


# The cursor: a version, the phase, the search's fingerprint, the rank (a
# float64) and the last id, base64url. Every byte is checked on the way in;
# what reaches SQL is a bound float and a bound UUID, never cursor text.
_VERSION = b"s1"
_LAYOUT = struct.Struct(">2sB4sd16s")
_PHASES = frozenset(Phase)


def encode_search_cursor(position: Position, query: SearchQuery) -> str:
    raw = _LAYOUT.pack(
        _VERSION, position.phase, query.fingerprint(), position.rank, position.last_id.bytes
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_search_cursor(cursor: str, query: SearchQuery) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, phase, fingerprint, rank, last_id = _LAYOUT.unpack(raw)
    except (binascii.Error, ValueError, struct.error):
        raise InvalidInput("cursor", "is not a cursor this API issued") from None
    if version != _VERSION or phase not in _PHASES or not math.isfinite(rank) or not 0 <= rank <= 1:
        raise InvalidInput("cursor", "is not a cursor this API issued")
    if fingerprint != query.fingerprint():
        raise InvalidInput("cursor", "belongs to another search: q or a filter changed")
    return Position(phase=Phase(phase), rank=rank, last_id=UUID(bytes=last_id))
