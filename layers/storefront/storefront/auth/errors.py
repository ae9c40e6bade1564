"""Why a token was refused, kept apart from PyJWT so importing these costs nothing.

Importing PyJWT pulls in ``cryptography`` (~120 ms of cold start); the web
layer catches these on every protected request but imports the verifier only
when a request first brings a token.
"""

from __future__ import annotations

__all__ = ["AuthConfigurationError", "InvalidToken", "KeysUnavailable"]


class InvalidToken(Exception):
    """A token that proves nothing.

    ``reason`` is a short, stable class for logs and metrics (``expired``,
    ``bad_signature``, ...); ``description`` is safe to show the caller. Neither
    ever contains any part of the token.
    """

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.description = description


class KeysUnavailable(Exception):
    """The issuer's JWKS cannot be fetched: our problem, not the caller's."""


class AuthConfigurationError(RuntimeError):
    """The AUTH_* settings cannot verify any token; the message names what to set."""
