"""The ``storefront`` command: local stack and operations.

storefront migrate        apply database migrations (DATABASE_URL)
storefront run            the local stack (what ``make run`` starts)
storefront token          a bearer token for the local stack, alone on stdout
storefront pay ORDER_ID   pay an order on the local stack's localstripe
storefront emails         the order emails the local stack sent
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from storefront_dev.dlq import add_dlq_commands
from storefront_dev.local_payments import add_payment_commands


def _migrate(args: argparse.Namespace) -> int:
    from storefront.adapters.endpoints import database_url
    from storefront.migrate import upgrade_to_head
    from storefront.settings import get_settings

    upgrade_to_head(database_url(get_settings()))
    print("migrations applied", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    from storefront_dev.local_stack import run_local_stack

    return run_local_stack(port=args.port)


def _token(args: argparse.Namespace) -> int:
    from storefront.settings import Settings
    from storefront_dev.local_auth import NotMintable, local_auth, mint_token
    from storefront_dev.local_stack import StartupError, project_root

    try:
        auth = local_auth(Settings(), project_root())
        token = mint_token(auth, args.sub, admin=args.admin, ttl_seconds=args.ttl)
    except (NotMintable, StartupError) as error:
        print(f"storefront token: {error}", file=sys.stderr)
        return 2
    # Only the token on stdout, so TOKEN=$(storefront token ...) captures it whole.
    print(token)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="storefront", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    run = commands.add_parser("run", help="start the local stack (make run)")
    run.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")
    run.set_defaults(func=_run)
    token = commands.add_parser("token", help="print a bearer token for the local stack")
    token.add_argument("--sub", required=True, help="the subject (customer id)")
    token.add_argument("--admin", action="store_true", help="an administrator's token")
    token.add_argument("--ttl", type=_positive, default=3600, help="lifetime in seconds")
    token.set_defaults(func=_token)
    add_dlq_commands(commands)
    add_payment_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
