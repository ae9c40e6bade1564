"""``storefront run``: the whole stack on one machine, without Docker.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL, else from embedded
servers whose data stays under ``.local/`` between runs; S3 (reports) from
REPORTS_BUCKET, else moto's server, in memory; SES (order emails) from the
same moto server; Stripe from STRIPE_SECRET_KEY (with STRIPE_WEBHOOK_SECRET),
else a localstripe whose webhooks are sent to this stack. Then migrations, the
demo catalog (once), the local API Gateway serving ``template.yaml``'s routes,
and its schedules: each scheduled function (relay, workers, cleanup) is invoked
at start-up and on its schedule, so the order saga runs locally. Every function
runs in its own warm container process. ``LOCAL_SCHEDULES=off`` leaves the
scheduled functions idle (to drive them from tests or a debugger instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from storefront.migrate import head_revision, upgrade_to_head
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.banner import banner, functions_summary, schedules_summary
from storefront_dev.databases import create_database, with_database
from storefront_dev.demo import load_demo_catalog
from storefront_dev.embedded import (
    start_localstripe,
    start_postgres,
    start_redis,
    start_s3,
    verify_email_identity,
)
from storefront_dev.gateway import LocalGateway
from storefront_dev.lambda_process import FunctionFleet
from storefront_dev.local_auth import local_auth_environment
from storefront_dev.routes import Router
from storefront_dev.scheduler import LocalScheduler, parse_expression
from storefront_dev.templates import StackTemplate, TemplateError, load_template

DEFAULT_PORT = 3000
LOCAL_DATABASE = "storefront"
LOCAL_REPORTS_BUCKET = "storefront-reports-local"
SCHEDULES_VARIABLE = "LOCAL_SCHEDULES"
WEBHOOK_PATH = "/payments/stripe/webhook"
# Under .local/: the URLs of this run's servers (see _remember).
SERVICES_FILE = "services.json"


class StartupError(Exception):
    """The stack cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Backends:
    database_url: str
    redis_url: str
    redis_key_prefix: str


@dataclass(frozen=True)
class RunningStack:
    url: str
    template: StackTemplate
    backends: Backends
    sample_product_id: str | None
    schedules_on: bool = True


