"""Revocation's keys and verdicts (storefront.auth.revocation), without Redis,
and the local tokens that logout can revoke one by one."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from storefront.auth.principal import IssuedToken, Principal
from storefront.auth.revocation import NotRevocable, TokenRevocations, Verdict
from storefront.settings import Settings
from storefront_dev.local_auth import LocalAuth, NotMintable, mint_token

SETTINGS = Settings(redis_key_prefix="sf:")
NOW = int(time.time())


class NoRedis:
    """Keys and verdicts never touch Redis; anything that does fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Redis was used: {name}")


def store() -> TokenRevocations:
    return TokenRevocations(NoRedis(), SETTINGS)  # type: ignore[arg-type]


def principal(
    subject: str = "alice", *, jti: str | None = "jti-1", iat: int | None = NOW - 10
) -> Principal:
    return Principal(subject, token=IssuedToken(NOW + 3600, issued_at=iat, token_id=jti))


def test_keys_name_neither_the_subject_nor_the_token() -> None:
    keys = store().keys_of(principal("alice@example.com", jti="7f1c0de"))

    assert len(keys) == 2
    assert all(key.startswith("sf:revoked-") for key in keys)
    assert not any("alice" in key or "7f1c0de" in key for key in keys)
    # Each key is read by a GET of its own: no hash tag ties them to one slot.
    assert not any("{" in key for key in keys)


def test_a_tokens_key_is_its_own_and_the_subjects_is_shared() -> None:
    first, other_token, other_subject = (
        store().keys_of(principal("alice", jti="a")),
        store().keys_of(principal("alice", jti="b")),
        store().keys_of(principal("bob", jti="a")),
    )
    assert first[0] != other_token[0]
    assert first[1] == other_token[1]
    assert first[0] != other_subject[0]
    assert first[1] != other_subject[1]


def test_a_token_without_jti_is_known_by_its_iat() -> None:
    same_second = store().keys_of(principal(jti=None, iat=NOW))
    assert store().keys_of(principal(jti=None, iat=NOW)) == same_second
    assert store().keys_of(principal(jti=None, iat=NOW - 1)) != same_second
    # Neither: only the subject's key says anything of it.
    assert len(store().keys_of(principal(jti=None, iat=None))) == 1


async def test_a_token_with_neither_jti_nor_iat_cannot_be_revoked_alone() -> None:
    with pytest.raises(NotRevocable):
        await store().revoke_token(principal(jti=None, iat=None))


def values(caller: Principal, own: bytes | None, before: bytes | None) -> dict[str, bytes | None]:
    keys = store().keys_of(caller)
    return dict(zip(keys, [own, before][-len(keys) :], strict=True))


@pytest.mark.parametrize(
    ("own", "before", "verdict"),
    [
        (None, None, Verdict.VALID),
        (b"1", None, Verdict.REVOKED),
        # Revoked at or after the second it was issued in: revoked.
        (None, str(NOW - 10).encode(), Verdict.REVOKED),
        (None, str(NOW).encode(), Verdict.REVOKED),
        # Issued after the revocation: valid.
        (None, str(NOW - 11).encode(), Verdict.VALID),
        (None, b"not a time", Verdict.REVOKED),
    ],
)
def test_the_verdict(own: bytes | None, before: bytes | None, verdict: Verdict) -> None:
    caller = principal(iat=NOW - 10)
    assert store().verdict(caller, values(caller, own, before)) is verdict


def test_a_key_that_could_not_be_read_makes_the_verdict_unknown() -> None:
    caller = principal()
    own, subject = store().keys_of(caller)

    assert store().verdict(caller, {}) is Verdict.UNKNOWN
    assert store().verdict(caller, {own: None}) is Verdict.UNKNOWN
    assert store().verdict(caller, {subject: None}) is Verdict.UNKNOWN
    # Revoked by its own key, whatever the other says: still unknown, as
    # nothing of a half-read pipeline is trusted.
    assert store().verdict(caller, {own: b"1"}) is Verdict.UNKNOWN


def test_without_iat_a_subjects_revocation_revokes_the_token() -> None:
    caller = principal(jti=None, iat=None)
    assert store().verdict(caller, values(caller, None, str(NOW).encode())) is Verdict.REVOKED
    assert store().verdict(caller, values(caller, None, None)) is Verdict.VALID


AUTH = LocalAuth("s" * 40, "issuer", "audience", "cognito:groups", "admin", 3600)


def test_local_tokens_have_iat_a_jti_of_their_own_and_fit_the_maximum() -> None:
    tokens = [mint_token(AUTH, "alice", ttl_seconds=3600) for _ in range(2)]
    claims = [
        jwt.decode(token, AUTH.secret, algorithms=["HS256"], audience="audience")
        for token in tokens
    ]

    assert all(claim["exp"] - claim["iat"] == 3600 for claim in claims)
    assert claims[0]["jti"] != claims[1]["jti"]
    with pytest.raises(NotMintable, match="AUTH_MAX_TOKEN_LIFETIME_SECONDS"):
        mint_token(AUTH, "alice", ttl_seconds=3601)
