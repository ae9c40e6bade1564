"""A fake OIDC issuer for token tests: real keys, and a JWKS served over HTTP.

The keys are generated per test session with ``cryptography``; the JWKS is
served by a tiny HTTP server on 127.0.0.1 that counts its requests, so tests
see exactly when the verifier fetches the key set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://issuer.test/pool"
AUDIENCE = "storefront-api"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class SigningKey:
    kid: str
    private: PrivateKey
    algorithm: str

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        return data | {"kid": self.kid, "use": "sig", "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid} | header
        )


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")


def claims(**changes: Any) -> dict[str, Any]:
    """A valid claim set for ``alice``; ``changes`` override, None removes."""
    now = int(time.time())
    base = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    merged = base | changes
    return {name: value for name, value in merged.items() if value is not None}


def unsigned(header: dict[str, Any], payload: dict[str, Any], key: bytes = b"") -> str:
    """A token built by hand, as an attacker would: HMAC-SHA256 with ``key``,
    or no signature at all when ``key`` is empty (``alg: none``)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(payload)}"
    if not key:
        return f"{signing_input}."
    digest = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


@dataclass
class JwksServer:
    """Serves ``keys`` as a JWKS at ``url``; ``fetches`` counts the requests."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def serve(self) -> bytes:
        self.fetches += 1
        return json.dumps({"keys": [key.jwk() for key in self.keys]}).encode()


@contextmanager
def jwks_server(*keys: SigningKey) -> Iterator[JwksServer]:
    state = JwksServer(list(keys))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = state.serve()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    # A short poll interval: shutdown() waits for one, once per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Keys:
    rsa: SigningKey
    ec: SigningKey
    impostor: SigningKey  # same kid as ``rsa``, other key material
    ghost: SigningKey  # a kid the issuer never published


def public_pem(key: SigningKey) -> bytes:
    return key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def refused_tokens(keys: Keys) -> dict[str, tuple[str, str]]:
    """Case -> (token, the reason it is refused for)."""
    now = int(time.time())
    valid = keys.rsa.sign(claims())
    other_payload = keys.rsa.sign(claims(sub="mallory")).split(".")[1]
    head, _, signature = valid.split(".")
    return {
        "expired": (keys.rsa.sign(claims(exp=now - 120, iat=now - 600)), "expired"),
        "not yet valid": (keys.rsa.sign(claims(nbf=now + 300)), "not_yet_valid"),
        "wrongly signed": (keys.impostor.sign(claims()), "bad_signature"),
        "tampered": (f"{head}.{other_payload}.{signature}", "bad_signature"),
        "wrong issuer": (keys.rsa.sign(claims(iss="https://evil.test")), "wrong_issuer"),
        "wrong audience": (keys.rsa.sign(claims(aud="another-api")), "wrong_audience"),
        "no expiry": (keys.rsa.sign(claims(exp=None)), "missing_claim"),
        "no audience": (keys.rsa.sign(claims(aud=None)), "missing_claim"),
        "no subject": (keys.rsa.sign(claims(sub=None)), "missing_claim"),
        "no iat": (keys.rsa.sign(claims(iat=None)), "missing_claim"),
        # Past the 30 s leeway.
        "issued in the future": (keys.rsa.sign(claims(iat=now + 120)), "issued_in_future"),
        # A day (AUTH_MAX_TOKEN_LIFETIME_SECONDS' default) and a second.
        "lives too long": (
            keys.rsa.sign(claims(iat=now - 1, exp=now + 86_400)),
            "lifetime_too_long",
        ),
        "lives ten years": (
            keys.rsa.sign(claims(exp=now + 10 * 365 * 86_400)),
            "lifetime_too_long",
        ),
        "empty subject": (keys.rsa.sign(claims(sub="")), "bad_subject"),
        # A NUL cannot be stored in PostgreSQL text: it would fail every query.
        "subject with a NUL": (keys.rsa.sign(claims(sub="al\x00ice")), "bad_subject"),
        "alg none": (unsigned({"alg": "none", "kid": "rsa-1"}, claims()), "algorithm_refused"),
        "HS256 with the RS256 public key": (
            unsigned({"alg": "HS256", "kid": "rsa-1"}, claims(), key=public_pem(keys.rsa)),
            "algorithm_refused",
        ),
        "unknown kid": (keys.ghost.sign(claims()), "unknown_key"),
        "no kid": (jwt.encode(claims(), keys.rsa.private, algorithm="RS256"), "malformed"),
        "not a JWT": ("not-a-token", "malformed"),
        "three dots of garbage": ("abc.def.ghi", "malformed"),
        "oversized": ("a" * 10_000, "malformed"),
    }


REFUSED_CASES = [
    "subject with a NUL",
    "expired",
    "not yet valid",
    "wrongly signed",
    "tampered",
    "wrong issuer",
    "wrong audience",
    "no expiry",
    "no audience",
    "no subject",
    "no iat",
    "issued in the future",
    "lives too long",
    "lives ten years",
    "empty subject",
    "alg none",
    "HS256 with the RS256 public key",
    "unknown kid",
    "no kid",
    "not a JWT",
    "three dots of garbage",
    "oversized",
]
