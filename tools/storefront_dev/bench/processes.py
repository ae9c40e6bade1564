"""The relay and the workers as real processes, started, watched and killed.

Used by the end-to-end latency benchmark (they run as they do on Lambda, in
loop mode with the template's time budget) and by the chaos scenarios (they
are SIGKILLed at random and started again, as Lambda would start a new
container).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SAGA_FUNCTIONS", "FunctionProcess", "project_root"]

# The functions an order goes through after its commit.
SAGA_FUNCTIONS = ("OutboxRelayFunction", "InventoryWorkerFunction", "OrderWorkerFunction")


def project_root() -> Path:
    here = Path.cwd().resolve()
    for directory in (here, *here.parents, Path(__file__).resolve().parents[3]):
        if (directory / "template.yaml").is_file():
            return directory
    raise RuntimeError("no template.yaml here or above; run from the Storefront checkout")


@dataclass
class FunctionProcess:
    """One function's container process (``storefront_dev.bench.function_runner``)."""

    function: str
    environment: Mapping[str, str]
    root: Path = field(default_factory=project_root)
    timeout_seconds: int | None = None
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, *, wait: bool = True) -> None:
        ready = Path(tempfile.mkstemp(prefix="sf-ready-")[1])
        ready.unlink()
        command = [
            sys.executable,
            "-m",
            "storefront_dev.bench.function_runner",
            self.function,
            "--root",
            str(self.root),
            "--ready-file",
            str(ready),
        ]
        if self.timeout_seconds:
            command += ["--timeout", str(self.timeout_seconds)]
        # Logs (JSON lines, EMF) go to a file: kept for a post-mortem, off the terminal.
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(  # noqa: S603  (our own module, our own arguments)
                command,
                env={**os.environ, **self.environment},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if output is not subprocess.DEVNULL:
                output.close()  # type: ignore[union-attr]
        self.starts += 1
        if wait:
            self._wait_ready(ready)

    def _wait_ready(self, ready: Path, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        try:
            while not ready.exists():
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"{self.function} exited during init; see {self.log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.function} not ready after {timeout:.0f}s")
                time.sleep(0.02)
        finally:
            ready.unlink(missing_ok=True)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process dies wherever it is, as a Lambda container may."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if not self.alive:
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
