"""The migrate function as CloudFormation calls it: a custom resource request in,
an answer PUT to the request's ResponseURL out.

The ResponseURL is a local HTTP server standing in for S3's pre-signed URL; the
database is real PostgreSQL, and Secrets Manager is moto.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType, SimpleNamespace
from typing import Any

import asyncpg
import boto3
import pytest
from moto import mock_aws
from sqlalchemy.engine import make_url

from storefront.adapters.endpoints import read_secret
from storefront.migrate import head_revision
from tests.conftest import own_database
from tests.functions.conftest import FakeLambdaContext, load_event, load_function


@dataclass
class CloudFormationAnswers:
    """What the function PUT to its ResponseURL: one JSON body per request."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)

    @property
    def only(self) -> dict[str, Any]:
        assert len(self.bodies) == 1, f"expected one answer, got {self.bodies}"
        return self.bodies[0]


@pytest.fixture
def cloudformation() -> Iterator[CloudFormationAnswers]:
    answers = CloudFormationAnswers(url="")

    class ResponseUrl(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            answers.bodies.append(json.loads(self.rfile.read(length)))
            answers.content_types.append(self.headers.get("Content-Type"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), ResponseUrl)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    answers.url = f"http://127.0.0.1:{server.server_port}/stack-response?X-Amz-Signature=abc"
    yield answers
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def migrate_function() -> ModuleType:
    return load_function("migrate")


class DeployContext(FakeLambdaContext):
    """The migrate function's five minutes, as in the template."""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def request(kind: str, answers: CloudFormationAnswers) -> dict[str, Any]:
    event = load_event("migrate", "create")
    event.pop("headers", None)
    event["RequestType"] = kind
    event["ResponseURL"] = answers.url
    if kind != "Create":
        event["PhysicalResourceId"] = "Migrations-migrations"
    return event


def applied_revision(url: str) -> str | None:
    async def query() -> str | None:
        connection = await asyncpg.connect(make_url(url).set(drivername="postgresql").__str__())
        try:
            revision: str | None = await connection.fetchval(
                "SELECT version_num FROM alembic_version"
            )
            return revision
        finally:
            await connection.close()

    return asyncio.run(query())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_create_migrates_a_fresh_database_and_answers_success(
    migrate_function: ModuleType,
    cloudformation: CloudFormationAnswers,
    database_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with own_database(database_server_url, "migrate", migrated=False) as url:
        monkeypatch.setenv("DATABASE_URL", url)

        migrate_function.handler(request("Create", cloudformation), DeployContext())

        answer = cloudformation.only
        assert answer["Status"] == "SUCCESS", answer["Reason"]
        assert answer["Data"] == {"Head": head_revision()}
        assert answer["PhysicalResourceId"] == "Migrations-migrations"
        event = load_event("migrate", "create")
        for key in ("StackId", "RequestId", "LogicalResourceId"):
            assert answer[key] == event[key]
        # S3 pre-signed the URL without a content type.
        assert cloudformation.content_types == [""]
        assert applied_revision(url) == head_revision()


def test_update_runs_again_and_keeps_the_physical_id(
    migrate_function: ModuleType,
    cloudformation: CloudFormationAnswers,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)

    migrate_function.handler(request("Update", cloudformation), DeployContext())

    assert cloudformation.only["Status"] == "SUCCESS"
    assert cloudformation.only["PhysicalResourceId"] == "Migrations-migrations"
    assert applied_revision(database_url) == head_revision()


def test_deployed_it_reads_the_credentials_from_the_database_secret(
    migrate_function: ModuleType,
    cloudformation: CloudFormationAnswers,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parts = make_url(database_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # A TCP host, or the socket directory of an embedded server.
    host = parts.host or parts.query["host"]
    assert isinstance(host, str)
    monkeypatch.setenv("DATABASE_HOST", host)
    monkeypatch.setenv("DATABASE_PORT", str(parts.port or 5432))
    monkeypatch.setenv("DATABASE_NAME", parts.database or "")
    monkeypatch.setenv("DATABASE_TLS", "false")
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(
            Name="rds!cluster-storefront",
            SecretString=json.dumps(
                {"username": parts.username or "postgres", "password": parts.password or ""}
            ),
        )
        monkeypatch.setenv("DATABASE_SECRET_ARN", secret["ARN"])

        migrate_function.handler(request("Update", cloudformation), DeployContext())
    read_secret.cache_clear()

    assert cloudformation.only["Status"] == "SUCCESS", cloudformation.only["Reason"]


def test_an_unreachable_database_fails_the_deployment_with_the_reason(
    migrate_function: ModuleType,
    cloudformation: CloudFormationAnswers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/gone")

    migrate_function.handler(request("Create", cloudformation), DeployContext())

    answer = cloudformation.only
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("migration failed: ")
    assert "ConnectionRefusedError" in answer["Reason"]
    # CloudFormation needs an id even for a resource it never created.
    assert answer["PhysicalResourceId"] == "Migrations-migrations"


def test_delete_answers_success_without_touching_the_database(
    migrate_function: ModuleType,
    cloudformation: CloudFormationAnswers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/gone")

    def never() -> None:
        raise AssertionError("Delete must not migrate")

    monkeypatch.setattr(migrate_function, "upgrade", never)

    migrate_function.handler(request("Delete", cloudformation), DeployContext())

    assert cloudformation.only["Status"] == "SUCCESS"
    assert cloudformation.only["PhysicalResourceId"] == "Migrations-migrations"


def test_a_migration_over_its_time_budget_answers_failed_and_ends_the_process(
    migrate_function: ModuleType,
    cloudformation: CloudFormationAnswers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits: list[int] = []
    monkeypatch.setattr(migrate_function, "os", SimpleNamespace(_exit=exits.append))
    monkeypatch.setattr(migrate_function, "upgrade", lambda: time.sleep(1))

    class NearlyOutOfTime(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return migrate_function.ANSWER_MARGIN_MS + 100  # type: ignore[no-any-return]

    migrate_function.handler(request("Create", cloudformation), NearlyOutOfTime())

    assert cloudformation.only["Status"] == "FAILED"
    assert cloudformation.only["Reason"] == "migration unfinished after 0 s"
    assert exits == [1]
