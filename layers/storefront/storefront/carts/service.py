"""Cart use cases: the customer is always the token's subject, never input.

Each takes its collaborators (the cart store, the catalog's products) as
arguments; unit tests pass in-memory ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from storefront.carts.domain import Cart, CartItem, CartLimits, StoredCart, priced_cart
from storefront.carts.products import Products
from storefront.carts.store import CartStore

__all__ = ["cart_items", "empty_cart", "remove_item", "set_item_quantity", "view_cart"]


async def view_cart(customer_id: str, store: CartStore, products: Products) -> Cart:
    return await _priced(await store.read(customer_id), products)


async def set_item_quantity(
    customer_id: str,
    product_id: UUID,
    quantity: int,
    store: CartStore,
    products: Products,
    limits: CartLimits,
) -> Cart:
    """Set the line's quantity (adding it if new) and answer the cart."""
    limits.check_quantity(quantity)
    await products.check_exists(product_id)
    stored = await store.set_quantity(customer_id, product_id, quantity, max_lines=limits.max_lines)
    return await _priced(stored, products)


async def remove_item(
    customer_id: str, product_id: UUID, store: CartStore, products: Products
) -> Cart:
    """Remove the line, if the cart has it (removing twice answers the same)."""
    return await _priced(await store.remove(customer_id, product_id), products)


async def empty_cart(customer_id: str, store: CartStore) -> None:
    await store.clear(customer_id)


async def cart_items(customer_id: str, store: CartStore) -> tuple[CartItem, ...]:
    """The customer's lines as stored, for checkout to price and order
    (reading renews the cart, as any use does)."""
    return (await store.read(customer_id)).items


async def _priced(stored: StoredCart, products: Products) -> Cart:
    details = await products.details_of([item.product_id for item in stored.items])
    return priced_cart(stored, details, datetime.now(UTC))
