"""Chaos scenario 4: Schemathesis against the API's one OpenAPI document.

Every operation of the catalog, orders and reports functions is fuzzed on the
path a deployed request takes: HTTP to the local API Gateway
(:mod:`storefront_dev.gateway`), a payload 2.0 event to the function's own
warm container process, Mangum, FastAPI, PostgreSQL and Redis. The schema is
the whole API's one document, the one ``GET /openapi.json`` serves.

Each operation is sent, anonymously and with a customer's and an admin's
token: Schemathesis' coverage cases (boundary values, missing and wrong-typed
fields, each parameter in turn), then Hypothesis-generated cases valid by the
schema (positive) and breaking it (negative). Generated ids mostly name
nothing, so each generated pass runs again with the ids of rows that exist (a
product, a category, the customer's order, a report) in the path and body,
and a report window the API accepts: 200s and 409s are checked too, not
only 404s and 422s. DELETEs run last, so the rows
stay for the other operations. Each operation gets tokens of its own: one
that ``POST /auth/logout`` revokes is not the next operation's.

Then Schemathesis' stateful pass chains calls along the links the document
declares (``POST /products`` 201 to the product's reads and writes, and so
on; storefront.web.contract.LINKS), and only those: links Schemathesis would
infer are left out, so the pass checks the contract clients are given. The
report counts the steps that followed each link.

Every response must pass ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance`` and ``response_schema_conformance``: no 5xx, and
no status, content type or body the schema does not declare. Each distinct
failure is listed with the request that showed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import hypothesis
import hypothesis.errors
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis.strategies import SearchStrategy
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.errors import format_transition
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

from storefront import wiring
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import seed_products
from storefront_dev.bench.processes import project_root
from storefront_dev.chaos.schema_report import FuzzReport, OperationTally, record
from storefront_dev.embedded import start_s3
from storefront_dev.gateway import LocalGateway
from storefront_dev.lambda_process import FunctionFleet
from storefront_dev.routes import Router
from storefront_dev.templates import load_template

__all__ = ["CHECK_NAMES", "run_schema_fuzz"]

Operation: TypeAlias = schemathesis.APIOperation[Any, Any, Any, Any]
Case: TypeAlias = schemathesis.Case[Any]

API_APPS: Mapping[str, Callable[..., FastAPI]] = {
    "CatalogApiFunction": wiring.catalog_app,
    "OrdersApiFunction": wiring.orders_app,
    "ReportsApiFunction": wiring.reports_app,
}
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
ROLES = ("anonymous", "customer", "admin")
REPORTS_BUCKET = "storefront-reports-chaos"

# Thousands of requests a minute from three callers: the rate limiter still
# runs on every request (its code path and headers are part of what is
# checked) but with these limits never answers 429, which would hide what the
# routes themselves answer. Set here, not left to bench_environment's, so the
# scenario does not depend on the benchmarks' choice.
# The known product's stock: enough for every order and checkout of a run.
ON_HAND = 100_000
# The stateful pass follows the document's links alone (see the module's doc),
# in short runs: a run that meets changed server data ends (see stateful()),
# and a short one loses less.
STATEFUL_RUN_EXAMPLES = 5
NO_INFERRED_LINKS: dict[str, Any] = {"phases": {"stateful": {"inference": {"algorithms": []}}}}
UNMETERED_RATE_LIMITS = {
    "RATE_LIMIT_READ": "100000000/minute",
    "RATE_LIMIT_WRITE": "100000000/minute",
    "RATE_LIMIT_ORDERS": "100000000/minute",
    "RATE_LIMIT_ANONYMOUS": "100000000/minute",
    "RATE_LIMIT_FAILED_AUTH": "100000000/minute",
}


def run_schema_fuzz(
    env: BenchEnvironment,
    *,
    examples: int,
    logs: Path,
    seed: int | None = None,
    coverage: bool = True,
) -> FuzzReport:
    """Fuzz every operation of every API function; ``examples`` cases per
    generated pass (role, positive or negative, generated or known ids).
    ``coverage=False`` leaves out the coverage cases (a shorter run)."""
    seed = seed if seed is not None else random.randrange(2**32)
    report = FuzzReport(examples, seed, functions=list(API_APPS), roles=ROLES)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        # The gateway logs a line per request to stderr, the fleet a few per
        # invocation to stdout: thousands, kept in a file for a post-mortem.
        log = stack.enter_context(open(logs / "schema-gateway.log", "a", buffering=1))
        stack.enter_context(contextlib.redirect_stderr(log))
        stack.enter_context(contextlib.redirect_stdout(log))
        url = _start_stack(env, stack)
        session = stack.enter_context(requests.Session())
        known = _seed(env, url, session, _tokens(env))
        sender = _Sender(report, url, session, _checks(), coverage)
        operations = _operations()
        for function, operation in operations:
            tokens = _tokens(env)
            for role in ROLES:
                sender.fuzz(function, operation, role, tokens[role], known)
        functions = {(op.method.upper(), op.path): function for function, op in operations}
        sender.stateful(functions, lambda sub: env.token(sub, admin=True), examples, known)
    report.seconds = time.monotonic() - started
    return report


def _tokens(env: BenchEnvironment) -> dict[str, str | None]:
    """A token per role, each with a jti of its own: logging one out leaves the others valid."""
    return {
        "anonymous": None,
        "customer": env.token("schema-customer"),
        "admin": env.token("schema-admin", admin=True),
    }


def _start_stack(env: BenchEnvironment, stack: contextlib.ExitStack) -> str:
    """The API functions, each in its container, behind a local gateway; its URL."""
    s3 = start_s3(REPORTS_BUCKET)
    stack.callback(s3.stop)
    template = load_template(project_root() / "template.yaml")
    functions = {name: template.functions[name] for name in API_APPS}
    fleet = FunctionFleet(functions, env.environment() | s3.environment() | UNMETERED_RATE_LIMITS)
    stack.callback(fleet.stop)
    routes = [route for route in template.routes if route.function_id in API_APPS]
    gateway = LocalGateway(Router(routes), fleet, port=0)
    gateway.start()
    stack.callback(gateway.stop)
    # Cold-start the containers side by side rather than one after another
    # on their first cases: any GET of each function will do.
    first_gets = {
        route.function_id: gateway.url + re.sub(r"\{[^}]+\}", "0", route.path)
        for route in reversed(routes)
        if route.method == "GET"
    }
    with ThreadPoolExecutor(len(first_gets)) as pool:
        list(pool.map(lambda url: requests.get(url, timeout=60), first_gets.values()))
    return gateway.url


def _seed(
    env: BenchEnvironment, url: str, session: requests.Session, tokens: Mapping[str, str | None]
) -> dict[str, str]:
    """Rows for the known ids, made through the API where it can make them,
    and a report window the API accepts (random dates seldom make one)."""

    async def product() -> str:
        connection = await asyncpg.connect(env.database_url)
        try:
            (product_id,) = await seed_products(connection, 1, on_hand=ON_HAND, label="schema")
        finally:
            await connection.close()
        return str(product_id)

    def create(path: str, body: Any, role: str) -> str:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        answer = session.post(url + path, json=body, headers=headers, timeout=60)
        if answer.status_code not in (201, 202):
            raise RuntimeError(f"seeding POST {path}: {answer.status_code} {answer.text}")
        return str(answer.json()["id"])

    product_id = asyncio.run(product())
    order = {"items": [{"product_id": product_id, "quantity": 1}]}
    window = {"from": "2025-01-01", "to": "2025-01-07"}
    report = {"type": "sales_by_product"} | window
    return {
        "product_id": product_id,
        "category_id": create("/categories", {"name": "Schema fuzzing"}, "admin"),
        "order_id": create("/orders", order, "customer"),
        "report_id": create("/reports", report, "admin"),
    } | window


def _operations() -> list[tuple[str, Operation]]:
    """Every operation of the API's one document (the one /openapi.json
    serves), with the function the template routes it to."""
    schema = schemathesis.openapi.from_dict(wiring.api_document(), config=schemathesis.Config())
    template = load_template(project_root() / "template.yaml")
    router = Router(template.routes)
    found: list[tuple[str, Operation]] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise RuntimeError(f"the API's OpenAPI document: {result.err()}")
        operation = result.ok()
        concrete = re.sub(r"\{[^}]+\}", "0190f0e0-0000-7000-8000-000000000000", operation.path)
        match = router.match(operation.method.upper(), concrete)
        if match is None:
            raise RuntimeError(f"{operation.method.upper()} {operation.path} has no route")
        found.append((match.route.function_id, operation))
    # Every DELETE last: the rows it removes stay for the other operations.
    return sorted(found, key=lambda item: item[1].method.upper() == "DELETE")


def _checks() -> list[Any]:
    load_all_checks()
    return list(CHECKS.get_by_names(list(CHECK_NAMES)))


def _with_known_ids(value: Any, known: Mapping[str, str]) -> Any:
    """``value`` with every string field named like a known value set to it.

    A list keeps one item per known row it names: the API refuses an order
    listing a product twice, so the rest would only ever be a 422."""
    if isinstance(value, dict):
        return {
            key: known[key]
            if key in known and isinstance(item, str)
            else _with_known_ids(item, known)
            for key, item in value.items()
        }
    if isinstance(value, list):
        kept: list[Any] = []
        named: set[tuple[str, str]] = set()
        for item in (_with_known_ids(item, known) for item in value):
            rows = _rows_named(item, known)
            if not rows & named:
                kept.append(item)
                named |= rows
        return kept
    return value


def _rows_named(value: Any, known: Mapping[str, str]) -> set[tuple[str, str]]:
    if not isinstance(value, dict):
        return set()
    return {(key, item) for key, item in value.items() if known.get(key) == item}


@dataclass
class _Sender:
    report: FuzzReport
    url: str
    session: requests.Session
    checks: list[Any]
    coverage: bool

    def fuzz(
        self,
        function: str,
        operation: Operation,
        role: str,
        token: str | None,
        known: Mapping[str, str],
    ) -> None:
        label = f"{operation.method.upper()} {operation.path}"
        tally = self.report.tallies.setdefault(label, OperationTally(function, label))
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        def send(case: Case) -> None:
            self._send(case, label, role, headers, tally)

        schema = operation.schema
        if self.coverage:
            for case in schema.iter_coverage_cases(
                operation,
                generation_modes=list(schemathesis.GenerationMode),
                generation_config=schema.config.generation_for(operation=operation),
            ):
                send(case)
        path_names = {parameter.name for parameter in operation.path_parameters}
        names_known = path_names <= known.keys() and (bool(path_names) or bool(operation.body))
        for mode in schemathesis.GenerationMode:
            self._generate(operation.as_strategy(generation_mode=mode), send)
            if names_known:
                fixed = {name: known[name] for name in path_names}
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
                self._generate(strategy.map(lambda case: _known_body(case, known)), send)

    def _generate(self, strategy: SearchStrategy[Case], send: Callable[[Case], None]) -> None:
        run = hypothesis.settings(
            max_examples=self.report.examples,
            deadline=None,
            database=None,  # no saved examples: a run is replayed from its seed alone
            phases=(Phase.explicit, Phase.generate),  # failures are recorded, not shrunk
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )(hypothesis.given(strategy)(send))
        # Negative cases need something left to break: with the path's ids
        # fixed, an operation may have none.
        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            hypothesis.seed(self.report.seed)(run)()

    def _send(
        self,
        case: Case,
        label: str,
        role: str,
        headers: dict[str, str],
        tally: OperationTally,
    ) -> None:
        try:
            response = case.call(base_url=self.url, session=self.session, headers=headers)
        except (UnicodeEncodeError, requests.exceptions.InvalidHeader):
            self.report.unsendable += 1
            return
        tally.cases += 1
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=self.checks, headers=headers)
        except FailureGroup as group:
            record(self.report, label, role, group.exceptions, case, response)

    def stateful(
        self,
        functions: Mapping[tuple[str, str], str],
        admin_token: Callable[[str], str],
        examples: int,
        known: Mapping[str, str],
    ) -> None:
        """Schemathesis' stateful mode: calls chained by the document's
        links (an id one answer gives feeds the next call), as an admin, who
        may call every operation; a new one each run, as a customer may
        await only so many units of a product. Steps are tallied and checked
        like every other case; a step that took its values from a link counts
        for it.

        A chain starts with a call that creates something. Generated ids in
        its body would name nothing, so it gets the known ones, as the
        generated passes do; a checkout gets a cart first (the seeded product,
        in stock). Otherwise an order or a checkout would hardly ever be
        created, and their links never followed."""
        sender = self
        headers: dict[str, str] = {}  # each run's admin, set below

        spec = wiring.api_document()
        for link in _declared_links(spec):
            self.report.links.setdefault(link, 0)
        config = schemathesis.Config.from_dict(NO_INFERRED_LINKS)
        document = schemathesis.openapi.from_dict(spec, config=config)

        class Chained(document.as_state_machine()):  # type: ignore[misc]
            def step(self, input: StepInput) -> StepOutput:
                sender._before_step(input, known, headers)
                output: StepOutput = super().step(input)
                return output

            def call(self, case: Case, **kwargs: Any) -> schemathesis.Response:
                label = f"{case.operation.method.upper()} {case.operation.path}"
                function = functions[(case.operation.method.upper(), case.operation.path)]
                tally = sender.report.tallies.setdefault(label, OperationTally(function, label))
                try:
                    response = case.call(
                        base_url=sender.url, session=sender.session, headers=headers
                    )
                except (UnicodeEncodeError, requests.exceptions.InvalidHeader):
                    sender.report.unsendable += 1
                    hypothesis.reject()
                tally.cases += 1
                tally.statuses[response.status_code] += 1
                sender.report.stateful_steps += 1
                return response

            def validate_response(
                self, response: schemathesis.Response, case: Case, *args: Any, **kwargs: Any
            ) -> None:
                try:
                    case.validate_response(response, checks=sender.checks, headers=headers)
                except FailureGroup as group:
                    label = f"{case.operation.method.upper()} {case.operation.path}"
                    record(sender.report, label, "admin, chained", group.exceptions, case, response)

        # The generated passes left the known product's stock at whatever
        # they drew, often 0: checkouts need it back.
        stock = f"{self.url}/products/{known['product_id']}/stock"
        restocker = {"Authorization": f"Bearer {admin_token('schema-chained')}"}
        self.session.put(stock, json={"on_hand": ON_HAND}, headers=restocker, timeout=60)
        settings = hypothesis.settings(
            max_examples=STATEFUL_RUN_EXAMPLES,
            stateful_step_count=8,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
            verbosity=Verbosity.quiet,
        )
        self.report.stateful_runs = math.ceil(examples / STATEFUL_RUN_EXAMPLES)
        for run in range(self.report.stateful_runs):
            headers["Authorization"] = f"Bearer {admin_token(f'schema-chained-{run}')}"
            try:
                Chained.run(settings=settings)
            except hypothesis.errors.FlakyStrategyDefinition:
                # Hypothesis replays a prefix of steps to explore further; the
                # server's data changed meanwhile, so the rules it may draw did
                # too. Not a fault of the API: the run ends with what it checked.
                self.report.stateful_cut_short += 1

    def _before_step(
        self, step: StepInput, known: Mapping[str, str], headers: Mapping[str, str]
    ) -> None:
        if step.transition is not None:
            if step.is_applied:
                self.report.links[step.transition.id] += 1
            return
        _known_body(step.case, known)
        if step.case.operation.label == "POST /checkout":
            line = f"{self.url}/cart/items/{known['product_id']}"
            self.session.put(line, json={"quantity": 1}, headers=headers, timeout=60)


def _declared_links(document: Mapping[str, Any]) -> list[str]:
    """The document's links, named as Schemathesis names the transitions."""
    labels = {
        operation["operationId"]: f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    return [
        format_transition(f"{method.upper()} {path}", status, name, labels[link["operationId"]])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        for name, link in response.get("links", {}).items()
    ]


def _known_body(case: Case, known: Mapping[str, str]) -> Case:
    if isinstance(case.body, dict | list):
        case.body = _with_known_ids(case.body, known)
    return case