def step(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def project_root() -> Path:
    """The directory holding template.yaml: the working directory or one above it."""
    here = Path.cwd().resolve()
    # The package's own checkout, for an editable install run from elsewhere.
    package_checkout = Path(__file__).resolve().parents[3]
    for directory in (here, *here.parents, package_checkout):
        if (directory / "template.yaml").is_file():
            return directory
    raise StartupError("no template.yaml here or above; run from the Storefront checkout")


def resolve_port(port: int | None) -> int:
    if port is not None:
        return port
    given = os.environ.get("PORT")
    if not given:
        return DEFAULT_PORT
    if not given.isdigit():
        raise StartupError(f"PORT={given!r} is not a port number")
    return int(given)


@contextlib.contextmanager
def local_stack(port: int | None = None, root: Path | None = None) -> Iterator[RunningStack]:
    """Start everything; stop all of it, in reverse order, when the block exits."""
    root = root or project_root()
    port = resolve_port(port)
    # Fail fast, before servers start, on what would stop the stack anyway.
    _check_port_is_free(port)
    template = load_template(root / "template.yaml")
    schedules_on = _schedules_on()
    for schedule in template.schedules:
        parse_expression(schedule.expression)  # one the scheduler cannot run stops us here
    with contextlib.ExitStack() as cleanup:
        backends = _start_backends(root, cleanup)
        _migrate(backends)
        sample_product_id = _load_demo(backends)
        environment = (
            _function_environment(backends, root)
            | _start_aws(cleanup, root)
            | _start_payments(cleanup, root, f"http://127.0.0.1:{port}")
        )
        fleet = FunctionFleet(template.functions, environment)
        scheduler = LocalScheduler(fleet, template.schedules if schedules_on else ())
        # Exit callbacks run in reverse: the scheduler stops issuing invocations
        # first, the fleet's stop then ends the running ones, and only then can
        # the scheduler's threads be joined.
        cleanup.callback(_quietly, "schedules", scheduler.join)
        cleanup.callback(_quietly, "function containers", fleet.stop)
        step(functions_summary(template))
        gateway = _start_gateway(Router(template.routes), fleet, port)
        cleanup.callback(_quietly, "gateway", gateway.stop)
        step(f"gateway: listening on {gateway.url}")
        if template.schedules:
            step(schedules_summary(template, schedules_on))
        scheduler.start()
        cleanup.callback(_quietly, "schedules", scheduler.stop)
        yield RunningStack(gateway.url, template, backends, sample_product_id, schedules_on)


def _schedules_on() -> bool:
    value = os.environ.get(SCHEDULES_VARIABLE, "on").strip().lower()
    if value not in ("on", "off"):
        raise StartupError(f"{SCHEDULES_VARIABLE}={value!r}: use on (the default) or off")
    return value == "on"


def _start_backends(root: Path, cleanup: contextlib.ExitStack) -> Backends:
    database_url = os.environ.get("DATABASE_URL")
    if database_url:
        step(f"PostgreSQL: {_redacted(database_url)} (DATABASE_URL)")
        name = make_url(database_url).database or LOCAL_DATABASE
        # Friendly on a fresh server; without the right to create databases,
        # migrations report a missing one clearly enough.
        with contextlib.suppress(Exception):
            asyncio.run(create_database(database_url, name, exist_ok=True))
    else:
        step("PostgreSQL: starting the embedded server, data in .local/postgres")
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI);
            # the embedded server copes, and the warning would only alarm.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            postgres = start_postgres(root / ".local" / "postgres")
        cleanup.callback(_quietly, "PostgreSQL", postgres.stop)
        asyncio.run(create_database(postgres.url(), LOCAL_DATABASE, exist_ok=True))
        database_url = with_database(postgres.url(), LOCAL_DATABASE)
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        step(f"Redis: {_redacted(redis_url)} (REDIS_URL)")
    else:
        redis = start_redis(root / ".local" / "redis")
        cleanup.callback(_quietly, "Redis", redis.stop)
        redis_url = redis.url
        step(f"Redis: embedded server on {redis_url}, data in .local/redis")
    prefix = os.environ.get("REDIS_KEY_PREFIX") or Settings.model_fields["redis_key_prefix"].default
    return Backends(database_url, redis_url, str(prefix))


def _start_aws(cleanup: contextlib.ExitStack, root: Path) -> dict[str, str]:
    """The reports bucket and SES: REPORTS_BUCKET's (real AWS, your
    credentials), else moto's server with a bucket of its own, whose SES
    receives the order emails (``storefront emails`` lists them)."""
    given = os.environ.get("REPORTS_BUCKET")
    if given:
        step(f"S3: bucket {given} (REPORTS_BUCKET); SES: your account's, sender {_sender()}")
        return {}
    aws = start_s3(LOCAL_REPORTS_BUCKET)
    cleanup.callback(_quietly, "S3", aws.stop)
    verify_email_identity(aws.url, _sender())
    _remember(root, moto_url=aws.url)
    step(f"S3 and SES: embedded moto server on {aws.url}, bucket {aws.bucket} (in memory)")
    return aws.environment() | {"SES_ENDPOINT_URL": aws.url}


def _sender() -> str:
    return os.environ.get("EMAIL_SENDER") or str(Settings.model_fields["email_sender"].default)


