"""Token verification with real RSA and EC keys and a JWKS served over HTTP.

Every way a token must be refused, the algorithms taken from the
configuration only, and the JWKS fetched once and refreshed once on an
unknown kid.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import jwt
import pytest
from moto import mock_aws

from storefront.adapters.endpoints import read_secret
from storefront.auth.errors import AuthConfigurationError, InvalidToken, KeysUnavailable
from storefront.auth.jwks import JwksKeys
from storefront.auth.principal import IssuedToken, Principal
from storefront.auth.tokens import TokenPolicy, TokenVerifier
from storefront.settings import Settings
from storefront_dev.embedded import free_port
from tests.unit.issuer import (
    AUDIENCE,
    ISSUER,
    REFUSED_CASES,
    JwksServer,
    Keys,
    claims,
    ec_key,
    jwks_server,
    refused_tokens,
    rsa_key,
)

HS_SECRET = "a-test-secret-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture(autouse=True)
def no_auth_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Other test modules configure the process for HS256; these build their own.
    for name in [name for name in os.environ if name.startswith("AUTH_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(rsa_key("rsa-1"), ec_key("ec-1"), rsa_key("rsa-1"), rsa_key("ghost"))


@pytest.fixture
def issuer(keys: Keys) -> Iterator[JwksServer]:
    with jwks_server(keys.rsa, keys.ec) as server:
        yield server


def verifier(issuer: JwksServer, algorithms: str = "RS256,ES256", **changes: Any) -> TokenVerifier:
    settings = Settings(
        auth_algorithms=algorithms,
        auth_jwks_url=issuer.url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        **changes,
    )
    return TokenVerifier.from_settings(settings)


async def test_valid_rs256_and_es256_tokens_name_their_subject(
    issuer: JwksServer, keys: Keys
) -> None:
    check = verifier(issuer)
    assert await check.verify(keys.rsa.sign(claims())) == Principal("alice", is_admin=False)
    assert await check.verify(keys.ec.sign(claims(sub="bob"))) == Principal("bob")


@pytest.mark.parametrize("case", REFUSED_CASES)
async def test_refused(case: str, issuer: JwksServer, keys: Keys) -> None:
    token, reason = refused_tokens(keys)[case]
    with pytest.raises(InvalidToken) as refused:
        await verifier(issuer).verify(token)
    assert refused.value.reason == reason
    assert token not in refused.value.description


async def test_the_algorithms_come_from_the_configuration(issuer: JwksServer, keys: Keys) -> None:
    es256 = keys.ec.sign(claims())
    with pytest.raises(InvalidToken) as refused:
        await verifier(issuer, algorithms="RS256").verify(es256)
    assert refused.value.reason == "algorithm_refused"
    assert await verifier(issuer, algorithms="ES256").verify(es256) == Principal("alice")


async def test_small_clock_skew_is_tolerated(issuer: JwksServer, keys: Keys) -> None:
    now = int(time.time())
    token = keys.rsa.sign(claims(exp=now - 5, nbf=now + 5))
    assert await verifier(issuer).verify(token) == Principal("alice")


@pytest.mark.parametrize(
    ("extra", "changes", "is_admin"),
    [
        ({"cognito:groups": ["admin", "staff"]}, {}, True),
        ({"cognito:groups": ["staff"]}, {}, False),
        ({"cognito:groups": "admins"}, {}, False),
        ({"role": "admin"}, {"auth_admin_claim": "role"}, True),
        ({"scope": "orders:read admin"}, {"auth_admin_claim": "scope"}, True),
        ({"cognito:groups": ["admin"]}, {"auth_admin_claim": "role"}, False),
    ],
)
async def test_admin_comes_from_the_configured_claim(
    issuer: JwksServer,
    keys: Keys,
    extra: dict[str, object],
    changes: dict[str, str],
    is_admin: bool,
) -> None:
    principal = await verifier(issuer, **changes).verify(keys.rsa.sign(claims(**extra)))
    assert principal.is_admin is is_admin


async def test_keys_are_fetched_once_per_container(issuer: JwksServer, keys: Keys) -> None:
    check = verifier(issuer)
    for _ in range(3):
        await check.verify(keys.rsa.sign(claims()))
        await check.verify(keys.ec.sign(claims()))
    assert issuer.fetches == 1


def with_cooldown(issuer: JwksServer, seconds: float) -> TokenVerifier:
    policy = TokenPolicy(("RS256", "ES256"), ISSUER, AUDIENCE)
    return TokenVerifier(policy, jwks=JwksKeys(issuer.url, cooldown=seconds))


async def test_an_unknown_kid_refreshes_the_keys_once(issuer: JwksServer, keys: Keys) -> None:
    check = with_cooldown(issuer, 0.2)
    await check.verify(keys.rsa.sign(claims()))
    await asyncio.sleep(0.25)  # past the cooldown that the first fetch started

    for _ in range(5):
        with pytest.raises(InvalidToken) as refused:
            await check.verify(keys.ghost.sign(claims()))
        assert refused.value.reason == "unknown_key"

    assert issuer.fetches == 2, "one fetch, then ONE refresh for all five unknown kids"


async def test_a_rotated_key_is_found_by_that_refresh(issuer: JwksServer, keys: Keys) -> None:
    check = with_cooldown(issuer, 0.2)
    await check.verify(keys.rsa.sign(claims()))
    rotated = rsa_key("rsa-2")
    issuer.keys.append(rotated)
    await asyncio.sleep(0.25)

    assert await check.verify(rotated.sign(claims())) == Principal("alice")
    assert await check.verify(rotated.sign(claims())) == Principal("alice")
    assert issuer.fetches == 2


async def test_an_unreachable_jwks_is_not_the_callers_fault(keys: Keys) -> None:
    nowhere = JwksServer(url=f"http://127.0.0.1:{free_port()}/jwks.json")
    with pytest.raises(KeysUnavailable):
        await verifier(nowhere).verify(keys.rsa.sign(claims()))


def hs256(secret: str = HS_SECRET, **changes: Any) -> str:
    return jwt.encode(claims(**changes), secret, algorithm="HS256")


async def test_hs256_with_a_configured_secret() -> None:
    check = TokenVerifier.from_settings(
        Settings(
            auth_algorithms="HS256",
            auth_hs256_secret=HS_SECRET,
            auth_issuer=ISSUER,
            auth_audience=AUDIENCE,
        )
    )
    assert await check.verify(hs256()) == Principal("alice")
    with pytest.raises(InvalidToken, match="bad_signature"):
        await check.verify(hs256(secret="another-secret-that-is-just-as-long-0123456789"))
    with pytest.raises(InvalidToken, match="algorithm_refused"):
        await check.verify(rsa_key("rsa-9").sign(claims()))


@pytest.fixture
def secret_arn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    read_secret.cache_clear()
    with mock_aws():
        created = boto3.client("secretsmanager").create_secret(
            Name="storefront/auth", SecretString=json.dumps({"secret": HS_SECRET})
        )
        yield created["ARN"]
    read_secret.cache_clear()


async def test_hs256_secret_read_from_secrets_manager(secret_arn: str) -> None:
    settings = Settings(
        auth_algorithms="HS256",
        auth_secret_arn=secret_arn,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )
    assert await TokenVerifier.from_settings(settings).verify(hs256()) == Principal("alice")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            lambda: Settings(auth_algorithms="HS256,RS256", auth_issuer="i", auth_audience="a"),
            "mixes",
        ),
        (lambda: Settings(auth_jwks_url="http://x/jwks", auth_audience="a"), "AUTH_ISSUER"),
        (lambda: Settings(auth_issuer="i", auth_audience="a"), "AUTH_JWKS_URL"),
        (lambda: Settings(auth_algorithms="HS256", auth_issuer="i", auth_audience="a"), "SECRET"),
        (
            lambda: Settings(
                auth_algorithms="HS256",
                auth_hs256_secret="short",
                auth_issuer="i",
                auth_audience="a",
            ),
            "needs 32",
        ),
    ],
)
def test_configuration_that_cannot_verify_is_refused(
    settings: Callable[[], Settings], named: str
) -> None:
    with pytest.raises(AuthConfigurationError, match=named):
        TokenVerifier.from_settings(settings())


def test_an_unknown_algorithm_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="auth_algorithms"):
        Settings(auth_algorithms="none")


async def test_the_refusals_of_iat_and_lifetime_say_what_is_wrong(
    issuer: JwksServer, keys: Keys
) -> None:
    now = int(time.time())
    expected = {
        "no iat": "The token lacks the iat claim.",
        "issued in the future": "The token's iat is in the future.",
        "lives too long": "The token lives longer than the 86400 s allowed (exp - iat).",
    }
    check = verifier(issuer)
    for case, description in expected.items():
        token, _ = refused_tokens(keys)[case]
        with pytest.raises(InvalidToken) as refused:
            await check.verify(token)
        assert refused.value.description == description

    # At the edges: a day exactly, and an iat inside the leeway.
    assert await check.verify(keys.rsa.sign(claims(iat=now, exp=now + 86_400)))
    assert await check.verify(keys.rsa.sign(claims(iat=now + 20)))


async def test_the_maximum_lifetime_is_a_setting(issuer: JwksServer, keys: Keys) -> None:
    now = int(time.time())
    two_hours = keys.rsa.sign(claims(iat=now, exp=now + 7200))
    assert await verifier(issuer).verify(two_hours)

    with pytest.raises(InvalidToken) as refused:
        await verifier(issuer, auth_max_token_lifetime_seconds=3600).verify(two_hours)
    assert refused.value.reason == "lifetime_too_long"
    assert "3600 s" in refused.value.description


async def test_without_required_iat_the_lifetime_counts_from_now(
    issuer: JwksServer, keys: Keys
) -> None:
    now = int(time.time())
    lenient = verifier(issuer, auth_require_iat=False)

    principal = await lenient.verify(keys.rsa.sign(claims(iat=None, exp=now + 3600)))
    assert principal.token is not None
    assert principal.token.issued_at is None
    with pytest.raises(InvalidToken) as refused:
        await lenient.verify(keys.rsa.sign(claims(iat=None, exp=now + 2 * 86_400)))
    assert refused.value.reason == "lifetime_too_long"
    with pytest.raises(InvalidToken, match="issued_in_future"):
        await lenient.verify(keys.rsa.sign(claims(iat=now + 120)))


async def test_the_principal_carries_what_revocation_needs(issuer: JwksServer, keys: Keys) -> None:
    now = int(time.time())
    principal = await verifier(issuer).verify(
        keys.rsa.sign(claims(iat=now - 5, exp=now + 60, jti="token-1"))
    )
    assert principal.token == IssuedToken(now + 60, issued_at=now - 5, token_id="token-1")

    without_jti = await verifier(issuer).verify(keys.rsa.sign(claims()))
    assert without_jti.token is not None
    assert without_jti.token.token_id is None
    # The token is not part of who the caller is.
    assert principal == Principal("alice")
