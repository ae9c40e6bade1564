"""The SES adapter on a fake client: what it asks SES, and what a failure means.

Sending is not idempotent, so only what certainly sent nothing is retried.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from storefront.notifications import mailer as mailer_module
from storefront.notifications.emails import Email, EmailKind
from storefront.notifications.mailer import (
    MailerOutcomeUnknown,
    MailerRefused,
    MailerUnavailable,
    SesMailer,
)
from storefront.settings import Settings

EMAIL = Email(
    to="ada@customer.example",
    subject="Order 0A1B2C3D is confirmed",
    text="plain",
    html="<p>html</p>",
    kind=EmailKind.CONFIRMATION,
)


def answered(code: str, status: int = 400) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": f"{code}!"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SendEmail")


class FakeSes:
    """An SES v2 client that fails with the given errors, then accepts."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.requests: list[dict[str, Any]] = []

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.failures:
            raise self.failures.pop(0)
        return {"MessageId": f"ses-{len(self.requests)}"}


@pytest.fixture
def ses(monkeypatch: pytest.MonkeyPatch) -> FakeSes:
    fake = FakeSes()
    monkeypatch.setattr(mailer_module, "ses_client", lambda endpoint, region: fake)
    monkeypatch.setattr(mailer_module, "_BACKOFF_SECONDS", 0.0)
    return fake


async def send() -> str:
    return await SesMailer().send(EMAIL, sender="orders@storefront.example", reference="evt-1")


async def test_one_request_with_both_bodies_and_the_event_as_a_tag(ses: FakeSes) -> None:
    assert await send() == "ses-1"
    (request,) = ses.requests
    assert request == {
        "FromEmailAddress": "orders@storefront.example",
        "Destination": {"ToAddresses": ["ada@customer.example"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "Order 0A1B2C3D is confirmed", "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": "plain", "Charset": "UTF-8"},
                    "Html": {"Data": "<p>html</p>", "Charset": "UTF-8"},
                },
            }
        },
        "EmailTags": [
            {"Name": "kind", "Value": "confirmation"},
            {"Name": "event", "Value": "evt-1"},
        ],
    }


async def test_throttling_is_tried_again_at_once(ses: FakeSes) -> None:
    ses.failures = [answered("TooManyRequestsException", 429), answered("Throttling")]
    assert await send() == "ses-3"


async def test_throttling_that_lasts_means_unavailable(ses: FakeSes) -> None:
    ses.failures = [answered("TooManyRequestsException", 429)] * 3
    with pytest.raises(MailerUnavailable) as raised:
        await send()
    assert raised.value.throttled
    assert len(ses.requests) == 3


@pytest.mark.parametrize(
    "failure",
    [
        answered("LimitExceededException"),  # the daily quota: no use trying at once
        answered("SendingPausedException"),
        answered("InternalFailure", 500),
        EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"),
    ],
)
async def test_what_sent_nothing_and_will_not_pass_at_once_is_unavailable(
    ses: FakeSes, failure: Exception
) -> None:
    ses.failures = [failure]
    with pytest.raises(MailerUnavailable) as raised:
        await send()
    assert not raised.value.throttled
    assert len(ses.requests) == 1


@pytest.mark.parametrize(
    "code", ["MessageRejected", "BadRequestException", "MailFromDomainNotVerifiedException"]
)
async def test_a_refused_email_is_refused_once(ses: FakeSes, code: str) -> None:
    ses.failures = [answered(code)]
    with pytest.raises(MailerRefused, match=code):
        await send()
    assert len(ses.requests) == 1


async def test_no_answer_is_never_retried_it_may_have_been_sent(ses: FakeSes) -> None:
    ses.failures = [ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com")]
    with pytest.raises(MailerOutcomeUnknown):
        await send()
    assert len(ses.requests) == 1


async def test_a_bug_is_not_disguised_as_ses_failing(ses: FakeSes) -> None:
    ses.failures = [TypeError("unexpected keyword")]
    with pytest.raises(TypeError):
        await send()


def test_the_client_comes_from_the_settings_and_is_made_once_per_endpoint() -> None:
    settings = Settings(ses_endpoint_url="http://127.0.0.1:1", aws_region="eu-west-1")
    mailer = SesMailer.from_settings(settings)
    assert (mailer._endpoint_url, mailer._region) == ("http://127.0.0.1:1", "eu-west-1")

    client = mailer_module.ses_client("http://127.0.0.1:1", "eu-west-1")
    assert mailer_module.ses_client("http://127.0.0.1:1", "eu-west-1") is client
    assert client.meta.service_model.service_name == "sesv2"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
    # botocore retries nothing: a retry after a lost answer would send twice.
    assert client.meta.config.retries["total_max_attempts"] == 1
