"""`sam build` makes complete, lean artifacts: each function runs from them alone.

The build is the real one (``sam build`` with the layers' Makefiles), for the
local interpreter's platform and version instead of Lambda's (the layer
Makefile's ``LAMBDA_PLATFORM`` / ``LAMBDA_PYTHON``, with the layers' bytecode
compiled by this interpreter: ``BYTECODE_PYTHON``; ``sam build`` passes its
environment to makefile builds), made once per module in a temporary folder.
Each function's handler is then imported and invoked in a fresh
``python -I -S`` whose ``sys.path`` holds the standard library, the
function's built folder, the layers' ``python/`` and a stand-in for what
Lambda's runtime itself provides (boto3, botocore), nothing else
(invoke_built.py): API functions with the GET sample events of
``events/<function>/`` on the session's PostgreSQL and Redis, scheduled ones
with their scheduled event and a short time budget, the others only imported.
Each function runs in its own process, as on Lambda.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storefront_dev.local_build import modules_with_bytecode
from storefront_dev.templates import load_template
from tests.conftest import TEST_AUTH, bearer, own_database, token_for
from tests.infra.local_build import (
    LAYERS,
    ROOT,
    SAM,
    Invocation,
    finish,
    lambda_runtime,
    lock_requirers,
    sam_build,
    sample_events,
    start_invocation,
)

pytestmark = pytest.mark.build

TEMPLATE = load_template(ROOT / "template.yaml")
# The layers' bytecode is compiled by the Python the build is for: Lambda's
# 3.12 in make build, this interpreter here (local_build.sam_build).
CACHE_TAG = sys.implementation.cache_tag
# Of the modules in each layer (issue 14): a package's module that this
# Python cannot compile (Python 2 leftovers) may ship without.
MIN_BYTECODE_SHARE = 0.95
FUNCTIONS = sorted(TEMPLATE.functions)
# A scheduled invocation works until this budget less its margin is spent.
SCHEDULED_BUDGET_MS = 1_000
SCHEDULED_MARGIN_MS = 500


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SAM.exists():
        pytest.skip(f"no SAM CLI at {SAM}: `make .venv-sam/bin/sam` (make test installs it)")
    return sam_build(tmp_path_factory.mktemp("sam"))


def test_functions_are_their_entrypoint_alone(build_dir: Path) -> None:
    for logical_id in FUNCTIONS:
        files = sorted(p.name for p in (build_dir / logical_id).rglob("*"))
        assert files == ["app.py"], f"{logical_id}: {files}"


def test_layers_carry_only_what_lambda_runs(build_dir: Path) -> None:
    dependencies = build_dir / "DependenciesLayer" / "python"
    storefront = build_dir / "StorefrontLayer" / "python"
    assert sorted(p.name for p in storefront.iterdir()) == ["storefront"]
    for layer in (dependencies, storefront):
        foreign = [p.name for p in layer.rglob("*.pyc") if f".{CACHE_TAG}." not in p.name]
        assert not foreign, f"bytecode of another Python than the build's: {foreign[:5]}"
    # The runtime ships botocore and the packages it alone pulls in.
    for provided in ("botocore", "dateutil", "six.py", "bin", "include"):
        assert not (dependencies / provided).exists(), provided
    assert not list(dependencies.glob("*.dist-info/RECORD"))
    assert (dependencies / "jmespath").is_dir()  # Powertools' own dependency stays
    assert (dependencies / "urllib3").is_dir()  # requests' (Stripe's), at the lock's version


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_ship_bytecode_valid_however_unpacked(build_dir: Path, layer: str) -> None:
    """Lambda cannot write bytecode to /opt: a module without it compiles at every
    cold start. Unchecked hash-based .pyc hold whatever times the files get."""
    compiled, modules = modules_with_bytecode(build_dir / layer / "python", CACHE_TAG)
    assert modules > 0
    assert compiled >= MIN_BYTECODE_SHARE * modules, f"{compiled} of {modules} modules"


def test_runtime_provided_packages_are_in_the_lock_for_botocore_alone() -> None:
    """What the dependencies layer leaves out is there only because of botocore."""
    makefile = (ROOT / "layers" / "dependencies" / "Makefile").read_text()
    match = re.search(r"^RUNTIME_PROVIDED := (.+)$", makefile, re.MULTILINE)
    assert match
    left_out = set(match.group(1).split())
    requirers = lock_requirers()
    assert left_out <= set(requirers), left_out - set(requirers)
    assert "botocore" in left_out  # the one the runtime provides on purpose
    for package in left_out - {"botocore"}:
        wanted_by = requirers[package] - left_out
        assert not wanted_by, f"{package} is also needed by {wanted_by}"


@pytest.fixture(scope="module")
def smoke_environment(
    database_server_url: str, redis_url: str, redis_key_prefix: str
) -> Iterator[dict[str, str]]:
    """What the template's environment would give, on a database of the test's own."""
    with own_database(database_server_url, "smoke") as database_url:
        yield {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            # Under the session's prefix, so the session's clean-up removes it.
            "REDIS_KEY_PREFIX": f"{redis_key_prefix}smoke:",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "TIME_BUDGET_MARGIN_MS": str(SCHEDULED_MARGIN_MS),
            **TEST_AUTH.environment(),
        }


@pytest.fixture(scope="module")
def invocations(
    build_dir: Path,
    smoke_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Invocation | str]:
    """Each function invoked in its own process; a string says why it was not.

    The first runs alone and leaves the layers' bytecode (in a folder of its
    own) for the others, which then run all at once.
    """
    runtime = lambda_runtime(tmp_path_factory.mktemp("var-runtime"))
    pycache = tmp_path_factory.mktemp("pycache")
    admin = bearer(token_for("smoke-admin", admin=True))
    started: dict[str, Invocation | str] = {}
    for logical_id in FUNCTIONS:
        spec = TEMPLATE.functions[logical_id]
        try:
            events = sample_events(spec, admin)
        except AssertionError as missing:
            started[logical_id] = str(missing)
            continue
        # Lambda's order: /var/task, the layers (/opt/python), /var/runtime.
        paths = [build_dir / logical_id, *(build_dir / layer / "python" for layer in LAYERS)]
        folder = tmp_path_factory.mktemp(logical_id)
        invocation = start_invocation(
            [*paths, runtime], spec, events, SCHEDULED_BUDGET_MS, smoke_environment, folder, pycache
        )
        if not any(isinstance(other, Invocation) for other in started.values()):
            finish(invocation)  # the first: it compiles, the others reuse
        started[logical_id] = invocation
    return {
        logical_id: invocation if isinstance(invocation, str) else finish(invocation)
        for logical_id, invocation in started.items()
    }


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_function_runs_from_its_artifacts_alone(
    invocations: dict[str, Invocation | str], build_dir: Path, logical_id: str
) -> None:
    invocation = invocations[logical_id]
    assert not isinstance(invocation, str), invocation
    assert invocation.process.returncode == 0, invocation.log
    outcome = invocation.outcome
    for module, origin in outcome["origins"].items():
        assert origin is not None
        assert Path(origin).is_relative_to(build_dir), f"{module} from {origin}"
    assert len(outcome["answers"]) == len(invocation.events)
    for event, answer in zip(invocation.events, outcome["answers"], strict=True):
        if "HttpApi" in TEMPLATE.functions[logical_id].event_types:
            # 404 is an answer too: a sample may name a product that is not there.
            assert answer["statusCode"] in {200, 404}, (event["rawPath"], answer)
        else:
            assert isinstance(answer, dict), answer
