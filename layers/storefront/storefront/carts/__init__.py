"""Carts: a customer's session in Redis, lines of product ids and quantities.

The facade: what other contexts may use of carts. Checkout reads a
customer's lines (:func:`cart_items`) on the container's store
(:func:`cart_store`), prices them itself, and empties the cart
(:func:`empty_cart`) once the order is committed. Both raise
:class:`CartUnavailable` (a 503 problem) when Redis cannot be reached.
"""

from storefront.carts.domain import CartItem, CartUnavailable
from storefront.carts.service import cart_items, empty_cart
from storefront.carts.store import CartStore, cart_store

__all__ = ["CartItem", "CartStore", "CartUnavailable", "cart_items", "cart_store", "empty_cart"]
