"""A real localstripe (a stateful fake Stripe server) for the payment tests.

It is a dev dependency, so a missing executable fails the tests rather than
skipping them: a skipped payment suite would pass for the wrong reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from storefront.resources import Resources
from storefront_dev.embedded import free_port

# Any key works with localstripe; it only has to look like a test key.
TEST_SECRET_KEY = "sk_test_storefront"


def _executable() -> str:
    # The venv's scripts sit beside its python, which need not be on PATH.
    found = shutil.which("localstripe", path=str(Path(sys.executable).parent))
    found = found or shutil.which("localstripe")
    if found is None:
        pytest.fail(
            "the localstripe executable is missing: it is a dev dependency "
            "(pip install -r requirements-dev.lock)",
            pytrace=False,
        )
    return found


class LocalStripe:
    """One localstripe process on a fixed port, which the tests may stop and restart."""

    def __init__(self, executable: str, port: int) -> None:
        self.executable = executable
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # --from-scratch: it would otherwise load the state another run left
        # in /tmp/localstripe.pickle.
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--from-scratch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_listening(self.process)

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

    def _wait_until_listening(self, process: subprocess.Popen[bytes]) -> None:
        # A bound on how long to wait for start-up, not a measurement.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited with code {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        process.kill()
        raise RuntimeError(f"localstripe did not listen on port {self.port}")


@contextmanager
def running_localstripe() -> Iterator[LocalStripe]:
    """A localstripe of its own on a free port, stopped when the block ends."""
    server = LocalStripe(_executable(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    with running_localstripe() as server:
        yield server


@pytest.fixture
async def no_orders(resources: Resources, redis_key_prefix: str) -> None:
    """No orders, payments, Stripe events or events, in PostgreSQL or Redis:
    for the tests that use the database (the gateway's need none)."""
    async with resources.engine.begin() as connection:
        await connection.execute(
            text(
                "TRUNCATE orders, payment_intents, stripe_events, outbox, event_partitions,"
                " consumer_positions, dead_letters CASCADE"
            )
        )
    keys = [key async for key in resources.redis.scan_iter(match=f"{redis_key_prefix}*")]
    if keys:
        await resources.redis.delete(*keys)
