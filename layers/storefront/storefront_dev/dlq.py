"""``storefront dlq``: list, replay and purge dead letters from a terminal.

    storefront dlq list [--limit N]   the oldest dead letters, with their reasons
    storefront dlq replay ID          put one back on its original stream
    storefront dlq purge [ID]         delete one, or every dead letter

Talks to the Redis that REDIS_URL names, under REDIS_KEY_PREFIX (default
``sf:``), like the deployed functions do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    # Imported where used: `storefront --help` should not load Redis and pydantic.
    from storefront.adapters.redis import RedisClient
    from storefront.events.dead_letters import DeadLetter
    from storefront.settings import Settings

__all__ = ["add_dlq_commands", "format_dead_letters"]

T = TypeVar("T")
_REASON_WIDTH = 100


def add_dlq_commands(subparsers: Any) -> None:
    """Adds ``dlq`` to the ``storefront`` command's subparsers."""
    dlq = subparsers.add_parser("dlq", help="list, replay or purge dead-lettered events")
    commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = commands.add_parser("list", help="the oldest dead letters")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=_list)
    replay = commands.add_parser("replay", help="put a dead letter back on its stream")
    replay.add_argument("id", help="the dead letter's id, as `dlq list` shows it")
    replay.set_defaults(func=_replay)
    purge = commands.add_parser("purge", help="delete one dead letter, or all of them")
    purge.add_argument("id", nargs="?", default=None, help="omit to delete every dead letter")
    purge.set_defaults(func=_purge)


def format_dead_letters(letters: list[DeadLetter], total: int) -> str:
    if not letters:
        return "no dead letters"
    lines = [f"{total} dead letter(s); oldest {len(letters)}:"]
    for letter in letters:
        event = letter.event_type or "(unparseable)"
        lines.append(
            f"{letter.id}  {letter.failed_at}  group={letter.group}  "
            f"deliveries={letter.deliveries}  {event}  aggregate={letter.aggregate_id or '-'}"
        )
        lines.append(f"    from {letter.original_stream} {letter.original_id}")
        reason = letter.reason.replace("\n", " ")
        if len(reason) > _REASON_WIDTH:
            reason = reason[: _REASON_WIDTH - 3] + "..."
        lines.append(f"    reason: {reason}")
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    from storefront.events.dead_letters import count_dead_letters, list_dead_letters

    async def show(redis: RedisClient, settings: Settings) -> str:
        letters = await list_dead_letters(redis, settings, args.limit)
        return format_dead_letters(letters, await count_dead_letters(redis, settings))

    print(_with_redis(show))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from storefront.events.dead_letters import replay

    async def put_back(redis: RedisClient, settings: Settings) -> str:
        replayed = await replay(redis, settings, args.id)
        return f"replayed {replayed.id} onto {replayed.stream} as {replayed.stream_id}"

    return _report(put_back)


def _purge(args: argparse.Namespace) -> int:
    from storefront.events.dead_letters import purge

    async def delete(redis: RedisClient, settings: Settings) -> str:
        purged = await purge(redis, settings, args.id)
        return f"purged {args.id}" if args.id else f"purged {purged} dead letter(s)"

    return _report(delete)


def _report(action: Callable[[RedisClient, Settings], Awaitable[str]]) -> int:
    from storefront.errors import NotFound

    try:
        print(_with_redis(action))
    except NotFound as error:
        print(error.detail, file=sys.stderr)
        return 1
    return 0


def _with_redis(action: Callable[[RedisClient, Settings], Awaitable[T]]) -> T:
    from storefront.adapters.redis import create_redis
    from storefront.settings import Settings

    # Read the environment now, not the cached get_settings() of an earlier call.
    settings = Settings()

    async def run() -> T:
        redis = create_redis(settings)
        try:
            return await action(redis, settings)
        finally:
            await redis.aclose()

    return asyncio.run(run())
