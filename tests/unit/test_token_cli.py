"""``storefront token``: one token alone on stdout, or a refusal on stderr;
and the local secret ``make run`` shares with it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from storefront.settings import Settings
from storefront_dev.cli import main
from storefront_dev.local_auth import (
    LOCAL_AUDIENCE,
    LOCAL_ISSUER,
    ensure_local_secret,
    local_auth_environment,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "a-local-secret-for-the-token-cli-tests-0123456789"


@pytest.fixture(autouse=True)
def local_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("AUTH_")]:
        monkeypatch.delenv(name)
    # Never the checkout's .local/auth-secret: these tests leave it alone.
    monkeypatch.setenv("AUTH_HS256_SECRET", SECRET)


def decode(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience=LOCAL_AUDIENCE, issuer=LOCAL_ISSUER
    )
    return claims


def test_stdout_is_exactly_one_token_line() -> None:
    # A real process: whatever any import or logger prints would show here.
    done = subprocess.run(
        [sys.executable, "-m", "storefront_dev.cli", "token", "--sub", "alice"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
    )

    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert done.stdout == lines[0] + "\n"
    assert decode(lines[0])["sub"] == "alice"


def test_a_customer_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--sub", "alice"]) == 0
    claims = decode(capsys.readouterr().out.strip())

    assert claims["sub"] == "alice"
    assert "cognito:groups" not in claims
    assert int(str(claims["exp"])) - int(str(claims["iat"])) == 3600


def test_an_admin_token_with_its_own_lifetime(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--sub", "root", "--admin", "--ttl", "60"]) == 0
    claims = decode(capsys.readouterr().out.strip())

    assert claims["cognito:groups"] == ["admin"]
    assert int(str(claims["exp"])) - int(str(claims["iat"])) == 60


def test_the_admin_claim_follows_the_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_ADMIN_CLAIM", "role")
    monkeypatch.setenv("AUTH_ADMIN_VALUE", "superuser")
    assert main(["token", "--sub", "root", "--admin"]) == 0
    assert decode(capsys.readouterr().out.strip())["role"] == ["superuser"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTH_JWKS_URL", "https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json"),
        ("AUTH_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:auth"),
    ],
)
def test_refuses_when_a_real_issuer_is_configured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    if variable == "AUTH_SECRET_ARN":
        monkeypatch.delenv("AUTH_HS256_SECRET")

    assert main(["token", "--sub", "alice"]) != 0
    said = capsys.readouterr()
    assert said.out == ""
    assert variable in said.err


def test_ttl_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token", "--sub", "alice", "--ttl", "0"])
    assert exited.value.code != 0
    assert capsys.readouterr().out == ""


def test_the_local_secret_is_made_once_and_private(tmp_path: Path) -> None:
    first = ensure_local_secret(tmp_path)
    again = ensure_local_secret(tmp_path)

    path = tmp_path / ".local" / "auth-secret"
    assert first == again
    assert len(first) >= 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_local_stack_gets_what_storefront_token_signs_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AUTH_HS256_SECRET")
    environment = local_auth_environment(Settings(), tmp_path)

    assert environment == {
        "AUTH_ALGORITHMS": "HS256",
        "AUTH_HS256_SECRET": ensure_local_secret(tmp_path),
        "AUTH_ISSUER": LOCAL_ISSUER,
        "AUTH_AUDIENCE": LOCAL_AUDIENCE,
        "AUTH_ADMIN_CLAIM": "cognito:groups",
        "AUTH_ADMIN_VALUE": "admin",
    }
    monkeypatch.setenv("AUTH_JWKS_URL", "https://issuer.example/jwks.json")
    assert local_auth_environment(Settings(), tmp_path) == {}, "the developer's issuer wins"
