"""storefront.catalog.search: words, prefixes, price ranges and cursors, without a database."""

from __future__ import annotations

import base64
import struct
import uuid
from decimal import Decimal

import pytest

from storefront.catalog.search import (
    Phase,
    Position,
    SearchQuery,
    check_price_range,
    decode_search_cursor,
    encode_search_cursor,
    search_terms,
)
from storefront.errors import InvalidInput


@pytest.mark.parametrize(
    ("q", "terms", "prefix"),
    [
        ("Leather Wal", ("leather", "wal"), True),
        ("leather wal ", ("leather", "wal"), False),
        ("leather w", ("leather", "w"), False),
        ("t-shirt", ("t", "shirt"), True),
        ("t-shirt.", ("t", "shirt"), False),
        ("chef's knife", ("chef", "s", "knife"), True),
        ("a:* & b | !c", ("a", "b", "c"), False),
        ("'; DROP TABLE products; --", ("drop", "table", "products"), False),
        ("éclair_café 42", ("éclair", "café", "42"), True),
    ],
)
def test_a_query_is_its_words(q: str, terms: tuple[str, ...], prefix: bool) -> None:
    assert search_terms(q) == (terms, prefix)


@pytest.mark.parametrize("q", ["", "   ", "?!-", "_", "&|!():*", "a b c d e f g h i j k"])
def test_a_query_without_words_or_with_too_many_names_q(q: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        search_terms(q)
    assert refused.value.field == "q"


def test_the_text_query_has_only_words_and_operators() -> None:
    typing = SearchQuery(terms=("leather", "wal"), prefix=True)
    done = SearchQuery(terms=("leather", "wallet"), prefix=False)

    assert typing.text_query() == "leather & wal:*"
    assert done.text_query() == "leather & wallet"


def test_typo_tolerance_leaves_out_words_too_short_to_have_typos() -> None:
    query = SearchQuery(terms=("xl", "walet", "s"), prefix=False)

    assert query.typo_terms() == ("walet",)
    assert SearchQuery(terms=("s", "t"), prefix=False).typo_terms() == ()


def test_a_price_range_may_not_run_backwards() -> None:
    check_price_range(Decimal("5"), Decimal("5"))
    check_price_range(None, Decimal("1"))
    with pytest.raises(InvalidInput) as refused:
        check_price_range(Decimal("10.00"), Decimal("9.99"))
    assert refused.value.field == "max_price"


QUERY = SearchQuery(terms=("tea",), prefix=True, limit=5)


@pytest.mark.parametrize("phase", list(Phase))
def test_a_cursor_round_trips(phase: Phase) -> None:
    position = Position(phase=phase, rank=0.0607927, last_id=uuid.uuid4())

    cursor = encode_search_cursor(position, QUERY)

    assert decode_search_cursor(cursor, QUERY) == position
    assert len(cursor) <= 64  # the route's max_length
    # The page size and the position are not part of the search.
    later = QUERY.model_copy(update={"limit": 50, "after": position})
    assert decode_search_cursor(cursor, later) == position


def test_a_cursor_belongs_to_its_search() -> None:
    cursor = encode_search_cursor(
        Position(phase=Phase.WORDS, rank=0.5, last_id=uuid.uuid4()), QUERY
    )
    others = [
        QUERY.model_copy(update={"terms": ("coffee",)}),
        QUERY.model_copy(update={"prefix": False}),
        QUERY.model_copy(update={"category_id": uuid.uuid4()}),
        QUERY.model_copy(update={"min_price": Decimal("1.00")}),
        QUERY.model_copy(update={"max_price": Decimal("1.00")}),
    ]
    for other in others:
        with pytest.raises(InvalidInput, match="another search"):
            decode_search_cursor(cursor, other)


def forge(
    *, version: bytes = b"s1", phase: int = 1, rank: float = 0.5, fingerprint: bytes | None = None
) -> str:
    raw = struct.pack(
        ">2sB4sd16s",
        version,
        phase,
        QUERY.fingerprint() if fingerprint is None else fingerprint,
        rank,
        uuid.uuid4().bytes,
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "!!!!",
        forge()[:-2],  # short
        forge() + "AAAA",  # long
        forge(version=b"k1"),
        forge(phase=0),
        forge(phase=3),
        forge(rank=float("nan")),
        forge(rank=float("inf")),
        forge(rank=-0.1),
        forge(rank=1.5),
        base64.urlsafe_b64encode(b"k1:" + uuid.uuid4().bytes).decode(),  # a list cursor
    ],
)
def test_forged_cursors_name_the_cursor(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_search_cursor(cursor, QUERY)
    assert refused.value.field == "cursor"
