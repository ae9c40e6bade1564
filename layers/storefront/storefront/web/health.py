"""Liveness (no I/O) and readiness (PostgreSQL and Redis, with timings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from storefront.web.dependencies import CacheDep, Engine
from storefront.web.problems import problem

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/health")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "A dependency is down"}})
async def readiness(engine: Engine, cache: CacheDep) -> Response:
    async def postgres() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    checks = dict(
        zip(
            ("postgres", "redis"),
            await asyncio.gather(_timed(postgres()), _timed(cache.ping())),
            strict=True,
        )
    )
    if all(check["ok"] for check in checks.values()):
        return JSONResponse({"status": "ok", "checks": checks})
    down = ", ".join(name for name, check in checks.items() if not check["ok"])
    return problem(
        503,
        "Service unavailable",
        f"Not ready: {down} unreachable.",
        headers={"Retry-After": "5"},
        checks=checks,
    )


async def _timed(check: Awaitable[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
    except Exception as error:
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        return {"ok": False, "ms": elapsed, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
