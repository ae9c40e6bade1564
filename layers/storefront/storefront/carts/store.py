"""Carts in Redis: one hash per customer, product id -> quantity.

**Key.** ``<prefix>cart:{<digest>}``: the deployment's prefix, and a digest
of the customer (never the token's subject itself in a key name) as the hash
tag, so any key added for the same customer later (a checkout lock, say)
lands in the cart's slot and one script can use both on Redis Cluster.

**Expiry.** A cart lives ``cart_ttl_seconds`` after its last use. Every
operation is one script that does its work and renews the TTL, so a use and
its renewal are one round trip and nothing can see one without the other. A
read of a cart that does not exist creates nothing.

**The line limit** is checked inside the script that adds the line: Redis
runs a script alone, so concurrent requests adding different products cannot
all see room for one more and together pass the limit.

**Redis down.** Every failure is :class:`CartUnavailable` (503 with
``Retry-After``), never a 500. The first failure opens a circuit breaker, so
for the cooldown later requests answer at once instead of each paying a
timeout; the catalog, which does not need carts, goes on serving.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID
from weakref import WeakKeyDictionary

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.redis import REDIS_FAILURES, RedisClient
from storefront.carts.domain import EMPTY, CartFull, CartItem, CartUnavailable, StoredCart
from storefront.observability import logger
from storefront.settings import Settings

__all__ = ["CartStore", "RedisCartStore", "cart_key", "cart_store"]

T = TypeVar("T")

# KEYS[1]: the cart. ARGV: TTL (ms). Returns {PTTL, HGETALL}; PTTL -2: no cart.
_READ = """
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then
  return {-2, {}}
end
return {redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])}
"""

# KEYS[1]: the cart. ARGV: product id, quantity, TTL (ms), most lines.
# Returns {1, PTTL, HGETALL}, or {0} when a new line would pass the limit (the
# refused attempt is a use too: the TTL is renewed all the same).
_SET_QUANTITY = """
local cart, product = KEYS[1], ARGV[1]
if redis.call('HEXISTS', cart, product) == 0
    and redis.call('HLEN', cart) >= tonumber(ARGV[4]) then
  redis.call('PEXPIRE', cart, ARGV[3])
  return {0}
end
redis.call('HSET', cart, product, ARGV[2])
redis.call('PEXPIRE', cart, ARGV[3])
return {1, redis.call('PTTL', cart), redis.call('HGETALL', cart)}
"""

# KEYS[1]: the cart. ARGV: product id, TTL (ms). Returns as _READ; removing
# the last line removes the hash, so there is no cart left to renew.
_REMOVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then
  return {-2, {}}
end
return {redis.call('PTTL', KEYS[1]), redis.call('HGETALL', KEYS[1])}
"""


class CartStore(Protocol):
    """Where carts live. Each operation renews the cart's expiry."""

    async def read(self, customer_id: str) -> StoredCart: ...

    async def set_quantity(
        self, customer_id: str, product_id: UUID, quantity: int, *, max_lines: int
    ) -> StoredCart:
        """Set a line's quantity, adding it if new; :class:`CartFull` when a
        new line would make more than ``max_lines``."""
        ...

    async def remove(self, customer_id: str, product_id: UUID) -> StoredCart: ...

    async def clear(self, customer_id: str) -> None: ...


def cart_key(settings: Settings, customer_id: str) -> str:
    digest = hashlib.blake2b(customer_id.encode(), digest_size=16).hexdigest()
    return f"{settings.redis_key_prefix}cart:{{{digest}}}"


class RedisCartStore:
    def __init__(
        self, redis: RedisClient, settings: Settings, breaker: CircuitBreaker | None = None
    ) -> None:
        self.settings = settings
        self._redis = redis
        self._ttl_ms = settings.cart_ttl_seconds * 1000
        self._breaker = breaker or CircuitBreaker(settings.cache_breaker_cooldown_seconds)
        self._retry_after = max(1, math.ceil(settings.cache_breaker_cooldown_seconds))
        self._read = redis.register_script(_READ)
        self._set_quantity = redis.register_script(_SET_QUANTITY)
        self._remove = redis.register_script(_REMOVE)

    async def read(self, customer_id: str) -> StoredCart:
        key = cart_key(self.settings, customer_id)
        return _stored(await self._guarded(lambda: self._read(keys=[key], args=[self._ttl_ms])))

    async def set_quantity(
        self, customer_id: str, product_id: UUID, quantity: int, *, max_lines: int
    ) -> StoredCart:
        key = cart_key(self.settings, customer_id)
        arguments: list[str | int] = [str(product_id), quantity, self._ttl_ms, max_lines]
        reply = await self._guarded(lambda: self._set_quantity(keys=[key], args=arguments))
        if not reply[0]:
            raise CartFull(max_lines)
        return _stored(reply[1:])

    async def remove(self, customer_id: str, product_id: UUID) -> StoredCart:
        key = cart_key(self.settings, customer_id)
        arguments: list[str | int] = [str(product_id), self._ttl_ms]
        return _stored(await self._guarded(lambda: self._remove(keys=[key], args=arguments)))

    async def clear(self, customer_id: str) -> None:
        key = cart_key(self.settings, customer_id)
        await self._guarded(lambda: self._redis.delete(key))

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s result; :class:`CartUnavailable` when Redis fails, or
        failed within the breaker's cooldown (then Redis is not asked)."""
        if self._breaker.is_open:
            raise CartUnavailable(self._retry_after)
        try:
            result = await call()
        except REDIS_FAILURES as error:
            self._breaker.record_failure()
            logger.warning("redis unavailable, carts answer 503: %s", type(error).__name__)
            raise CartUnavailable(self._retry_after) from error
        self._breaker.record_success()
        return result


def _stored(reply: Sequence[Any]) -> StoredCart:
    """{PTTL, [field, value, ...]} as a cart (the client does not decode bytes)."""
    expires_in_ms, flat = int(reply[0]), reply[1]
    if expires_in_ms < 0:
        return EMPTY
    items = tuple(
        CartItem(product_id=UUID(field.decode()), quantity=int(value))
        for field, value in zip(flat[::2], flat[1::2], strict=True)
    )
    return StoredCart(items=items, expires_in_ms=expires_in_ms)


# One store per Redis client, so its breaker outlives a request: a client
# belongs to one container's resources, and a new client (resources closed
# and opened again, a test's own) gets a new store.
_stores: WeakKeyDictionary[Any, RedisCartStore] = WeakKeyDictionary()


def cart_store(redis: RedisClient, settings: Settings) -> RedisCartStore:
    """The container's cart store on this client."""
    store = _stores.get(redis)
    if store is None or store.settings is not settings:
        store = _stores[redis] = RedisCartStore(redis, settings)
    return store
