"""Configuration from the environment, validated once per container."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # An empty variable is an unset one: the template declares sam local's
    # variables (DATABASE_URL, ...) with empty values when deployed.
    model_config = SettingsConfigDict(
        env_file=None,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
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
    # Where reads that tolerate replica lag go (storefront.resources,
    # read_engine): deployed, a host only (the RDS Proxy read-only endpoint,
    # with the writer's port, name and credentials); locally and in tests, a
    # URL beside DATABASE_URL. Neither set: every read goes to the writer.
    database_read_host: str | None = None
    database_read_url: str | None = None
    # Seconds to wait for a new PostgreSQL connection before answering 503.
    database_connect_timeout: float = 3.0
    database_statement_timeout_ms: int = 10_000
    # Keep prepared statements per connection (storefront.adapters.database):
    # for the event backbone's few long-lived connections, not the APIs'.
    database_statement_cache: bool = False

    redis_url: str | None = None
    redis_host: str | None = None
    redis_port: int = 6379
    redis_tls: bool = False
    # Talk the Redis Cluster protocol (ElastiCache Serverless speaks nothing
    # else): keys that one command or script uses together share a hash tag.
    redis_cluster: bool = False
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

    # Authentication: JWT bearer tokens (storefront.auth.tokens). The accepted
    # algorithms come from here, never from a token's header: comma-separated,
    # "RS256,ES256" for an OIDC issuer's JWKS (Cognito), or "HS256" with a
    # shared secret; never both kinds, so a public key can never serve as an
    # HMAC secret. Issuer and audience are required to verify any token.
    auth_algorithms: str = Field(
        "RS256", pattern=r"^\s*[RHE]S(256|384|512)\s*(,\s*[RHE]S(256|384|512)\s*)*$"
    )
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_jwks_url: str | None = None
    # HS256: the secret itself (local stack, tests), or a Secrets Manager
    # secret {"secret": "..."} read once per container (deployed).
    auth_hs256_secret: str | None = Field(None, repr=False)
    auth_secret_arn: str | None = None
    # Clock skew tolerated on exp and nbf.
    auth_leeway_seconds: int = 30
    # Admin: the claim lists (or, as a string, names) this value.
    auth_admin_claim: str = "cognito:groups"
    auth_admin_value: str = "admin"
    # The longest a token may live (exp - iat): longer ones are refused. It
    # also bounds how long "revoke every token of a subject" is kept in Redis.
    # Cognito's access and ID tokens last five minutes to a day.
    auth_max_token_lifetime_seconds: int = Field(86_400, ge=60)
    # Refuse tokens without iat. Off, a token's lifetime is bounded from now
    # instead (exp - now, within the maximum and the leeway).
    auth_require_iat: bool = True
    # When Redis cannot say whether a token was revoked (storefront.auth.
    # revocation): "admin" refuses admin tokens with 503 and lets customers'
    # pass, "always" refuses every token, "never" lets every one pass.
    auth_revocation_fail_closed: Literal["never", "admin", "always"] = "admin"

    @property
    def auth_algorithm_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.auth_algorithms.split(","))

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
    # Partitions a worker handles side by side, each on its own connection:
    # at most the engine's pool (1 + 2 overflow), or a batch would wait for one.
    worker_partition_concurrency: int = Field(2, ge=1, le=3)
    worker_max_deliveries: int = 5
    # Pending entries idle this long belong to a dead invocation: above the
    # worker function's timeout, so a live one never loses its entries.
    worker_claim_min_idle_ms: int = 90_000
    # Settled outbox rows are kept this long (for inspection) before cleanup
    # deletes them; an unsettled row is never deleted.
    outbox_retention_days: int = 7

    # Rate limits and hardening
    # Requests per caller and route class in a sliding window, "N/second",
    # "N/minute", "N/hour" or "N/day" (storefront.web.rate_limits). A caller
    # with a valid token is its subject; without one, its IP, held to the
    # anonymous limit (or the class's own, if lower). Generous on purpose: they
    # stop floods and scripts, not shoppers behind one NAT; API Gateway's
    # throttling caps the whole API.
    rate_limit_read: str = Field("600/minute", pattern=r"^[1-9]\d*/(second|minute|hour|day)$")
    rate_limit_write: str = Field("120/minute", pattern=r"^[1-9]\d*/(second|minute|hour|day)$")
    rate_limit_orders: str = Field("60/minute", pattern=r"^[1-9]\d*/(second|minute|hour|day)$")
    rate_limit_anonymous: str = Field("300/minute", pattern=r"^[1-9]\d*/(second|minute|hour|day)$")
    # Failed authentications (401) per client IP: a flood of forged tokens
    # gets 429, not 401 for ever.
    rate_limit_failed_auth: str = Field("30/minute", pattern=r"^[1-9]\d*/(second|minute|hour|day)$")
    # Larger request bodies answer 413 before a route reads them; the largest
    # valid one (an order of 100 items) is well under 10 KiB.
    max_body_bytes: int = Field(64 * 1024, ge=1)
    # Browser origins allowed to call the API (CORS), comma-separated; empty
    # allows none. The template gives API Gateway the same list.
    cors_allow_origins: str = ""

    # Reports and product views
    # The S3 bucket reports go to (the template passes ReportsBucket's name).
    # S3_ENDPOINT_URL points boto3 at another S3: moto's server under make run.
    reports_bucket: str | None = None
    s3_endpoint_url: str | None = None
    aws_region: str | None = None
    # The longest range one report covers, both ends included.
    report_max_days: int = Field(366, ge=1)
    # A build running longer ends FAILED; keep it well inside the worker's
    # time budget, so the worker is never killed mid-build.
    report_build_timeout_seconds: float = Field(60.0, gt=0)
    # Rows per fetch from the server-side cursor: what a build holds in memory.
    report_fetch_rows: int = Field(1_000, ge=1)
    # Larger objects go up in parts of this size; S3 refuses parts below 5 MiB.
    report_part_bytes: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024)
    report_url_expiry_seconds: int = Field(300, ge=1, le=604_800)
    # Reports stay downloadable this long; the bucket's lifecycle rule (the
    # template's ReportRetentionDays) deletes the objects afterwards.
    report_retention_days: int = Field(30, ge=1)
    # Daily popularity sets live this long in Redis: the 7d window and a day.
    views_retention_days: int = Field(8, ge=8)
    # A caller's views of one product count once in this window (a reload, a
    # beacon sent twice, a retried request add nothing).
    views_dedupe_seconds: int = Field(1_800, ge=1)
    # Flush batch ids are remembered this long in PostgreSQL, so a batch key
    # whose flush committed but was not deleted is never applied twice.
    views_batch_retention_days: int = Field(7, ge=1)
    popular_limit_max: int = Field(50, ge=1)

    # Carts (storefront.carts): a customer's cart lives this long after its
    # last use, read or write. Its limits cannot exceed what one order takes
    # (storefront.orders.domain: MAX_ITEMS lines, MAX_QUANTITY of each; a
    # test holds them together), so every cart can be checked out.
    cart_ttl_seconds: int = Field(7 * 86_400, ge=60)
    cart_max_lines: int = Field(50, ge=1, le=50)
    cart_max_quantity: int = Field(100, ge=1, le=100)

    # Payments (storefront.payments): the Stripe secret key itself (local
    # stack, tests), or a Secrets Manager secret {"secret": "sk_..."} read once
    # per container (deployed). Never logged: repr=False keeps it out of
    # the settings' repr. STRIPE_API_BASE points the SDK at another Stripe
    # (localstripe under make run and in tests).
    stripe_secret_key: str | None = Field(None, repr=False)
    stripe_secret_arn: str | None = None
    stripe_api_base: str | None = None
    # The SDK's own retries (with backoff, and only for what it deems safe to
    # retry) before a call counts as a provider failure.
    stripe_max_network_retries: int = Field(2, ge=0)
    stripe_timeout_seconds: float = Field(10.0, gt=0)
    # A provider failure opens the breaker this long: calls fail at once with
    # PaymentProviderUnavailable instead of each waiting on timeouts.
    stripe_breaker_cooldown_seconds: float = Field(30.0, gt=0)
    # Webhooks: the endpoint's signing secret (whsec_...), given or kept in
    # Secrets Manager like the key; events signed longer ago than the
    # tolerance are refused (replays).
    stripe_webhook_secret: str | None = Field(None, repr=False)
    stripe_webhook_secret_arn: str | None = None
    stripe_webhook_tolerance_seconds: int = Field(300, ge=1)

    # Checkout: how long an order's stock is held waiting for its payment, and
    # how many units of one product a customer may hold at once (their orders
    # awaiting payment and this checkout together).
    checkout_hold_seconds: int = Field(15 * 60, ge=1)
    checkout_max_units_per_product: int = Field(10, ge=1)
    # The expiry sweep expires at most this many orders per transaction, and
    # sweeps this often while its invocation lasts.
    checkout_sweep_batch: int = Field(200, ge=1)
    checkout_sweep_interval_seconds: float = Field(2.0, gt=0)

    # Order emails (storefront.notifications) through SES: the sender, and an
    # endpoint for another SES (moto's server under make run and in tests).
    email_sender: str = "orders@storefront.example"
    ses_endpoint_url: str | None = None

    page_size_default: int = 20
    page_size_max: int = 100


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
