"""Revoked tokens over ASGI on the real apps, PostgreSQL and Redis.

``POST /auth/logout`` revokes the caller's token, ``POST /admin/customers/
{sub}/revoke-tokens`` every token of a subject issued until now; both are
refused (401) by every function afterwards, read in the rate limiter's round
trip, before PostgreSQL. With Redis down, admin tokens are refused (503) and
customers' pass, as AUTH_REVOCATION_FAIL_CLOSED says by default.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from redis.asyncio.connection import AbstractConnection

from storefront import wiring
from storefront.auth.principal import IssuedToken, Principal
from storefront.auth.revocation import TokenRevocations
from storefront.observability import metrics
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.authentication import REVOCATION_FAIL_OPEN_METRIC
from storefront_dev.embedded import EmbeddedRedis, start_redis
from storefront_dev.local_auth import mint_token
from tests.conftest import TEST_AUTH, bearer, token_for
from tests.integration.conftest import asgi_client, counting_queries, create_product

PROBLEM = "application/problem+json"
REVOKED = 'Bearer error="invalid_token", error_description="token revoked"'


def subject() -> str:
    """A subject of the test's own: revoking it touches no other test's tokens."""
    return f"customer-{uuid.uuid4().hex[:8]}"


def token_issued(sub: str, *, at: int, admin: bool = False, ttl: int = 3600) -> str:
    """A token whose iat is ``at`` (within the leeway of now)."""
    claims = {"iat": at, "nbf": at, "exp": at + ttl}
    return mint_token(TEST_AUTH, sub, admin=admin, ttl_seconds=ttl, extra_claims=claims)


async def test_logout_revokes_that_token_only(orders_app: FastAPI, app: FastAPI) -> None:
    alice = subject()
    phone, laptop = token_for(alice), token_for(alice)
    metrics.clear_metrics()

    async with asgi_client(orders_app) as orders, asgi_client(app) as catalog:
        before = await orders.get("/orders", headers=bearer(phone))
        logout = await orders.post("/auth/logout", headers=bearer(phone))
        after = await orders.get("/orders", headers=bearer(phone))
        elsewhere = await catalog.get("/products", headers=bearer(phone))
        again = await orders.post("/auth/logout", headers=bearer(phone))
        other = await orders.get("/orders", headers=bearer(laptop))

    assert before.status_code == 200
    assert (logout.status_code, logout.content) == (204, b"")
    assert after.status_code == 401
    assert after.headers["content-type"] == PROBLEM
    assert after.headers["www-authenticate"] == REVOKED
    assert phone not in after.text
    # Another function, the same Redis: refused there too, even where a token is optional.
    assert elsewhere.status_code == 401
    assert elsewhere.headers["www-authenticate"] == REVOKED
    assert again.status_code == 401
    assert other.status_code == 200, "the subject's other token is still good"
    assert REVOCATION_FAIL_OPEN_METRIC not in metrics.metric_set, "every check read Redis"


async def test_an_admin_revokes_every_token_issued_until_now(
    orders_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    bob, carol = subject(), subject()
    now = int(time.time())
    old_tokens = [token_issued(bob, at=now - 60), token_issued(bob, at=now)]
    carols = token_for(carol)

    async with asgi_client(orders_app) as client:
        assert (await client.get("/orders", headers=bearer(old_tokens[0]))).status_code == 200
        revoked = await client.post(f"/admin/customers/{bob}/revoke-tokens", headers=admin_headers)
        # Issued after the revocation's second: the next sign-in, or a refresh.
        fresh = token_issued(bob, at=int(time.time()) + 1)
        old_answers = [await client.get("/orders", headers=bearer(t)) for t in old_tokens]
        fresh_answer = await client.get("/orders", headers=bearer(fresh))
        carols_answer = await client.get("/orders", headers=bearer(carols))

    assert (revoked.status_code, revoked.content) == (204, b"")
    assert [answer.status_code for answer in old_answers] == [401, 401]
    assert {answer.headers["www-authenticate"] for answer in old_answers} == {REVOKED}
    assert fresh_answer.status_code == 200
    assert carols_answer.status_code == 200, "another subject's tokens are untouched"


async def test_only_admins_revoke_a_subjects_tokens(orders_app: FastAPI) -> None:
    victim = subject()
    async with asgi_client(orders_app) as client:
        customer = await client.post(
            f"/admin/customers/{victim}/revoke-tokens", headers=bearer(token_for(subject()))
        )
        anonymous = await client.post(f"/admin/customers/{victim}/revoke-tokens")
        logout_anonymous = await client.post("/auth/logout")
        still = await client.get("/orders", headers=bearer(token_for(victim)))

    assert customer.status_code == 403
    assert anonymous.status_code == 401
    assert logout_anonymous.status_code == 401
    assert still.status_code == 200


async def test_a_token_without_jti_logs_out_by_its_second(orders_app: FastAPI) -> None:
    dave = subject()
    now = int(time.time())

    def without_jti(at: int, device: str) -> str:
        claims: dict[str, object] = {"sub": dave, "iss": TEST_AUTH.issuer}
        claims |= {"aud": TEST_AUTH.audience, "iat": at, "exp": at + 600, "device": device}
        return jwt.encode(claims, TEST_AUTH.secret, algorithm="HS256")

    leaving, same_second = without_jti(now, "phone"), without_jti(now, "laptop")
    earlier = without_jti(now - 5, "tablet")
    async with asgi_client(orders_app) as client:
        logout = await client.post("/auth/logout", headers=bearer(leaving))
        answers = [
            (await client.get("/orders", headers=bearer(token))).status_code
            for token in (leaving, same_second, earlier)
        ]

    assert logout.status_code == 204
    # Known by (subject, iat): the token issued in the same second goes too.
    assert answers == [401, 401, 200]


async def test_a_revoked_token_never_reaches_postgresql(
    orders_app: FastAPI, resources: Resources
) -> None:
    token = token_for(subject())
    async with asgi_client(orders_app, bearer(token)) as client:
        assert (await client.post("/auth/logout")).status_code == 204
        with counting_queries(resources.engine) as queries:
            listed = await client.get("/orders")
            placed = await client.post("/orders", json={"items": []})
            # Not JSON: refused before the limiter runs, still as revoked.
            garbled = await client.post(
                "/orders", content=b"{not json", headers={"content-type": "application/json"}
            )

    assert [listed.status_code, placed.status_code, garbled.status_code] == [401, 401, 401]
    assert garbled.headers["www-authenticate"] == REVOKED
    assert queries.statements == []


async def test_checking_a_token_costs_no_round_trip_of_its_own(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = await create_product(client)
    path = f"/products/{product['id']}"
    token = token_for(subject())
    async with asgi_client(app, bearer(token)) as caller:
        await caller.get(path)  # the cache holds it now

        sent: list[bytes] = []
        write = AbstractConnection.send_packed_command

        async def counted(self: AbstractConnection, command: Any, *args: Any, **kw: Any) -> None:
            parts = [command] if isinstance(command, bytes | bytearray | memoryview) else command
            sent.append(b"".join(bytes(part) for part in parts))
            await write(self, command, *args, **kw)

        with monkeypatch.context() as patch:
            patch.setattr(AbstractConnection, "send_packed_command", counted)
            hit = await caller.get(path)

    assert (hit.status_code, hit.headers["x-cache"]) == (200, "hit")
    assert hit.headers["ratelimit-remaining"]
    assert len(sent) == 1, "the limiter, the cached product and the revocation keys: one write"
    assert b"revoked-token:" in sent[0]
    assert b"revoked-before:" in sent[0]


async def test_revocations_last_as_long_as_the_tokens_could(
    orders_app: FastAPI, resources: Resources, admin_headers: dict[str, str]
) -> None:
    erin = subject()
    token = mint_token(TEST_AUTH, erin, ttl_seconds=120)
    async with asgi_client(orders_app) as client:
        assert (await client.post("/auth/logout", headers=bearer(token))).status_code == 204
        revoked = await client.post(f"/admin/customers/{erin}/revoke-tokens", headers=admin_headers)
    assert revoked.status_code == 204

    prefix = resources.settings.redis_key_prefix
    names = [key async for key in resources.redis.scan_iter(match=f"{prefix}revoked-*")]
    assert len(names) == 2
    assert not any(erin.encode() in name for name in names), "no subject in key names"
    ttls = {
        name.decode().removeprefix(prefix).split(":")[0]: await resources.redis.ttl(name)
        for name in names
    }
    leeway = resources.settings.auth_leeway_seconds
    maximum = resources.settings.auth_max_token_lifetime_seconds
    # Until the token's exp (and the leeway its verification grants).
    assert 120 + leeway - 5 <= ttls["revoked-token"] <= 120 + leeway
    # Until every token issued before now has expired.
    assert maximum + leeway - 5 <= ttls["revoked-before"] <= maximum + leeway


async def test_a_revocation_is_gone_when_the_token_expires(resources: Resources) -> None:
    revocations = TokenRevocations(
        resources.redis, resources.settings.model_copy(update={"auth_leeway_seconds": 0})
    )
    now = int(time.time())
    caller = Principal(subject(), token=IssuedToken(now + 1, issued_at=now, token_id="t-1"))
    await revocations.revoke_token(caller)
    key = revocations.keys_of(caller)[0]

    assert 0 < await resources.redis.pttl(key) <= 1000
    await asyncio.sleep(1.2)
    assert not await resources.redis.exists(key)


async def test_every_operation_that_takes_a_token_refuses_a_revoked_one(
    app: FastAPI, orders_app: FastAPI, resources: Resources
) -> None:
    """Whatever the function and the route, before its path, query or body is
    read: the document's every operation with bearer security."""
    reports_app = wiring.reports_app(lambda: resources)
    token = token_for(subject())
    async with asgi_client(orders_app, bearer(token)) as client:
        assert (await client.post("/auth/logout")).status_code == 204

    refused, checked = [], 0
    for number, served in enumerate((app, orders_app, reports_app)):
        for path, operations in served.openapi()["paths"].items():
            for method, operation in operations.items():
                if path.startswith("/health") or {"bearer": []} not in operation["security"]:
                    continue
                concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
                # One client address each: the failed-authentication budget is per address.
                async with asgi_client(served, bearer(token), ip=f"10.0.{number}.{checked}") as c:
                    answer = await c.request(method.upper(), concrete)
                checked += 1
                if answer.headers.get("www-authenticate") != REVOKED:
                    refused.append(f"{method.upper()} {path}: {answer.status_code}")

    assert refused == []
    assert checked >= 20


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, stopped mid-test; never the shared one."""
    server = start_redis()
    yield server
    server.stop()


def given(resources: Resources) -> Callable[[], Resources]:
    return lambda: resources


@pytest.fixture
async def redis_down(
    settings: Settings, own_redis: EmbeddedRedis
) -> AsyncIterator[dict[str, FastAPI]]:
    """The catalog app on a Redis that has stopped, for each fail-closed setting."""
    opened = {
        policy: Resources.from_settings(
            settings.model_copy(
                update={
                    "redis_url": own_redis.url,
                    "auth_revocation_fail_closed": policy,
                    # The breaker stays open for the test: later requests skip Redis.
                    "cache_breaker_cooldown_seconds": 600,
                }
            )
        )
        for policy in ("admin", "always", "never")
    }
    apps = {policy: wiring.catalog_app(given(resources)) for policy, resources in opened.items()}
    for app in apps.values():  # connections that Redis's stop then breaks
        async with asgi_client(app, bearer(token_for(subject()))) as client:
            assert (await client.get("/products")).status_code == 200
    own_redis.stop()
    yield apps
    for resources in opened.values():
        await resources.close()


async def test_with_redis_down_admin_tokens_are_refused_and_customers_pass(
    redis_down: dict[str, FastAPI],
) -> None:
    admin, customer = token_for(subject(), admin=True), token_for(subject())
    metrics.clear_metrics()
    async with asgi_client(redis_down["admin"]) as client:
        refused = await client.get("/products", headers=bearer(admin))
        again = await client.get("/products", headers=bearer(admin))
        passed = await client.get("/products", headers=bearer(customer))
        anonymous = await client.get("/products")
        # Not JSON: answered before the limiter, by a check of its own.
        json_headers = bearer(admin) | {"content-type": "application/json"}
        garbled = await client.post("/categories", content=b"{", headers=json_headers)

    for answer in (refused, again, garbled):
        assert answer.status_code == 503
        assert answer.headers["content-type"] == PROBLEM
        assert int(answer.headers["retry-after"]) > 0
        assert "revoked" in answer.json()["detail"]
    assert passed.status_code == 200
    assert anonymous.status_code == 200
    assert sum(metrics.metric_set[REVOCATION_FAIL_OPEN_METRIC]["Value"]) == 1


async def test_with_redis_down_the_setting_decides_for_every_token(
    redis_down: dict[str, FastAPI],
) -> None:
    admin, customer = token_for(subject(), admin=True), token_for(subject())
    async with (
        asgi_client(redis_down["always"]) as closed,
        asgi_client(redis_down["never"]) as open_,
    ):
        answers = {
            "always": [
                (await closed.get("/products", headers=bearer(t))).status_code
                for t in (admin, customer)
            ],
            "never": [
                (await open_.get("/products", headers=bearer(t))).status_code
                for t in (admin, customer)
            ],
        }

    assert answers == {"always": [503, 503], "never": [200, 200]}


async def test_logout_with_redis_down_is_503_not_a_false_204(
    settings: Settings, own_redis: EmbeddedRedis
) -> None:
    fragile = Resources.from_settings(
        settings.model_copy(
            update={"redis_url": own_redis.url, "auth_revocation_fail_closed": "never"}
        )
    )
    app = wiring.orders_app(lambda: fragile)
    try:
        own_redis.stop()
        async with asgi_client(app, bearer(token_for(subject()))) as client:
            logout = await client.post("/auth/logout")
    finally:
        await fragile.close()

    assert logout.status_code == 503
    assert logout.headers["content-type"] == PROBLEM
    assert int(logout.headers["retry-after"]) > 0
