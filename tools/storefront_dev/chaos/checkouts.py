"""Chaos scenario 6: checkouts paid through Stripe while the payments and
notifications workers are SIGKILLed and the payment provider drops out.

Customers, each with a token subject and an email address of their own,
arrive at a steady rate, put products in their cart and check out through
the orders API (an Idempotency-Key per checkout, retried with the same key
on 5xx, 409 and 429), then do what a front end does: poll the order until
its PaymentIntent appears and pay it with the official stripe SDK against
localstripe (a card PaymentMethod, attached to the intent, then confirmed).
Most pay with 4242 4242 4242 4242; some with 4000 0000 0000 0341, which is
declined; some never pay, and their hold expires (the scenario's
``CHECKOUT_HOLD_SECONDS`` is short); some cancel once their order is
confirmed, which refunds it. localstripe posts its
signed webhooks to this process, which serves the orders app's
``POST /payments/stripe/webhook`` on a loopback port. The orders function
runs in this process as Lambda runs it: containers of their own (each its
own app, engine and Redis client, as scenario 1's clients), each serving one
request at a time, a new one when all are busy (:class:`OrdersFleet`).

The relay, the inventory and order workers and the checkout sweep run as
real processes, one each; the payments and notifications workers two each.
A random one of those four is SIGKILLed and started again, ``kills`` times.
Once, the provider drops out: localstripe is SIGSTOPped (a stop and restart
would lose its in-memory state) for longer than the SDK's timeout, so calls
time out, the gateway's breaker opens and the payments worker's events wait,
not dead-lettered, until SIGCONT.

Then, once everything has settled, the books, from PostgreSQL, localstripe
and moto's SES:

* no lost order: every checkout answered 201 is stored and ended
  ``CONFIRMED``, ``EXPIRED``, ``PAYMENT_FAILED`` or ``CANCELLED``;
* no double charge: one PaymentIntent on record per order; on the provider,
  at most one unrefunded successful payment per order, exactly one (the
  intent on record) for a confirmed order and none for any other; no intent
  of an ended order left payable;
* no leaked hold: each product's reserved stock equals its confirmed orders'
  quantities, and only confirmed orders keep a reservation;
* each email once: one confirmation per order ever confirmed, one
  cancellation per order cancelled, expired or failed; a second copy only
  where the notifications worker recorded a resend (its one documented
  window: killed after SES accepted the email, before the mark committed);
* no dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import stripe

from storefront import wiring
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import seed_products
from storefront_dev.bench.processes import FunctionProcess
from storefront_dev.chaos.kills import (
    CHAOS_FUNCTION_ENVIRONMENT,
    ChaosFailure,
    reserved_not_confirmed,
    unsettled,
)
from storefront_dev.embedded import (
    LOCAL_AWS_CREDENTIALS,
    LOCAL_STRIPE_KEY,
    EmbeddedStripe,
    free_port,
    start_s3,
    verify_email_identity,
)
from storefront_dev.local_payments import ACCEPTED_CARD

__all__ = ["CHECKOUT_GROUPS", "CheckoutReport", "Plan", "run_checkouts"]

DECLINED_CARD = "4000000000000341"
WEBHOOK_PATH = "/payments/stripe/webhook"
EMAIL_SENDER = "orders@chaos.storefront.example"
REGION = "us-east-1"

CHECKOUT_GROUPS = ("inventory", "orders", "payments", "notifications")
ENDED = frozenset({"EXPIRED", "PAYMENT_FAILED", "CANCELLED"})
TERMINAL = ENDED | {"CONFIRMED"}

# (function, processes of it): overlapping invocations for the two workers
# that are killed, so one is often alive while the other restarts.
FUNCTIONS = (
    ("OutboxRelayFunction", 1),
    ("InventoryWorkerFunction", 1),
    ("OrderWorkerFunction", 1),
    ("PaymentsWorkerFunction", 2),
    ("NotificationsWorkerFunction", 2),
    ("CheckoutSweepFunction", 1),
)
VICTIMS = frozenset({"PaymentsWorkerFunction", "NotificationsWorkerFunction"})
PAYMENTS = "PaymentsWorkerFunction"

# What the functions run with here. The provider's calls time out after 2 s
# (the drop lasts longer; with the SDK's two retries and their backoff a call
# gives up after 7 to 9 s) and the breaker tries again 3 s after a failure.
# Leases last 12 s, not scenario 1's 5 s: a lease is renewed between rounds,
# so it must outlast a round (deployed: 90 s against a 70 s timeout), and a
# payments round waits that long on a provider that is away; a shorter lease
# hands the partition to the other worker mid-call, and the event is handled
# twice. A SIGKILLed worker's partitions wait out the lease: 12 s of delay.
STRIPE_ENVIRONMENT = {
    "STRIPE_TIMEOUT_SECONDS": "2",
    "STRIPE_BREAKER_COOLDOWN_SECONDS": "3",
    "WORKER_CLAIM_MIN_IDLE_MS": "12000",
}
LEASE_SECONDS = int(STRIPE_ENVIRONMENT["WORKER_CLAIM_MIN_IDLE_MS"]) / 1000
# The books read the workers' logs (a resent email, a provider that failed):
# unbuffered, a SIGKILL loses none of the lines a process wrote before it.
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}

# How the notifications worker says it sent an email on a claim an earlier
# attempt left unmarked (storefront.notifications.service).
RESENT_MESSAGE = "order email sent again"
# How a payments worker run ends while the provider is away: the function
# runner prints the invocation's error (storefront.payments.gateway's words).
PROVIDER_DOWN = "PaymentProviderUnavailable"
BREAKER_OPEN = "not retried yet"


class Plan(StrEnum):
    PAY = "pays"
    DECLINE = "declined card"
    ABANDON = "never pays"
    CANCEL = "pays, then cancels"


# Seven in ten pay; one each in ten is declined, walks away, cancels once paid.
PLANS = (Plan.PAY,) * 7 + (Plan.DECLINE, Plan.ABANDON, Plan.CANCEL)


@dataclass
class CheckoutReport:
    checkouts: int = 0  # answered 201
    rate: float = 0.0  # customers arriving a second
    at_once: int = 0  # at most in the shop together
    most_at_once: int = 0
    containers: int = 0  # of the orders function, at the end
    client_retries: int = 0
    plans: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # as the customers saw them
    finished: int = 0  # customers done
    done: bool = False
    kills: Counter[str] = field(default_factory=Counter)
    drop_seconds: float = 0.0
    drop_at: int = 0  # checkouts answered before the provider dropped out
    checkouts_during_drop: int = 0
    catch_up_seconds: float | None = None
    provider_failures: int = 0  # calls that failed after the SDK's retries
    breaker_refusals: int = 0  # runs the open breaker ended at once
    webhooks: Counter[int] = field(default_factory=Counter)
    webhook_refusals: list[str] = field(default_factory=list)  # the first few non-2xx bodies
    statuses: dict[str, int] = field(default_factory=dict)
    intents_recorded: int = 0
    # Seconds from the checkout's commit to its intent on record: median, p95, max.
    intent_delay: tuple[float, float, float] = (0.0, 0.0, 0.0)
    intents_on_provider: int = 0
    orphan_intents: int = 0
    payments: int = 0  # succeeded intents on the provider
    refunds: int = 0
    refunds_repeated: int = 0  # refunds beyond the first of an intent
    refunded_twice: int = 0  # intents refunded more than once
    canceled_intents: int = 0
    confirmations: int = 0
    cancellations: int = 0
    resends: int = 0
    sent_twice: int = 0
    dead_letters: int = 0
    seconds_placing: float = 0.0
    seconds_settling: float = 0.0
    # How late this process's event loop ran (customers, the orders function,
    # the webhook): p95 and max, in seconds; a busy machine shows here first.
    loop_lag: tuple[float, float] = (0.0, 0.0)
    # (wall clock, what happened): the faults, for a post-mortem beside the logs.
    timeline: list[tuple[float, str]] = field(default_factory=list)
    # Payments workers are not killed around the drop (see _drop_provider):
    # from this many checkouts until the drop is over.
    spare_payments_from: int = 0
    drop_over: bool = False
    restarting_payments: bool = False
    last_payments_kill: float = float("-inf")  # time.monotonic() of its restart

    def note(self, what: str) -> None:
        self.timeline.append((time.time(), what))

    def lines(self) -> list[str]:
        kills = ", ".join(f"{name} {count}" for name, count in sorted(self.kills.items()))
        plans = ", ".join(f"{plan} {count}" for plan, count in self.plans.most_common())
        outcomes = ", ".join(f"{name} {count}" for name, count in self.outcomes.most_common())
        webhooks = ", ".join(f"{code}: {n}" for code, n in sorted(self.webhooks.items()))
        caught_up = (
            "never" if self.catch_up_seconds is None else f"{self.catch_up_seconds:.1f} s after"
        )
        return [
            f"checkouts: {self.checkouts:,} by customers arriving {self.rate:g} a second,"
            f" {self.most_at_once} in the shop at once at most (limit {self.at_once}),"
            f" all through in {self.seconds_placing:.1f} s ({self.client_retries} client retries);"
            f" orders function: {self.containers} containers; this process's event loop late"
            f" {self.loop_lag[0] * 1000:.0f} ms (p95), {self.loop_lag[1] * 1000:.0f} ms (max)",
            f"customers: {plans}; saw: {outcomes}",
            f"SIGKILLs: {sum(self.kills.values())} ({kills})",
            f"provider drop: localstripe SIGSTOPped {self.drop_seconds:.1f} s from checkout"
            f" {self.drop_at:,}; {self.checkouts_during_drop} checkouts answered 201 meanwhile;"
            f" every order placed before had its intent {caught_up} SIGCONT",
            f"payments worker runs ended on {PROVIDER_DOWN} (not charged to their events):"
            f" {self.provider_failures} after the SDK's retries timed out,"
            f" {self.breaker_refusals} at once by the open breaker",
            f"webhooks answered: {webhooks}",
            *(f"  webhook refused: {body}" for body in self.webhook_refusals),
            f"settled {self.seconds_settling:.1f} s after the last customer",
            f"orders: {self.statuses}",
            f"intents: {self.intents_recorded:,} on record (one per order at most), made"
            f" {self.intent_delay[0]:.1f} s after the checkout (median; p95"
            f" {self.intent_delay[1]:.1f} s, max {self.intent_delay[2]:.1f} s),"
            f" {self.intents_on_provider:,} on localstripe ({self.orphan_intents} made twice:"
            f" localstripe ignores Idempotency-Key), {self.payments:,} succeeded,"
            f" {self.canceled_intents:,} cancelled; double charges: 0",
            f"refunds: {self.refunds:,}, every payment of an order not confirmed refunded;"
            f" {self.refunds_repeated} repeated on {self.refunded_twice} intents (a request"
            " retried after a kill or a timeout: localstripe ignores Idempotency-Key)",
            f"emails: {self.confirmations:,} confirmations, {self.cancellations:,} cancellations,"
            f" 0 missing; {self.resends} resends recorded (EmailResent),"
            f" {self.sent_twice} sent twice",
            f"dead letters: {self.dead_letters}; reserved stock = confirmed quantities: yes",
        ]


# -- the orders function -------------------------------------------------------


class _Container:
    """One warm orders function container: its own app, engine and Redis client."""

    def __init__(self, settings: Settings) -> None:
        self.resources = Resources.from_settings(settings)
        app = wiring.orders_app(lambda: self.resources)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders"
        )

    async def close(self) -> None:
        await self.client.aclose()
        await self.resources.close()


class OrdersFleet:
    """The orders function, in this process: as on Lambda, a container serves
    one request at a time, and a request that finds every container busy
    gets a new one, up to ``containers``, then waits for one. The customers'
    requests and localstripe's webhooks share it, as they share the function.

    (One app taking many requests at once would not be the function: its
    pool of 1 + 2 connections runs out and it answers 503, and localstripe,
    unlike Stripe, never sends a webhook again.)"""

    def __init__(self, settings: Settings, containers: int) -> None:
        self._settings = settings
        self._idle: asyncio.Queue[_Container] = asyncio.Queue()
        self._all: list[_Container] = []
        self._limit = containers

    @property
    def containers(self) -> int:
        return len(self._all)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        if self._idle.empty() and len(self._all) < self._limit:
            self._all.append(_Container(self._settings))
            container = self._all[-1]
        else:
            container = await self._idle.get()
        try:
            return await container.client.request(
                method, path, headers=headers, json=json, content=content
            )
        finally:
            self._idle.put_nowait(container)

    async def close(self) -> None:
        for container in self._all:
            await container.close()


class WebhookServer:
    """Stripe's webhook on a loopback port of this process: aiohttp takes
    localstripe's POST and hands its raw body and headers to the orders
    function, as API Gateway and Mangum do."""

    def __init__(self, fleet: OrdersFleet, report: CheckoutReport) -> None:
        self._fleet = fleet
        self._report = report
        self._runner: Any = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    async def start(self) -> None:
        from aiohttp import web

        server = web.Application()
        server.router.add_post(WEBHOOK_PATH, self._forward)
        self._runner = web.AppRunner(server, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _forward(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.read()
        headers = {
            name: request.headers[name]
            for name in ("Content-Type", "Stripe-Signature")
            if name in request.headers
        }
        answer = await self._fleet.request("POST", WEBHOOK_PATH, headers=headers, content=body)
        self._report.webhooks[answer.status_code] += 1
        if answer.status_code >= 300 and len(self._report.webhook_refusals) < 5:
            self._report.webhook_refusals.append(f"{answer.status_code} {answer.text[:300]}")
        return web.Response(
            status=answer.status_code,
            body=answer.content,
            headers={"Content-Type": answer.headers.get("content-type", "application/json")},
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# -- the customers -------------------------------------------------------------


@dataclass
class _Shop:
    """What every customer shares: the orders function and a front end's Stripe."""

    env: BenchEnvironment
    fleet: OrdersFleet
    stripe: stripe.StripeClient
    report: CheckoutReport
    products: list[uuid.UUID]
    hold_seconds: int
    placed: dict[uuid.UUID, Plan]

    async def call(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        *,
        body: Any = None,
        retry: frozenset[int] = frozenset({409, 429}),
    ) -> httpx.Response:
        """As a client would: 5xx and ``retry`` again, with the same headers
        (and so the same Idempotency-Key); anything else is the answer."""
        for attempt in range(50):
            response = await self.fleet.request(method, path, headers=headers, json=body)
            if response.status_code < 500 and response.status_code not in retry:
                return response
            self.report.client_retries += 1
            await asyncio.sleep(0.05 * (attempt + 1))
        raise ChaosFailure(f"{method} {path} not answered after 50 attempts")


