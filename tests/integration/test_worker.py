"""The worker job: one scheduled invocation consumes its group and reports metrics."""

from __future__ import annotations

import json

import pytest

from storefront.events.groups import ensure_groups
from storefront.events.worker import worker_job
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.pinger import Pinger, ping, pongs
from tests.integration.streams import budget, fast_settings, publish


class Context:
    """The part of the Lambda context a job reads: its time budget."""

    def __init__(self, seconds: float) -> None:
        self.get_remaining_time_in_millis = budget(seconds)


def emf_documents(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if '"_aws"' in line]


async def test_a_worker_invocation_consumes_and_publishes_group_metrics(
    resources: Resources, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = fast_settings(settings)
    await ensure_groups(resources.redis, fast, ["inventory"])  # another worker's group
    for seq in range(3):
        await publish(resources.redis, fast, ping("agg-worker", seq))
    worker_resources = Resources.from_settings(fast)
    pinger = Pinger(group="orders")  # a group the deployment runs
    try:
        job = worker_job(pinger.registry)
        summary = await job(worker_resources, Context(0.5))  # type: ignore[arg-type]
    finally:
        await worker_resources.close()

    assert summary["group"] == "orders"
    assert (summary["handled"], summary["lag"], summary["pending"]) == (3, 0, 0)
    assert await pongs(resources) == [("agg-worker", seq) for seq in range(3)]
    (document,) = [
        doc for doc in emf_documents(capsys.readouterr().out) if doc.get("ConsumerGroup")
    ]
    assert document["EventsHandled"] == [3.0]
    assert (document["ConsumerLag"], document["ConsumerPending"]) == ([0.0], [0.0])
    assert document["HandlerFailures"] == [0.0]
