"""Authentication and rate-limit traffic of a simulated service, and the attacks on it.

A real login service already keeps, per account, the failed logins of a recent window
(that is how it locks accounts); it can expose that window's shape as a few gauges
(distinct failing accounts and sources, the worst account and source) without a label
per account or address, so the metrics stay bounded however many accounts are tried.
The alerts in rules/security.yml read those gauges and the counters below.

Attacks (set through the services' control endpoint):
    brute-force          one source hammers three accounts: they lock, the source keeps going
    credential-stuffing  a botnet tries a leaked list: each account once or twice
    rate-limit-storm     a flood on the service's first route, rejected by the limiter
"""

from __future__ import annotations

import random
from collections import Counter as Tally
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge

ATTACKS = ("none", "brute-force", "credential-stuffing", "rate-limit-storm")
LOGIN_RESULTS = ("success", "bad_password", "unknown_account", "account_locked", "mfa_failed")
TOKEN_RESULTS = ("valid", "expired", "invalid_signature", "malformed", "revoked")
# Ordinary traffic: a few typos, the odd forgotten account or MFA code.
NORMAL_LOGINS = {"success": 0.96, "bad_password": 0.03, "unknown_account": 0.007,
                 "mfa_failed": 0.003}
NORMAL_TOKENS = {"valid": 0.998, "expired": 0.0015, "malformed": 0.0003,
                 "invalid_signature": 0.0001, "revoked": 0.0001}
NORMAL_RATE_LIMITED = 0.0005
LOCKOUT_AFTER = 5  # failed logins of one account within the window lock it
ATTACK_RATES = {"brute-force": 8.0, "credential-stuffing": 12.0, "rate-limit-storm": 40.0}
BRUTE_FORCE_SOURCE = "198.51.100.23"
BRUTE_FORCE_ACCOUNTS = ("user-17", "user-42", "admin")


def _draw(rng: random.Random, shares: dict[str, float]) -> str:
    draw = rng.random()
    for name, share in shares.items():
        if draw < share:
            return name
        draw -= share
    return next(iter(shares))


class FailureWindow:
    """Failed logins of the last `seconds`, by account and by source."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.events: deque[tuple[float, str, str]] = deque()
        self.accounts: Tally[str] = Tally()
        self.sources: Tally[str] = Tally()

    def add(self, now: float, account: str, source: str) -> None:
        self.events.append((now, account, source))
        self.accounts[account] += 1
        self.sources[source] += 1

    def prune(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.seconds:
            _, account, source = self.events.popleft()
            for tally, key in ((self.accounts, account), (self.sources, source)):
                tally[key] -= 1
                if not tally[key]:
                    del tally[key]

    def failures_of(self, account: str) -> int:
        return self.accounts.get(account, 0)


class AuthTraffic:
    """Logins, token checks and rate limiting of one service, into its registry."""

    def __init__(self, service: str, routes: list[str], registry: CollectorRegistry,
                 rng: random.Random, logins_per_second: float, window_seconds: float) -> None:
        self.service, self.routes, self.rng = service, routes, rng
        self.logins_per_second = logins_per_second
        self.window = FailureWindow(window_seconds)
        self.locked_until: dict[str, float] = {}
        self.attack = "none"
        self.logins = Counter("auth_login_attempts", "Login attempts by result.",
                              ["service", "result"], registry=registry)
        self.lockouts = Counter("auth_account_lockouts", "Accounts locked after failed logins.",
                                ["service"], registry=registry)
        self.locked = Gauge("auth_accounts_locked", "Accounts locked right now.",
                            ["service"], registry=registry)
        self.tokens = Counter("auth_token_validations", "Bearer token validations by result.",
                              ["service", "result"], registry=registry)
        self.rate_limited = Counter("http_rate_limited_requests",
                                    "Requests rejected by the rate limiter (HTTP 429).",
                                    ["service", "route"], registry=registry)
        window = f"failed logins of the last {window_seconds:g} s"
        self.failing_accounts = Gauge("auth_failing_accounts",
                                      f"Distinct accounts with {window}.", ["service"],
                                      registry=registry)
        self.failing_sources = Gauge("auth_failing_sources", f"Distinct sources of {window}.",
                                     ["service"], registry=registry)
        self.top_account = Gauge("auth_top_account_failures",
                                 f"Most {window} of any one account.", ["service"],
                                 registry=registry)
        self.top_source = Gauge("auth_top_source_failures",
                                f"Most {window} from any one source.", ["service"],
                                registry=registry)
        self.window_gauge = Gauge("auth_failure_window_seconds",
                                  "Length of the window the failure gauges cover.",
                                  ["service"], registry=registry)
        self.window_gauge.labels(service).set(window_seconds)
        for result in LOGIN_RESULTS:  # every series from the start: rates never absent
            self.logins.labels(service, result)
        for result in TOKEN_RESULTS:
            self.tokens.labels(service, result)
        for route in routes:
            self.rate_limited.labels(service, route)
        self.lockouts.labels(service)

    def _count(self, rate: float, seconds: float) -> int:
        expected = rate * seconds
        return int(expected) + (self.rng.random() < expected - int(expected))

    def login(self, now: float, account: str, source: str, result: str) -> None:
        """One attempt; a locked account fails whatever the password."""
        if self.locked_until.get(account, 0) > now:
            result = "account_locked"
        self.logins.labels(self.service, result).inc()
        if result == "success":
            return
        self.window.add(now, account, source)
        if result != "account_locked" and self.window.failures_of(account) >= LOCKOUT_AFTER:
            self.locked_until[account] = now + self.window.seconds
            self.lockouts.labels(self.service).inc()

    def served(self, route: str, count: int) -> None:
        """Token checks of served requests, and the few the limiter turns away."""
        for _ in range(count):
            self.tokens.labels(self.service, _draw(self.rng, NORMAL_TOKENS)).inc()
        rejected = sum(self.rng.random() < NORMAL_RATE_LIMITED for _ in range(count))
        if rejected:
            self.rate_limited.labels(self.service, route).inc(rejected)

    def simulate(self, now: float, seconds: float) -> None:
        rng = self.rng
        for _ in range(self._count(self.logins_per_second, seconds)):
            self.login(now, f"user-{rng.randrange(5000)}", f"203.0.113.{rng.randrange(1, 255)}",
                       _draw(rng, NORMAL_LOGINS))
        attempts = self._count(ATTACK_RATES.get(self.attack, 0.0), seconds)
        if self.attack == "brute-force":
            for _ in range(attempts):
                self.login(now, rng.choice(BRUTE_FORCE_ACCOUNTS), BRUTE_FORCE_SOURCE,
                           "bad_password")
        elif self.attack == "credential-stuffing":
            for _ in range(attempts):
                result = _draw(rng, {"unknown_account": 0.7, "bad_password": 0.28,
                                     "success": 0.02})
                self.login(now, f"leaked-{rng.randrange(1_000_000)}",
                           f"192.0.2.{rng.randrange(1, 255)}", result)
        elif self.attack == "rate-limit-storm":
            self.rate_limited.labels(self.service, self.routes[0]).inc(attempts)
        self._export(now)

    def _export(self, now: float) -> None:
        self.window.prune(now)
        self.locked_until = {a: t for a, t in self.locked_until.items() if t > now}
        accounts, sources = self.window.accounts, self.window.sources
        for gauge, value in ((self.failing_accounts, len(accounts)),
                             (self.failing_sources, len(sources)),
                             (self.top_account, max(accounts.values(), default=0)),
                             (self.top_source, max(sources.values(), default=0)),
                             (self.locked, len(self.locked_until))):
            gauge.labels(self.service).set(value)
