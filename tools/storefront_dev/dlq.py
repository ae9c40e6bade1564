"""``storefront dlq``: list, replay and purge dead letters from a terminal.

    storefront dlq list [--limit N]   the oldest dead letters, with their reasons
    storefront dlq replay ID          hand one to its group again (through the outbox)
    storefront dlq purge [ID]         delete one, or every dead letter

Talks to the PostgreSQL that DATABASE_URL names, where dead letters are kept,
like the deployed functions do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    # Imported where used: `storefront --help` should not load SQLAlchemy and pydantic.
    from sqlalchemy.ext.asyncio import AsyncEngine

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
    replay = commands.add_parser("replay", help="hand a dead letter to its group again")
    replay.add_argument("id", type=int, help="the dead letter's id, as `dlq list` shows it")
    replay.set_defaults(func=_replay)
    purge = commands.add_parser("purge", help="delete one dead letter, or all of them")
    purge.add_argument(
        "id", type=int, nargs="?", default=None, help="omit to delete every dead letter"
    )
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
        lines.append(f"    from partition {letter.partition}, sequence {letter.sequence}")
        reason = letter.reason.replace("\n", " ")
        if len(reason) > _REASON_WIDTH:
            reason = reason[: _REASON_WIDTH - 3] + "..."
        lines.append(f"    reason: {reason}")
    return "\n".join(lines)


def _list(args: argparse.Namespace) -> int:
    from storefront.events.dead_letters import count_dead_letters, list_dead_letters

    async def show(engine: AsyncEngine, settings: Settings) -> str:
        letters = await list_dead_letters(engine, args.limit)
        return format_dead_letters(letters, await count_dead_letters(engine))

    print(_with_database(show))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from storefront.events.dead_letters import replay

    async def put_back(engine: AsyncEngine, settings: Settings) -> str:
        replayed = await replay(engine, settings.event_partitions, args.id)
        return f"replayed {replayed.id} for {replayed.group}: outbox row {replayed.outbox_id}"

    return _report(put_back)


def _purge(args: argparse.Namespace) -> int:
    from storefront.events.dead_letters import purge

    async def delete(engine: AsyncEngine, settings: Settings) -> str:
        purged = await purge(engine, args.id)
        return f"purged {args.id}" if args.id else f"purged {purged} dead letter(s)"

    return _report(delete)


def _report(action: Callable[[AsyncEngine, Settings], Awaitable[str]]) -> int:
    from storefront.errors import DomainError

    try:
        print(_with_database(action))
    except DomainError as error:
        print(error.detail, file=sys.stderr)
        return 1
    return 0


def _with_database(action: Callable[[AsyncEngine, Settings], Awaitable[T]]) -> T:
    from storefront.adapters.database import create_engine
    from storefront.settings import Settings

    # Read the environment now, not the cached get_settings() of an earlier call.
    settings = Settings()

    async def run() -> T:
        engine = create_engine(settings)
        try:
            return await action(engine, settings)
        finally:
            await engine.dispose()

    return asyncio.run(run())
