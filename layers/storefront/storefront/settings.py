"""Configuration from the environment, validated once per container."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, populate_by_name=True
    )

    service_name: str = Field("storefront", alias="POWERTOOLS_SERVICE_NAME")
    environment: str = "local"

    # Locally and in tests: one URL. Deployed: the endpoint's parts, with the
    # credentials read from a Secrets Manager secret at run time (never from
    # the template or the environment) -- see storefront.adapters.endpoints.
    database_url: str | None = None
    database_host: str | None = None
    database_port: int = 5432
    database_name: str = "storefront"
    database_secret_arn: str | None = None
    database_tls: bool = False
    # Seconds to wait for a new PostgreSQL connection before answering 503.
    database_connect_timeout: float = 3.0
    database_statement_timeout_ms: int = 10_000

    redis_url: str | None = None
    redis_host: str | None = None
    redis_port: int = 6379
    redis_tls: bool = False
    # Every key this deployment writes starts with this, so test runs and
    # several stacks can share one Redis without colliding.
    redis_key_prefix: str = "sf:"
    redis_socket_timeout: float = 0.5

    cache_ttl_seconds: int = 300
    cache_ttl_jitter: float = 0.1
    cache_missing_ttl_seconds: int = 30
    cache_list_ttl_seconds: int = 60
    # How long a request that lost the single-flight race waits for the
    # winner's value before reading PostgreSQL itself.
    cache_lease_wait_seconds: float = 1.0
    cache_lease_ttl_ms: int = 3_000
    # A Redis failure opens the breaker for this long: requests bypass the
    # cache instead of each paying a timeout.
    cache_breaker_cooldown_seconds: float = 5.0
    http_cache_max_age: int = 0

    # Events. Partitions bound the parallelism of relays and consumers while
    # keeping each aggregate's events in order; changing it re-maps aggregates,
    # so only change it with the outbox drained.
    event_partitions: int = 8
    relay_batch_size: int = 500
    # "loop": an invocation relays until its time budget ends, woken by
    # LISTEN/NOTIFY; "single": one pass per schedule tick (cheapest, slower).
    relay_mode: Literal["loop", "single"] = "loop"
    relay_poll_seconds: float = 1.0
    # Stop this long before the Lambda deadline, to finish the batch in hand.
    time_budget_margin_ms: int = 2_000
    worker_block_ms: int = 1_000
    worker_batch_size: int = 100
    worker_max_deliveries: int = 5
    # Pending entries idle this long belong to a dead invocation: above the
    # worker function's timeout, so a live one never loses its entries.
    worker_claim_min_idle_ms: int = 90_000
    outbox_retention_days: int = 7
    inbox_retention_days: int = 7

    page_size_default: int = 20
    page_size_max: int = 100


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
