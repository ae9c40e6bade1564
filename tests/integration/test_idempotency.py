"""Idempotency keys on real PostgreSQL: claim and answer in the effect's transaction."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text

from storefront.adapters.database import UnitOfWork
from storefront.catalog import repository
from storefront.catalog.domain import NewCategory
from storefront.catalog.tables import categories
from storefront.errors import InvalidInput
from storefront.events.cleanup import run_cleanup
from storefront.idempotency import (
    IdempotencyKey,
    KeyReusedForAnotherRequest,
    StoredResponse,
    claim,
    remember,
)
from storefront.resources import Resources


@pytest.fixture(autouse=True)
async def no_keys(resources: Resources) -> None:
    async with resources.engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))


def key_for(body: bytes, key: str = "key-1", scope: str = "alice") -> IdempotencyKey:
    return IdempotencyKey.of(key, scope, "POST /categories", body)


async def create_once(resources: Resources, key: IdempotencyKey, name: str) -> StoredResponse:
    """The effect under test: a category, created at most once per key."""
    async with UnitOfWork(resources.engine) as uow:
        stored = await claim(uow.connection, key)
        if stored is not None:
            return stored
        category = await repository.add_category(uow.connection, NewCategory(name=name))
        answer = StoredResponse(201, category.model_dump(mode="json"))
        await remember(uow.connection, key, answer.status, answer.body)
        await uow.commit()
        return answer


async def category_count(resources: Resources) -> int:
    async with resources.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(categories)) or 0)


async def test_the_same_key_replays_the_first_answer(resources: Resources) -> None:
    first = await create_once(resources, key_for(b"tea"), "Tea")
    again = await create_once(resources, key_for(b"tea"), "Tea")

    assert again == first
    assert await category_count(resources) == 1


async def test_the_same_key_with_another_body_is_refused(resources: Resources) -> None:
    await create_once(resources, key_for(b"tea"), "Tea")
    with pytest.raises(KeyReusedForAnotherRequest) as refused:
        await create_once(resources, key_for(b"coffee"), "Coffee")

    assert refused.value.field == "Idempotency-Key"
    assert await category_count(resources) == 1


async def test_twenty_concurrent_requests_with_one_key_act_once(resources: Resources) -> None:
    key = key_for(b"tea", key=str(uuid.uuid4()))
    answers = await asyncio.gather(*(create_once(resources, key, "Tea") for _ in range(20)))

    assert await category_count(resources) == 1
    assert len({answer.body["id"] for answer in answers}) == 1


async def test_a_rolled_back_request_frees_its_key(resources: Resources) -> None:
    key = key_for(b"tea")

    async def claim_then_fail() -> None:
        async with UnitOfWork(resources.engine) as uow:
            assert await claim(uow.connection, key) is None
            raise RuntimeError("the effect failed before the commit")

    with pytest.raises(RuntimeError):
        await claim_then_fail()

    answer = await create_once(resources, key, "Tea")
    assert answer.status == 201
    assert await category_count(resources) == 1


async def test_keys_are_scoped_to_their_principal(resources: Resources) -> None:
    await create_once(resources, key_for(b"x", scope="alice"), "For Alice")
    await create_once(resources, key_for(b"x", scope="bob"), "For Bob")
    assert await category_count(resources) == 2


async def test_an_expired_key_can_be_used_again(resources: Resources) -> None:
    key = key_for(b"tea")
    await create_once(resources, key, "Tea")
    async with resources.engine.begin() as connection:
        await connection.execute(
            text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
        )

    await create_once(resources, key, "Tea again")
    assert await category_count(resources) == 2


@pytest.mark.parametrize("bad", ["", "x" * 256, "naïve", "line\nbreak"])
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        IdempotencyKey.of(bad, "alice", "POST /orders", b"{}")
    assert refused.value.field == "Idempotency-Key"


async def test_cleanup_removes_expired_keys_only(resources: Resources) -> None:
    await create_once(resources, key_for(b"old", key="old"), "Old")
    await create_once(resources, key_for(b"new", key="new"), "New")
    async with resources.engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_keys SET expires_at = now() - interval '1 hour' "
                "WHERE key = 'old'"
            )
        )

    stats = await run_cleanup(resources.engine, resources.redis, resources.settings, groups=())

    assert stats.idempotency_keys_deleted == 1
    async with resources.engine.connect() as connection:
        left = (await connection.execute(text("SELECT key FROM idempotency_keys"))).scalars().all()
    assert left == ["new"]
