"""Sending an email, behind a small interface: Amazon SES (API v2) through boto3.

boto3 is imported where the first email is sent, never at module level: the
Lambda runtime ships it (it is no dependency of the layer) and it costs about
100 ms of import that no other function should pay. One client per container
and endpoint, made on first use; ``SES_ENDPOINT_URL`` points it at another
SES (moto's server under ``make run`` and in the tests).

boto3 blocks, so a send runs in a worker thread (``asyncio.to_thread``) and
the container's one event loop keeps serving.

Sending an email is not idempotent: SES takes the same request twice as two
emails. So botocore retries nothing itself (it would resend after a read
timeout, when the first request may well have been accepted). This adapter
retries only what certainly sent nothing (SES answered with an error, or no
connection was made), and says which of three ways a failed send ended:

* :class:`MailerUnavailable`: nothing was sent, SES is throttling or out of
  reach: try again later (a :class:`~storefront.errors.DependencyUnavailable`,
  which the worker does not count against the event's deliveries);
* :class:`MailerRefused`: nothing was sent, SES said no (an unverified sender,
  a malformed address): retrying the same email will not help;
* :class:`MailerOutcomeUnknown`: the request left, and no answer came back:
  SES may have accepted it (not counted either: SES is in trouble).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol

from storefront.errors import DependencyUnavailable
from storefront.notifications.emails import Email
from storefront.settings import Settings

__all__ = [
    "Mailer",
    "MailerOutcomeUnknown",
    "MailerRefused",
    "MailerUnavailable",
    "SesMailer",
    "ses_client",
]


class MailerUnavailable(DependencyUnavailable):
    """Nothing was sent: SES throttled the request or could not be reached.
    The worker's event is not charged a delivery for it (storefront.events.consumer)."""

    def __init__(self, reason: str, *, throttled: bool = False) -> None:
        super().__init__(reason)
        # Over the sending rate: a moment's wait may be enough.
        self.throttled = throttled


class MailerRefused(RuntimeError):
    """Nothing was sent: SES refused this email (retrying it will not help)."""


class MailerOutcomeUnknown(DependencyUnavailable):
    """The request may have reached SES: the email may have been sent. No
    answer is what an SES in trouble gives too, so the event is not charged
    a delivery for it either."""


class Mailer(Protocol):
    async def send(self, email: Email, *, sender: str, reference: str) -> str:
        """Send ``email`` from ``sender``; returns the provider's message id.

        ``reference`` (the event's id) travels with the email as a tag, so a
        duplicate found in the provider's records leads back to its event.
        """
        ...


# SES answers meaning "not now" (sending rate or daily quota, a paused
# account) rather than "not this email".
_UNAVAILABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "SendingPausedException",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
# Of those, worth a second try within the same send: a rate, not a quota.
_RATE_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})
_ATTEMPTS = 3
_BACKOFF_SECONDS = 0.2

_clients: dict[tuple[str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


def ses_client(endpoint_url: str | None, region: str | None) -> Any:
    """The container's SES v2 client for one endpoint, made once (under a
    lock: making a client is not thread-safe, and sends run in threads)."""
    with _clients_lock:
        client = _clients.get((endpoint_url, region))
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                # One attempt: a retry after a lost answer would send twice.
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=3,
                read_timeout=10,
            )
            # region None: boto3 reads AWS_REGION / AWS_DEFAULT_REGION itself.
            client = boto3.session.Session().client(
                "sesv2", endpoint_url=endpoint_url, region_name=region, config=config
            )
            _clients[(endpoint_url, region)] = client
        return client


class SesMailer:
    def __init__(self, *, endpoint_url: str | None = None, region: str | None = None) -> None:
        self._endpoint_url = endpoint_url
        self._region = region

    @classmethod
    def from_settings(cls, settings: Settings) -> SesMailer:
        return cls(endpoint_url=settings.ses_endpoint_url, region=settings.aws_region)

    async def send(self, email: Email, *, sender: str, reference: str) -> str:
        request = {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [email.to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": email.text, "Charset": "UTF-8"},
                        "Html": {"Data": email.html, "Charset": "UTF-8"},
                    },
                }
            },
            "EmailTags": [
                {"Name": "kind", "Value": str(email.kind)},
                {"Name": "event", "Value": reference},
            ],
        }
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                answer = await asyncio.to_thread(self._send, request)
            except MailerUnavailable as error:
                if not error.throttled or attempt == _ATTEMPTS:
                    raise
                await asyncio.sleep(_BACKOFF_SECONDS * 4 ** (attempt - 1))
                continue
            return str(answer["MessageId"])
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            client = ses_client(self._endpoint_url, self._region)
            answer: dict[str, Any] = client.send_email(**request)
        except Exception as error:
            raise _failure(error) from error
        return answer


def _failure(error: Exception) -> Exception:
    """What a failed send means, as one of this module's three errors (or
    the error itself: a bug, not SES's answer)."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    name = type(error).__name__
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = f"SES answered {code}: {error.response.get('Error', {}).get('Message', '')}"
        if code in _UNAVAILABLE_CODES or status >= 500:
            return MailerUnavailable(message, throttled=code in _RATE_CODES)
        return MailerRefused(message)
    # No connection was made: nothing can have been sent.
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return MailerUnavailable(f"SES could not be reached ({name}: {error})")
    if isinstance(error, NoCredentialsError | NoRegionError):
        return MailerRefused(f"SES cannot be called ({name}): check the function's role and region")
    if type(error).__module__.startswith(("botocore", "urllib3")):
        return MailerOutcomeUnknown(f"no answer from SES ({name}: {error})")
    return error
