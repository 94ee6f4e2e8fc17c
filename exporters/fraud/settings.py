"""Settings of the fraud check service; pattern weights and thresholds live here.

Defaults are the platform's existing rules, so an empty config file behaves like the
rules the checkout used before this service existed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from ticketmon.core.auth import ConfiguredToken, JwtSettings
from ticketmon.core.config import Settings
from ticketmon.core.metrics_guard import GuardSettings


class Pattern(Settings):
    enabled: bool = True
    weight: int = Field(ge=0, le=100)


class RapidRequests(Pattern):
    weight: int = Field(30, ge=0, le=100)
    per_minute_above: float = Field(60, gt=0)


class ManyPaymentMethods(Pattern):
    weight: int = Field(25, ge=0, le=100)
    above: int = Field(3, ge=0)


class BulkPurchase(Pattern):
    weight: int = Field(35, ge=0, le=100)
    tickets_above: int = Field(10, ge=0)


class ImpossibleTravel(Pattern):
    weight: int = Field(20, ge=0, le=100)
    km_above: float = Field(1000, gt=0)
    kmh_above: float = Field(900, gt=0, description="faster than a plane")


class MachineTiming(Pattern):
    weight: int = Field(40, ge=0, le=100)
    min_intervals: int = Field(5, ge=2, le=15)
    max_variation: float = Field(0.05, gt=0, le=1, description="std/mean of the intervals")


class BotUserAgent(Pattern):
    weight: int = Field(50, ge=0, le=100)
    markers: tuple[str, ...] = (  # a tuple: hashable, so its regex is compiled once
        "bot", "crawler", "spider", "scrapy", "headless", "phantomjs", "selenium",
        "puppeteer", "playwright", "curl/", "wget/", "python-requests", "python-urllib",
        "aiohttp", "httpx", "go-http-client", "java/", "okhttp", "libwww-perl",
    )


class NoMouseMovement(Pattern):
    weight: int = Field(30, ge=0, le=100)


class InhumanTyping(Pattern):
    weight: int = Field(25, ge=0, le=100)
    median_ms_below: float = Field(10, gt=0)
    min_keystrokes: int = Field(3, ge=1)


class ShortSession(Pattern):
    weight: int = Field(20, ge=0, le=100)
    seconds_below: float = Field(5, gt=0)


class Patterns(Settings):
    rapid_requests: RapidRequests = Field(default_factory=RapidRequests)
    many_payment_methods: ManyPaymentMethods = Field(default_factory=ManyPaymentMethods)
    bulk_purchase: BulkPurchase = Field(default_factory=BulkPurchase)
    impossible_travel: ImpossibleTravel = Field(default_factory=ImpossibleTravel)
    machine_timing: MachineTiming = Field(default_factory=MachineTiming)
    bot_user_agent: BotUserAgent = Field(default_factory=BotUserAgent)
    no_mouse_movement: NoMouseMovement = Field(default_factory=NoMouseMovement)
    inhuman_typing: InhumanTyping = Field(default_factory=InhumanTyping)
    short_session: ShortSession = Field(default_factory=ShortSession)


class Levels(Settings):
    """Risk score (0-100) to level and decision; each bound is the lowest score that reaches it."""

    medium_from: int = Field(30, ge=0, le=100)
    high_from: int = Field(60, ge=0, le=100)
    critical_from: int = Field(80, ge=0, le=100)
    review_from: int = Field(50, ge=0, le=100)
    block_from: int = Field(80, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Levels:
        if not self.medium_from <= self.high_from <= self.critical_from:
            raise ValueError("need medium_from <= high_from <= critical_from")
        if not self.review_from <= self.block_from:
            raise ValueError("need review_from <= block_from")
        return self


class History(Settings):
    """Per-user memory: bounded in count and age, so a flood of new users cannot exhaust it."""

    max_users: int = Field(100_000, ge=1, le=10_000_000)
    ttl_seconds: float = Field(3600, gt=0)


class Outlier(Settings):
    """PyOD's empirical-CDF detectors, fitted in the refitter process and scored in the
    workers without PyOD (see exporters.fraud.ecdf).

    The score takes part in the decision like a pattern named "outlier": a check whose
    outlier score (the share of recent checks less unusual) is at least `above` adds
    `weight`. That catches bots that stay under every single pattern's threshold yet
    look like no customer. The defaults send such a check to review on its own
    (weight = levels.review_from), never to block, and `above` is a review budget:
    about 1 % of ordinary customers score above 0.95 when a few percent of recent
    traffic is odd (bench/fraud_decisions.py prints both sides). `weight: 0` leaves
    the decision to the patterns alone; the outlier score is still reported.
    """

    detector: Literal["ECOD", "COPOD"] = "ECOD"
    weight: int = Field(50, ge=0, le=100)
    above: float = Field(0.95, gt=0, lt=1)
    window: int = Field(5000, ge=50, le=200_000, description="recent checks the model sees")
    min_samples: int = Field(200, ge=20)
    refit_seconds: float = Field(30, gt=0)


class Recorder(Settings):
    queue_size: int = Field(20_000, ge=1)
    batch_size: int = Field(500, ge=1, le=10_000)
    flush_seconds: float = Field(0.5, gt=0)


class Auth(Settings):
    """Same tokens as the receiver: bootstrap tokens from config and/or platform JWTs.

    The checkout signs its check JWTs with the HS256 secret, so whoever holds that secret
    can sign any claim: tokens signed with it may claim at most `check_role` (operator)
    unless `jwt.hs256_max_role` says otherwise. Admin JWTs (every tenant) come from the
    platform's auth service, verified with its RS256 public key only."""

    disabled: bool = Field(False, description="development only: every caller is admin")
    tokens: list[ConfiguredToken] = Field(default_factory=list)
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    check_role: str = Field("operator", pattern="^(viewer|operator|admin)$")
    events_role: str = Field("viewer", pattern="^(viewer|operator|admin)$")

    @model_validator(mode="after")
    def _shared_secret_cannot_mint_admin(self) -> Auth:
        if "hs256_max_role" not in self.jwt.model_fields_set:
            self.jwt.hs256_max_role = self.check_role  # type: ignore[assignment]
        return self