async def _customers(
    shop: _Shop, plans: list[Plan], rate: float, at_once: int, rng: random.Random
) -> None:
    """Customers arrive ``rate`` a second (at random), at most ``at_once`` in
    the shop together: a customer waiting for a provider that is away does
    not stop the next one from checking out."""
    room = asyncio.Semaphore(at_once)
    inside = 0

    async def visit(plan: Plan) -> None:
        nonlocal inside
        try:
            await _customer(shop, plan, rng)
        finally:
            inside -= 1
            shop.report.finished += 1
            room.release()

    visits: list[asyncio.Task[None]] = []
    try:
        for plan in plans:
            await room.acquire()
            inside += 1
            shop.report.most_at_once = max(shop.report.most_at_once, inside)
            visits.append(asyncio.create_task(visit(plan)))
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*visits)
    finally:
        for task in visits:
            task.cancel()


async def _customer(shop: _Shop, plan: Plan, rng: random.Random) -> None:
    subject = f"checkout-{uuid.uuid4().hex[:12]}"
    headers = {"Authorization": f"Bearer {shop.env.token(subject)}"}
    for product in rng.sample(shop.products, rng.randint(1, 2)):
        body = {"quantity": rng.randint(1, 3)}
        answer = await shop.call("PUT", f"/cart/items/{product}", headers, body=body)
        _expect(answer, 200)
    checkout = {"Idempotency-Key": uuid.uuid4().hex, **headers}
    answer = await shop.call(
        "POST", "/checkout", checkout, body={"email": f"{subject}@chaos.example"}
    )
    _expect(answer, 201)
    order_id = uuid.UUID(answer.json()["id"])
    shop.placed[order_id] = plan
    shop.report.checkouts += 1
    shop.report.plans[plan] += 1
    intent_id = await _intent_of(shop, order_id, headers)
    if intent_id is None:
        shop.report.outcomes["order ended before its intent appeared"] += 1
        return
    if plan is Plan.ABANDON:
        shop.report.outcomes["walked away"] += 1
        return
    paid = await _pay(
        shop.stripe, intent_id, DECLINED_CARD if plan is Plan.DECLINE else ACCEPTED_CARD
    )
    shop.report.outcomes[paid] += 1
    if plan is Plan.CANCEL and paid == "succeeded":
        await _cancel_once_confirmed(shop, order_id, headers)