def _start_payments(cleanup: contextlib.ExitStack, root: Path, stack_url: str) -> dict[str, str]:
    """Stripe: your test-mode key (STRIPE_SECRET_KEY, and STRIPE_WEBHOOK_SECRET
    from ``stripe listen``), else a localstripe sending its webhooks here."""
    webhook = f"{stack_url}{WEBHOOK_PATH}"
    if os.environ.get("STRIPE_SECRET_KEY"):
        if not os.environ.get("STRIPE_WEBHOOK_SECRET"):
            raise StartupError(
                "STRIPE_SECRET_KEY is set but STRIPE_WEBHOOK_SECRET is not: run"
                f" `stripe listen --forward-to {webhook}` and export the secret it prints"
            )
        step(f"Stripe: your account (STRIPE_SECRET_KEY); webhooks forwarded to {webhook}")
        return {}
    try:
        stripe = start_localstripe()
    except RuntimeError as error:
        raise StartupError(str(error)) from error
    cleanup.callback(_quietly, "localstripe", stripe.stop)
    secret = f"whsec_{secrets.token_hex(16)}"
    stripe.register_webhook(webhook, secret)
    _remember(root, stripe_url=stripe.url, stack_url=stack_url)
    step(f"Stripe: localstripe on {stripe.url}, webhooks to {webhook}")
    return stripe.environment() | {"STRIPE_WEBHOOK_SECRET": secret}


def _remember(root: Path, **urls: str) -> None:
    """Where this run's servers listen, for ``storefront pay`` and ``storefront emails``."""
    path = root / ".local" / SERVICES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps(known | urls, indent=2))


def _migrate(backends: Backends) -> None:
    upgrade_to_head(backends.database_url)
    step(f"migrations: database at revision {head_revision()}")


def _load_demo(backends: Backends) -> str | None:
    settings = Settings(
        database_url=backends.database_url,
        redis_url=backends.redis_url,
        redis_key_prefix=backends.redis_key_prefix,
    )

    async def load() -> str | None:
        resources = Resources.from_settings(settings)
        try:
            loaded = await load_demo_catalog(resources.engine, resources.cache)
        finally:
            await resources.close()
        if loaded.created_products:
            step(
                f"demo catalog: loaded {loaded.created_products} products"
                f" in {loaded.created_categories} new categories"
            )
        else:
            step("demo catalog: products already present, left as they are")
        return None if loaded.sample_product_id is None else str(loaded.sample_product_id)

    return asyncio.run(load())


def _function_environment(backends: Backends, root: Path) -> dict[str, str]:
    auth = local_auth_environment(Settings(), root)
    if auth:
        step("auth: HS256, secret in .local/ (or AUTH_HS256_SECRET); storefront token mints")
    else:
        step("auth: tokens from AUTH_JWKS_URL / AUTH_SECRET_ARN; storefront token is off")
    return {
        "DATABASE_URL": backends.database_url,
        "REDIS_URL": backends.redis_url,
        "REDIS_KEY_PREFIX": backends.redis_key_prefix,
        **auth,
    }


def _check_port_is_free(port: int) -> None:
    with socket.socket() as probe:
        # As the server will: a port left in TIME_WAIT by the last run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise StartupError(f"port {port} is in use; choose another with PORT=") from error


def _start_gateway(router: Router, fleet: FunctionFleet, port: int) -> LocalGateway:
    try:
        gateway = LocalGateway(router, fleet, port=port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} is in use; choose another with PORT=") from error
        raise
    gateway.start()
    return gateway


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # Stopping takes a moment; a second Ctrl-C must not cut it off halfway.
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    raise _Stop(signal.Signals(signum).name)


def run_local_stack(port: int | None) -> int:
    """Run until SIGINT or SIGTERM; 0 after a clean stop, 1 when the stack cannot start."""
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, _raise_stop) for signum in stop_signals}
    try:
        with local_stack(port) as stack:
            print(banner(stack), file=sys.stderr, flush=True)
            signal.pause()
    except _Stop as stop:
        # Cleanup already ran on the way out of the with-block.
        step(f"stopped ({stop})")
        return 0
    except (StartupError, TemplateError) as error:
        step(f"cannot start: {error}")
        return 1
    except Exception as error:
        traceback.print_exc()
        step(f"cannot start: {type(error).__name__}: {error}")
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def _quietly(what: str, stop: Callable[[], object]) -> None:
    # One part failing to stop must not leave the others running.
    try:
        stop()
    except Exception as error:
        step(f"stopping {what} failed: {error}")


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


__all__ = ["Backends", "RunningStack", "banner", "local_stack", "project_root", "run_local_stack"]