class FraudSettings(Settings):
    host: str = "127.0.0.1"
    port: int = Field(10194, ge=0, le=65535)
    workers: int = Field(2, ge=1, le=64)
    database_url: str = "sqlite:///ticketmon-fraud.db"
    patterns: Patterns = Field(default_factory=Patterns)
    levels: Levels = Field(default_factory=Levels)
    history: History = Field(default_factory=History)
    outlier: Outlier = Field(default_factory=Outlier)
    recorder: Recorder = Field(default_factory=Recorder)
    auth: Auth = Field(default_factory=Auth)
    metrics: GuardSettings = Field(default_factory=GuardSettings)
    events_min_level: str = Field("high", pattern="^(low|medium|high|critical)$")
    # personal data: checks (user ids, addresses) are deleted after this many days, by
    # the service itself every prune_interval_seconds (0: only `--prune`)
    retention_days: float = Field(30, gt=0, le=3650)
    prune_interval_seconds: float = Field(3600, ge=0)
    ip_storage: Literal["truncate", "hmac", "full", "drop"] = Field(
        "truncate", description="what is kept of the caller's IP: see exporters.fraud.privacy")
    ip_hmac_key: SecretStr | None = None

    @model_validator(mode="after")
    def _hmac_needs_a_key(self) -> FraudSettings:
        key = self.ip_hmac_key.get_secret_value() if self.ip_hmac_key else ""
        if self.ip_storage == "hmac" and len(key) < 32:
            raise ValueError("ip_storage hmac needs ip_hmac_key of at least 32 characters")
        return self

    @model_validator(mode="after")
    def _someone_may_call(self) -> FraudSettings:
        if not self.auth.disabled and not self.auth.tokens and not (
                self.auth.jwt.hs256_secret or self.auth.jwt.rs256_public_key):
            raise ValueError("auth: configure tokens or jwt, or set auth.disabled (dev only)")
        return self