def _expect(answer: httpx.Response, status: int) -> None:
    if answer.status_code != status:
        raise ChaosFailure(
            f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}"
        )


async def _order(shop: _Shop, order_id: uuid.UUID, headers: Mapping[str, str]) -> dict[str, Any]:
    answer = await shop.call("GET", f"/orders/{order_id}", headers)
    _expect(answer, 200)
    found: dict[str, Any] = answer.json()
    return found


def _poll_pause(waited: float) -> float:
    """A front end polls twice a second, then once a second after 2 s."""
    return 0.5 if waited < 2 else 1.0


async def _intent_of(shop: _Shop, order_id: uuid.UUID, headers: Mapping[str, str]) -> str | None:
    """The order's PaymentIntent, as the front end waits for it; None if the
    order ended first (it expired while the provider was away)."""
    started = time.monotonic()
    while time.monotonic() - started < shop.hold_seconds + 120:
        order = await _order(shop, order_id, headers)
        if order.get("payment"):
            return str(order["payment"]["intent_id"])
        if order["status"] != "AWAITING_PAYMENT":
            return None
        await asyncio.sleep(_poll_pause(time.monotonic() - started))
    raise ChaosFailure(f"order {order_id}: no PaymentIntent and still awaiting payment")


async def _pay(client: stripe.StripeClient, intent_id: str, card: str) -> str:
    """What a front end does with Stripe.js: a card PaymentMethod, attached to
    the intent, then confirmed. The intent's status after, or why not."""
    intents = client.v1.payment_intents
    try:
        method = await client.v1.payment_methods.create_async(
            params={
                "type": "card",
                "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            }
        )
        await intents.update_async(intent_id, params={"payment_method": method.id})
        paid = await intents.confirm_async(intent_id)
    except stripe.CardError:
        return "declined"
    except stripe.InvalidRequestError:
        # Cancelled meanwhile: the order expired before the customer paid.
        return "intent no longer payable"
    return paid.status


async def _cancel_once_confirmed(
    shop: _Shop, order_id: uuid.UUID, headers: Mapping[str, str]
) -> None:
    started = time.monotonic()
    while time.monotonic() - started < shop.hold_seconds + 120:
        status = (await _order(shop, order_id, headers))["status"]
        if status == "CONFIRMED":
            answer = await shop.call(
                "POST", f"/orders/{order_id}/cancel", headers, retry=frozenset({429})
            )
            _expect(answer, 200)
            shop.report.outcomes["cancelled once confirmed"] += 1
            return
        if status != "AWAITING_PAYMENT":
            shop.report.outcomes[f"paid, then found {status}"] += 1
            return
        await asyncio.sleep(_poll_pause(time.monotonic() - started))
    raise ChaosFailure(f"order {order_id}: paid, still awaiting payment")


# -- the faults ----------------------------------------------------------------


async def _killer(
    processes: list[FunctionProcess],
    kills: int,
    total: int,
    report: CheckoutReport,
    rng: random.Random,
) -> None:
    """``kills`` SIGKILLs of a payments or notifications worker, spread over
    the customers' progress, then (any left) over the settling."""
    victims = [process for process in processes if process.function in VICTIMS]
    for index in range(kills):
        due = (index + rng.uniform(0.5, 1.5)) * total / (kills + 1)
        while report.finished < min(due, total - 1) and not report.done:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if report.done:
            await asyncio.sleep(rng.uniform(0.2, 1.0))
        spare = report.checkouts >= report.spare_payments_from and not report.drop_over
        victim = rng.choice([v for v in victims if not spare or v.function != PAYMENTS])
        payments = victim.function == PAYMENTS
        report.restarting_payments = payments
        victim.kill()
        report.kills[victim.function] += 1
        report.note(
            f"SIGKILL {victim.function} pid {victim.process.pid if victim.process else '?'}"
        )
        try:
            await asyncio.to_thread(victim.start)
        finally:
            report.restarting_payments = False
            if payments:
                report.last_payments_kill = time.monotonic()
        report.note(f"started {victim.function} again")


async def _drop_provider(
    provider: EmbeddedStripe,
    connection: asyncpg.Connection,
    at: int,
    seconds: float,
    report: CheckoutReport,
) -> None:
    """Once ``at`` checkouts are answered: SIGSTOP localstripe for ``seconds``,
    then SIGCONT; then time until every order placed before had its intent.

    No payments worker is killed within a lease before the drop, during it,
    or until its catch-up: a killed worker's partitions wait out its lease,
    and while they wait no one calls the provider, so the drop would go
    unnoticed (notifications workers are killed meanwhile)."""
    while report.checkouts < at and not report.done:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    try:
        while (  # noqa: ASYNC110
            report.restarting_payments
            or time.monotonic() - report.last_payments_kill < LEASE_SECONDS + 1
        ):
            await asyncio.sleep(0.05)
        await _stop_provider(provider, connection, seconds, report)
    finally:
        report.drop_over = True


async def _stop_provider(
    provider: EmbeddedStripe, connection: asyncpg.Connection, seconds: float, report: CheckoutReport
) -> None:
    process = provider.process
    assert process is not None
    report.drop_at = report.checkouts
    process.send_signal(signal.SIGSTOP)
    report.note(f"SIGSTOP localstripe pid {process.pid}")
    started = time.monotonic()
    try:
        await asyncio.sleep(seconds)
    finally:
        process.send_signal(signal.SIGCONT)
        report.note(f"SIGCONT localstripe pid {process.pid}")
    report.drop_seconds = time.monotonic() - started
    report.checkouts_during_drop = report.checkouts - report.drop_at
    resumed = await connection.fetchval("SELECT now()")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        waiting = await connection.fetchval(
            """
            SELECT count(*) FROM orders o
            WHERE o.status = 'AWAITING_PAYMENT' AND o.created_at < $1
              AND NOT EXISTS (SELECT 1 FROM payment_intents p WHERE p.order_id = o.id)
            """,
            resumed,
        )
        if waiting == 0:
            report.catch_up_seconds = time.monotonic() - started - report.drop_seconds
            report.note("every order placed before SIGCONT has its intent")
            return
        await asyncio.sleep(0.1)


async def _watch_loop(report: CheckoutReport, every: float = 0.1) -> None:
    """Until cancelled: how late a ``sleep(every)`` wakes, into ``report.loop_lag``."""
    lags: list[float] = []
    try:
        while True:
            started = time.monotonic()
            await asyncio.sleep(every)
            lags.append(time.monotonic() - started - every)
    finally:
        if lags:
            lags.sort()
            report.loop_lag = (lags[int(len(lags) * 0.95)], lags[-1])


# -- settling and the books ----------------------------------------------------


async def settle_checkouts(connection: asyncpg.Connection, seconds: float) -> None:
    """Until every order is terminal, every outbox row published, every group
    settled, and nothing more happens for a couple of seconds (a webhook
    localstripe has yet to send would write an event)."""
    deadline = time.monotonic() + seconds
    quiet: tuple[int, ...] | None = None
    while time.monotonic() < deadline:
        row = await connection.fetchrow(
            """
            SELECT (SELECT count(*) FROM orders WHERE status NOT IN
                      ('CONFIRMED', 'EXPIRED', 'PAYMENT_FAILED', 'CANCELLED')) AS open,
                   (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished,
                   (SELECT count(*) FROM outbox) AS events,
                   (SELECT count(*) FROM stripe_events) AS webhooks
            """
        )
        assert row is not None
        busy = row["open"] or row["unpublished"]
        if not busy and not await unsettled(connection, CHECKOUT_GROUPS):
            mark = (row["events"], row["webhooks"])
            if mark == quiet:
                return
            quiet = mark
            await asyncio.sleep(2.0)
            continue
        quiet = None
        await asyncio.sleep(0.5)
    statuses = await connection.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    behind = await unsettled(connection, CHECKOUT_GROUPS)
    unpublished = await connection.fetchval(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    )
    raise ChaosFailure(
        f"the checkouts did not settle within {seconds:.0f} s: orders"
        f" {dict((r['status'], r['n']) for r in statuses)}, {unpublished} events"
        f" unpublished, not settled: {[dict(r) for r in behind]}"
    )


async def _check_orders(
    connection: asyncpg.Connection, placed: Mapping[uuid.UUID, Plan], report: CheckoutReport
) -> dict[uuid.UUID, str]:
    rows = await connection.fetch("SELECT id, status FROM orders")
    statuses = {row["id"]: row["status"] for row in rows}
    report.statuses = dict(Counter(statuses.values()))
    missing = set(placed) - set(statuses)
    unknown = set(statuses) - set(placed)
    if missing or unknown:
        raise ChaosFailure(
            f"{len(placed)} checkouts answered 201, {len(statuses)} orders stored:"
            f" {len(missing)} lost, {len(unknown)} unknown"
        )
    open_orders = {order_id: s for order_id, s in statuses.items() if s not in TERMINAL}
    if open_orders:
        raise ChaosFailure(f"orders not terminal: {Counter(open_orders.values())}")
    return statuses


async def _check_stock(connection: asyncpg.Connection) -> None:
    mismatched = await reserved_not_confirmed(connection)
    if mismatched:
        raise ChaosFailure(f"leaked holds: reserved != confirmed {mismatched}")
    kept = await connection.fetch(
        """
        SELECT o.id, o.status FROM stock_reservations r JOIN orders o ON o.id = r.order_id
        WHERE (r.released_at IS NULL) <> (o.status = 'CONFIRMED')
        """
    )
    if kept:
        raise ChaosFailure(f"reservations not matching their orders: {[dict(r) for r in kept]}")


async def _provider_books(
    client: stripe.StripeClient,
) -> tuple[list[stripe.PaymentIntent], dict[str, list[str]]]:
    """Every PaymentIntent on localstripe, and the refunds of each intent."""
    intents: list[stripe.PaymentIntent] = []
    page = await client.v1.payment_intents.list_async(params={"limit": 100})
    while True:
        intents += page.data
        if not page.has_more or not page.data:
            break
        after = page.data[-1].id
        page = await client.v1.payment_intents.list_async(
            params={"limit": 100, "starting_after": after}
        )
    refunds: dict[str, list[str]] = defaultdict(list)
    listed = await client.v1.refunds.list_async(params={"limit": 100})
    while True:
        for refund in listed.data:
            intent = refund.payment_intent
            intent_id = intent if isinstance(intent, str) or intent is None else intent.id
            refunds[intent_id or ""].append(refund.id)
        if not listed.has_more or not listed.data:
            break
        after = listed.data[-1].id
        listed = await client.v1.refunds.list_async(params={"limit": 100, "starting_after": after})
    return intents, refunds


async def _check_payments(
    connection: asyncpg.Connection,
    client: stripe.StripeClient,
    statuses: Mapping[uuid.UUID, str],
    report: CheckoutReport,
) -> None:
    rows = await connection.fetch(
        "SELECT order_id, intent_id, status, refund_id FROM payment_intents"
    )
    recorded = {row["order_id"]: row for row in rows}
    report.intents_recorded = len(rows)
    if len(recorded) != len(rows):
        raise ChaosFailure(f"{len(rows)} intents on record for {len(recorded)} orders")
    delays = await connection.fetchrow(
        """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS median,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY d) AS p95, max(d) AS most
        FROM (SELECT extract(epoch FROM p.created_at - o.created_at) AS d
              FROM payment_intents p JOIN orders o ON o.id = p.order_id) AS delays
        """
    )
    if delays is not None and delays["most"] is not None:
        report.intent_delay = (delays["median"], delays["p95"], float(delays["most"]))
    intents, refunds = await _provider_books(client)
    report.intents_on_provider = len(intents)
    report.refunds = sum(len(ids) for ids in refunds.values())
    report.refunded_twice = sum(1 for ids in refunds.values() if len(ids) > 1)
    report.refunds_repeated = sum(len(ids) - 1 for ids in refunds.values())
    report.payments = sum(1 for intent in intents if intent.status == "succeeded")
    report.canceled_intents = sum(1 for intent in intents if intent.status == "canceled")
    by_order: dict[uuid.UUID, list[stripe.PaymentIntent]] = defaultdict(list)
    for intent in intents:
        # Every intent the gateway makes names its order; any other is no order's.
        with contextlib.suppress(KeyError, ValueError):
            by_order[uuid.UUID(intent.metadata["order_id"])].append(intent)
    recorded_ids = {row["intent_id"] for row in recorded.values()}
    report.orphan_intents = sum(1 for intent in intents if intent.id not in recorded_ids)
    problems: list[str] = []
    for order_id, status in statuses.items():
        row = recorded.get(order_id)
        problems += _payment_problems(
            order_id, status, row["intent_id"] if row else None, by_order[order_id], refunds
        )
    if problems:
        raise ChaosFailure(f"{len(problems)} payment faults: " + "; ".join(problems[:10]))


def _payment_problems(
    order_id: uuid.UUID,
    status: str,
    recorded: str | None,
    intents: Iterable[stripe.PaymentIntent],
    refunds: Mapping[str, list[str]],
) -> list[str]:
    """What is wrong with one order's money: a double charge, a confirmed
    order without its payment, a payment kept for an order not confirmed, an
    ended order's intent left payable."""
    intents = list(intents)
    kept = [i.id for i in intents if i.status == "succeeded" and not refunds.get(i.id)]
    problems = []
    if len(kept) > 1:
        problems.append(f"order {order_id} ({status}) charged {len(kept)} times: {kept}")
    if status == "CONFIRMED" and kept != [recorded]:
        problems.append(f"order {order_id} CONFIRMED, payments kept {kept}, on record {recorded}")
    if status != "CONFIRMED" and kept:
        problems.append(f"order {order_id} {status}, payments not refunded: {kept}")
    payable = [
        i.id for i in intents if i.id == recorded and i.status not in ("succeeded", "canceled")
    ]
    if status != "CONFIRMED" and payable:
        problems.append(f"order {order_id} {status}, its intent still payable: {payable}")
    return problems


def _sent_emails() -> list[tuple[str, str]]:
    """(address, subject) of every email moto's SES accepted, in this process."""
    from moto.ses.models import ses_backends

    sent: list[tuple[str, str]] = []
    for by_region in ses_backends.values():
        for backend in by_region.values():
            for message in backend.sent_messages:
                destinations = getattr(message, "destinations", {})
                addresses = (
                    destinations.get("ToAddresses", [])
                    if isinstance(destinations, dict)
                    else list(destinations)
                )
                subject = str(getattr(message, "subject", ""))
                sent += [(address, subject) for address in addresses]
    return sent


def _resends_logged(logs: Iterable[Path]) -> Counter[tuple[str, str]]:
    """(order id, kind) of each email the notifications workers logged as
    sent on a claim an earlier attempt had left unmarked."""
    resent: Counter[tuple[str, str]] = Counter()
    for log in logs:
        if not log.is_file():
            continue
        for line in log.read_text(errors="replace").splitlines():
            if RESENT_MESSAGE not in line or not line.startswith("{"):
                continue
            record = json.loads(line)
            resent[(str(record.get("order_id")), str(record.get("kind")))] += 1
    return resent


async def _check_emails(
    connection: asyncpg.Connection,
    placed: Mapping[uuid.UUID, Plan],
    statuses: Mapping[uuid.UUID, str],
    logs: Iterable[Path],
    report: CheckoutReport,
) -> None:
    confirmed_ever = {
        uuid.UUID(row["aggregate_id"])
        for row in await connection.fetch(
            "SELECT DISTINCT aggregate_id FROM outbox WHERE event_type = 'OrderConfirmed'"
        )
    }
    emails = await connection.fetch("SELECT id, email FROM orders")
    order_of = {row["email"]: row["id"] for row in emails}
    received: Counter[tuple[str, str]] = Counter()
    for address, subject in _sent_emails():
        order_id = order_of.get(address)
        if order_id is None:
            raise ChaosFailure(f"an email to {address}, no order's address: {subject!r}")
        kind = "confirmation" if subject.endswith("is confirmed") else "cancellation"
        received[(str(order_id), kind)] += 1
    resent = _resends_logged(logs)
    report.resends = sum(resent.values())
    report.confirmations = sum(n for (_, kind), n in received.items() if kind == "confirmation")
    report.cancellations = sum(n for (_, kind), n in received.items() if kind == "cancellation")
    expected: Counter[tuple[str, str]] = Counter()
    for order_id in placed:
        if order_id in confirmed_ever:
            expected[(str(order_id), "confirmation")] += 1
        if statuses[order_id] in ENDED:
            expected[(str(order_id), "cancellation")] += 1
    problems = _email_problems(expected, received, resent)
    report.sent_twice = sum(max(0, received[k] - expected[k]) for k in received)
    unmarked = await connection.fetchval(
        "SELECT count(*) FROM email_deliveries WHERE sent_at IS NULL"
    )
    if unmarked:
        problems.append(f"{unmarked} email deliveries claimed and never marked sent")
    if problems:
        raise ChaosFailure(f"{len(problems)} email faults: " + "; ".join(problems[:10]))


def _email_problems(
    expected: Counter[tuple[str, str]],
    received: Counter[tuple[str, str]],
    resent: Counter[tuple[str, str]],
) -> list[str]:
    problems = []
    for key in sorted(set(expected) | set(received)):
        order_id, kind = key
        if received[key] < expected[key]:
            problems.append(f"order {order_id}: {kind} email missing")
        elif received[key] > expected[key] + resent[key]:
            problems.append(
                f"order {order_id}: {kind} email sent {received[key]} times,"
                f" {expected[key]} expected, {resent[key]} resends recorded"
            )
    return problems


def _provider_failures(logs: Iterable[Path]) -> tuple[int, int]:
    """(runs ended by a provider call that failed, runs the open breaker
    ended at once), from the payments workers' logs."""
    failed = refused = 0
    for log in logs:
        if not log.is_file():
            continue
        for line in log.read_text(errors="replace").splitlines():
            if PROVIDER_DOWN not in line or line.startswith("{"):
                continue
            if BREAKER_OPEN in line:
                refused += 1
            else:
                failed += 1
    return failed, refused


async def check_checkout_books(
    connection: asyncpg.Connection,
    client: stripe.StripeClient,
    placed: Mapping[uuid.UUID, Plan],
    logs: Mapping[str, list[Path]],
    report: CheckoutReport,
) -> None:
    statuses = await _check_orders(connection, placed, report)
    await _check_stock(connection)
    await _check_payments(connection, client, statuses, report)
    await _check_emails(
        connection, placed, statuses, logs.get("NotificationsWorkerFunction", []), report
    )
    report.provider_failures, report.breaker_refusals = _provider_failures(
        logs.get("PaymentsWorkerFunction", [])
    )
    report.dead_letters = await connection.fetchval("SELECT count(*) FROM dead_letters")
    if report.dead_letters:
        rows = await connection.fetch("SELECT * FROM dead_letters LIMIT 5")
        raise ChaosFailure(f"{report.dead_letters} dead letters: {[dict(r) for r in rows]}")


# -- the scenario --------------------------------------------------------------


@dataclass
class _Servers:
    """localstripe, moto's SES, the orders function and its webhook."""

    provider: EmbeddedStripe
    aws: Any
    fleet: OrdersFleet
    webhook: WebhookServer
    secret: str

    def environment(self) -> dict[str, str]:
        """What the functions need to reach them."""
        return {
            **self.provider.environment(),
            "STRIPE_WEBHOOK_SECRET": self.secret,
            "SES_ENDPOINT_URL": self.aws.url,
            "EMAIL_SENDER": EMAIL_SENDER,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **LOCAL_AWS_CREDENTIALS,
        }


def _start_provider(log: Path) -> EmbeddedStripe:
    """localstripe, its output in ``log`` (for a post-mortem)."""
    executable = shutil.which("localstripe", path=str(Path(sys.executable).parent))
    executable = executable or shutil.which("localstripe")
    if executable is None:
        raise ChaosFailure("the localstripe executable is missing: it is a dev dependency")
    port = free_port()
    with log.open("ab") as output:
        # --from-scratch: it would otherwise load what an earlier run saved.
        process = subprocess.Popen(  # noqa: S603 (our own dev dependency's script)
            [executable, "--port", str(port), "--from-scratch"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    provider = EmbeddedStripe(process, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ChaosFailure(f"localstripe exited with {process.returncode}; see {log}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return provider
        time.sleep(0.05)
    provider.stop()
    raise ChaosFailure(f"localstripe did not listen on {port} within 30 s; see {log}")


async def _start_servers(
    settings: Settings, containers: int, report: CheckoutReport, logs: Path
) -> _Servers:
    secret = f"whsec_chaos_{uuid.uuid4().hex}"
    provider = await asyncio.to_thread(_start_provider, logs / "localstripe.log")
    try:
        aws = await asyncio.to_thread(start_s3, "storefront-chaos-reports", REGION)
        await asyncio.to_thread(verify_email_identity, aws.url, EMAIL_SENDER, REGION)
        fleet = OrdersFleet(
            settings.model_copy(update={"stripe_webhook_secret": secret}), containers
        )
        webhook = WebhookServer(fleet, report)
        await webhook.start()
        await asyncio.to_thread(provider.register_webhook, webhook.url, secret)
    except BaseException:
        provider.stop()
        raise
    return _Servers(provider, aws, fleet, webhook, secret)


async def _stop_servers(servers: _Servers) -> None:
    process = servers.provider.process
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGCONT)  # whatever happened mid-drop
    await servers.webhook.stop()
    await servers.fleet.close()
    servers.provider.stop()
    servers.aws.stop()


def _front_end(stripe_url: str) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """A front end's Stripe: no retries of its own; a provider that stops
    answering keeps the customer waiting, as a browser would."""
    http = stripe.HTTPXClient(timeout=60)
    client = stripe.StripeClient(
        LOCAL_STRIPE_KEY,
        base_addresses={"api": stripe_url},
        http_client=http,
        max_network_retries=0,
    )
    return client, http


async def run_checkouts(
    env: BenchEnvironment,
    *,
    checkouts: int,
    rate: float,
    at_once: int,
    containers: int,
    kills: int,
    logs: Path,
    hold_seconds: int = 20,
    drop_seconds: float = 10.0,
    settle_seconds: float = 240.0,
    seed: int | None = None,
) -> CheckoutReport:
    """``checkouts`` customers arriving ``rate`` a second (at most ``at_once``
    together) on an orders function of up to ``containers`` containers, while
    ``kills`` SIGKILLs and one provider drop of ``drop_seconds`` happen."""
    rng = random.Random(seed)
    report = CheckoutReport(rate=rate, at_once=at_once)
    settings = env.settings.model_copy(update={"checkout_hold_seconds": hold_seconds})
    logs = logs / "checkout"
    logs.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        connection = await asyncpg.connect(env.database_url)
        stack.push_async_callback(connection.close)
        servers = await _start_servers(settings, containers, report, logs)
        stack.push_async_callback(_stop_servers, servers)
        payer, http = _front_end(servers.provider.url)
        stack.push_async_callback(http.close_async)
        environment = (
            env.environment()
            | CHAOS_FUNCTION_ENVIRONMENT
            | STRIPE_ENVIRONMENT
            | UNBUFFERED
            | servers.environment()
            | {"CHECKOUT_HOLD_SECONDS": str(hold_seconds)}
        )
        processes = [
            FunctionProcess(name, environment, log=logs / f"{name}-{copy}.log")
            for name, copies in FUNCTIONS
            for copy in range(1, copies + 1)
        ]
        stack.callback(_stop_processes, processes, report, logs)
        # Stock for every checkout: none is refused, every hold is tracked.
        products = await seed_products(connection, 20, on_hand=checkouts * 3, label="checkout")
        await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))
        placed: dict[uuid.UUID, Plan] = {}
        shop = _Shop(env, servers.fleet, payer, report, products, hold_seconds, placed)
        plans = [rng.choice(PLANS) for _ in range(checkouts)]
        await _under_fire(
            shop, plans, processes, servers.provider, connection, kills, rng, drop_seconds
        )
        settled = time.monotonic()
        try:
            await settle_checkouts(connection, settle_seconds)
        except ChaosFailure as failure:
            code = servers.provider.process.poll() if servers.provider.process else None
            state = "running" if code is None else f"exited with {code}"
            raise ChaosFailure(f"{failure}; localstripe {state} (logs in {logs})") from None
        report.seconds_settling = time.monotonic() - settled
        report.containers = servers.fleet.containers
        await check_checkout_books(connection, payer, placed, _logs_by_function(processes), report)
    return report


async def _under_fire(
    shop: _Shop,
    plans: list[Plan],
    processes: list[FunctionProcess],
    provider: EmbeddedStripe,
    connection: asyncpg.Connection,
    kills: int,
    rng: random.Random,
    drop_seconds: float,
) -> None:
    """The customers, while the killer and the provider's drop (at 40% of
    the checkouts) do their work."""
    report = shop.report
    drop_at = max(1, int(len(plans) * 0.4))
    # Payments workers are spared from about a lease before the drop.
    report.spare_payments_from = drop_at - int(report.rate * (LEASE_SECONDS + 2))
    watch = asyncio.create_task(_watch_loop(report))
    faults = [
        asyncio.create_task(_killer(processes, kills, len(plans), report, rng)),
        asyncio.create_task(_drop_provider(provider, connection, drop_at, drop_seconds, report)),
    ]
    started = time.monotonic()
    try:
        await _customers(shop, plans, report.rate, report.at_once, rng)
        report.done = True
        report.seconds_placing = time.monotonic() - started
        await asyncio.gather(*faults)
    finally:
        for task in (*faults, watch):
            task.cancel()
        await asyncio.gather(*faults, watch, return_exceptions=True)


def _stop_processes(
    processes: Iterable[FunctionProcess], report: CheckoutReport, logs: Path
) -> None:
    for process in processes:
        process.stop()
    (logs / "timeline.txt").write_text(
        "".join(
            f"{time.strftime('%H:%M:%S', time.gmtime(at))}.{int(at % 1 * 1000):03d} {what}\n"
            for at, what in report.timeline
        )
    )


def _logs_by_function(processes: Iterable[FunctionProcess]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = defaultdict(list)
    for process in processes:
        if process.log is not None:
            found[process.function].append(process.log)
    return found
