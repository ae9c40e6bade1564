from uuid import uuid4

import pytest

from storefront.errors import InvalidInput
from storefront.pagination import decode_cursor, encode_cursor


def test_cursor_round_trip() -> None:
    last = uuid4()
    cursor = encode_cursor(last)
    assert decode_cursor(cursor) == last
    assert str(last) not in cursor
    assert "=" not in cursor


@pytest.mark.parametrize("garbage", ["", "x", "!!!", encode_cursor(uuid4())[:-2], "azE6" * 8])
def test_foreign_cursor_names_the_field(garbage: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(garbage)
    assert raised.value.field == "cursor"
