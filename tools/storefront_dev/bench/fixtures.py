"""Data the benchmarks and chaos scenarios start from, written in bulk with SQL.

Generated inside PostgreSQL (``generate_series``) rather than row by row from
Python, so seeding 100k rows takes a second or two, not a benchmark's budget.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import asyncpg

from storefront.events.envelope import Event
from storefront.ids import new_id
from storefront.orders.events import OrderLine, OrderPlaced

__all__ = ["UNIT_PRICE", "placed_events", "seed_orders", "seed_products"]

UNIT_PRICE = Decimal("12.50")


async def seed_products(
    connection: asyncpg.Connection, count: int, *, on_hand: int, label: str = "bench"
) -> list[UUID]:
    """``count`` products priced ``UNIT_PRICE`` with ``on_hand`` in stock; their ids."""
    ids = [new_id() for _ in range(count)]
    await connection.execute(
        """
        INSERT INTO products (id, sku, name, price, currency)
        SELECT id, $2 || '-' || n, 'Bench product ' || n, $3, 'EUR'
        FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)
        """,
        ids,
        label,
        UNIT_PRICE,
    )
    await connection.execute(
        "INSERT INTO stock_levels (product_id, on_hand) SELECT unnest($1::uuid[]), $2",
        ids,
        on_hand,
    )
    return ids


async def seed_orders(
    connection: asyncpg.Connection, count: int, products: list[UUID]
) -> list[tuple[UUID, UUID]]:
    """``count`` PENDING orders of one unit of one product each: (order id, product id)."""
    orders = [(new_id(), products[index % len(products)]) for index in range(count)]
    await connection.execute(
        """
        INSERT INTO orders (id, customer_id, status, total, currency)
        SELECT unnest($1::uuid[]), 'bench-customer', 'PENDING', $2, 'EUR'
        """,
        [order_id for order_id, _ in orders],
        UNIT_PRICE,
    )
    await connection.execute(
        """
        INSERT INTO order_items (order_id, product_id, quantity, unit_price)
        SELECT o, p, 1, $3 FROM unnest($1::uuid[], $2::uuid[]) AS t(o, p)
        """,
        [order_id for order_id, _ in orders],
        [product_id for _, product_id in orders],
        UNIT_PRICE,
    )
    return orders


def placed_events(orders: list[tuple[UUID, UUID]]) -> list[Event]:
    """The OrderPlaced event each of ``orders`` would have published."""
    return [
        Event.of(
            OrderPlaced(
                order_id=order_id,
                items=[OrderLine(product_id=product_id, quantity=1, unit_price=UNIT_PRICE)],
                total=UNIT_PRICE,
                currency="EUR",
            ),
            order_id,
            correlation_id="bench",
        )
        for order_id, product_id in orders
    ]
