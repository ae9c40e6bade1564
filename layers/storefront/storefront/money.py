"""Money on the wire: one grammar for what clients send and what they get.

A decimal string (a float cannot hold most amounts exactly): more than 0, at
most 10 digits before the point and 2 after, no sign, exponent, underscore,
space or leading zero: what ``NUMERIC(12, 2)`` holds, written as its text.
Answers declare the same pattern, so a client checks one grammar both ways.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import WithJsonSchema

__all__ = ["MONEY_PATTERN", "MONEY_SCHEMA", "Money"]

MONEY_PATTERN = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,9}(\.[0-9]{1,2})?)$"
MONEY_SCHEMA: dict[str, Any] = {"type": "string", "pattern": MONEY_PATTERN, "examples": ["12.50"]}

# An amount in an answer (prices, totals): its schema is the input grammar.
Money = Annotated[Decimal, WithJsonSchema(MONEY_SCHEMA, mode="serialization")]
