"""`ticketmon simulator checkout`: the platform's checkout calling the fraud check API.

Mostly ordinary buyers, with a share of scalper bots (bulk quantities, bot user agents,
no mouse, machine-regular timing) and the odd impossible trip, so the fraud metrics,
dashboards and the events endpoint have something real to show in the demo.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import requests
from pydantic import Field

from ticketmon.core import config, logs
from ticketmon.core.config import Settings

log = logging.getLogger("ticketmon.simulator.checkout")

HUMAN_AGENTS = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36"]
BOT_AGENTS = ["python-requests/2.31.0", "Mozilla/5.0 HeadlessChrome/120.0", "curl/8.5.0"]
CITIES = [(48.85, 2.35), (51.51, -0.13), (40.71, -74.0), (35.68, 139.69), (52.52, 13.40)]


class CheckoutSettings(Settings):
    url: str = Field("http://127.0.0.1:10194/api/v1/fraud/check", pattern=r"^https?://")
    token: str = ""
    # the platform tenant the purchases belong to, sent with every check; the token must
    # be scoped to it (a checkout serving several tenants holds one token per tenant)
    tenant: str = Field("demo", min_length=1, max_length=100, pattern=r"^[^*\s]+$")
    checks_per_second: float = Field(5, gt=0, le=1000)
    bot_share: float = Field(0.1, ge=0, le=1)
    users: int = Field(500, ge=1)
    events: int = Field(8, ge=1)
    scalper_share: float = Field(0, ge=0, le=1)  # resellers: real browsers, bulk tickets
    duration_seconds: float = Field(0, ge=0, description="0: until stopped")
    seed: int | None = None
    # JSON overriding checks_per_second, bot_share and scalper_share while running, re-read
    # every second (`ticketmon stack scenario bot-attack` writes it); a bad one is ignored
    control_file: Path | None = None


LIVE_KNOBS = ("checks_per_second", "bot_share", "scalper_share")


def read_knobs(s: CheckoutSettings, base: CheckoutSettings) -> CheckoutSettings:
    """`base` with the control file's overrides; the current settings if the file is bad."""
    if s.control_file is None or not s.control_file.exists():
        return base
    try:
        doc = json.loads(s.control_file.read_text())
        if not isinstance(doc, dict) or set(doc) - set(LIVE_KNOBS):
            raise ValueError(f"an object with only {list(LIVE_KNOBS)}")
        return CheckoutSettings.model_validate({**base.model_dump(), **doc})
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        log.warning("control file ignored", extra={"path": str(s.control_file),
                                                    "error": str(exc)[:300]})
        return s


def purchase(rng: random.Random, s: CheckoutSettings) -> dict:
    """One purchase attempt; bots reuse a small pool of ids and act like machines."""
    if rng.random() < s.bot_share:
        user = f"bot-{rng.randrange(5)}"
        return {"user_id": user, "event_id": f"evt-{rng.randrange(s.events)}",
                "quantity": rng.choice([8, 12, 20]), "requests_per_minute": rng.choice([30, 90]),
                "payment_methods_recent": rng.choice([1, 4, 6]),
                "user_agent": rng.choice(BOT_AGENTS),
                "session": {"duration_seconds": rng.uniform(0.5, 4), "mouse_movements": 0,
                            "keystroke_intervals_ms": [rng.uniform(2, 6) for _ in range(8)]}}
    lat, lon = rng.choice(CITIES)
    return {"user_id": f"user-{rng.randrange(s.users)}",
            "event_id": f"evt-{rng.randrange(s.events)}",
            "quantity": rng.choice([1, 2, 2, 3, 4]), "payment_methods_recent": 1,
            "ip": f"203.0.113.{rng.randrange(1, 255)}",
            "geo": {"lat": lat + rng.uniform(-0.1, 0.1), "lon": lon + rng.uniform(-0.1, 0.1)},
            "user_agent": rng.choice(HUMAN_AGENTS),
            "session": {"duration_seconds": rng.uniform(30, 900),
                        "mouse_movements": rng.randrange(20, 600),
                        "keystroke_intervals_ms": [rng.uniform(60, 300) for _ in range(6)]}}


KINDS = ("human", "bot", "scalper", "evasive_bot")


def scalper(rng: random.Random) -> dict:
    """A person buying to resell: a real browser and session, bulk tickets, many cards."""
    body = purchase(rng, CheckoutSettings(bot_share=0, users=1))
    body.update(user_id=f"scalper-{rng.randrange(20)}", quantity=rng.choice([11, 15, 24, 40]),
                payment_methods_recent=rng.choice([2, 4, 5]))
    return body


def evasive_bot(rng: random.Random) -> dict:
    """A bot tuned to stay just under every single pattern's threshold (defaults):
    browser agent, up to 10 tickets, under 60 requests/min, at most 3 cards, a few mouse
    moves, keystrokes just over 10 ms apart, 5-8 s sessions, jittered timing; only the
    combination is unlike a customer."""
    lat, lon = rng.choice(CITIES)
    return {"user_id": f"evader-{rng.randrange(50)}", "event_id": f"evt-{rng.randrange(8)}",
            "quantity": rng.choice([6, 8, 10]), "requests_per_minute": rng.uniform(40, 59),
            "payment_methods_recent": rng.choice([2, 3]),
            "ip": f"198.51.100.{rng.randrange(1, 255)}",
            "geo": {"lat": lat, "lon": lon}, "user_agent": rng.choice(HUMAN_AGENTS),
            "session": {"duration_seconds": rng.uniform(5.2, 8), "mouse_movements":
                        rng.randrange(1, 4),
                        "keystroke_intervals_ms": [rng.uniform(10.5, 16) for _ in range(8)]}}


def labelled(rng: random.Random, shares: dict[str, float], s: CheckoutSettings
             ) -> tuple[str, dict]:
    """One attempt and its true kind, drawn with `shares` (kind -> share; the rest human):
    the labelled mix bench/fraud_decisions.py measures decisions on."""
    draw = rng.random()
    for kind, share in shares.items():
        if draw < share:
            if kind == "bot":
                return kind, purchase(rng, s.model_copy(update={"bot_share": 1.0}))
            return kind, scalper(rng) if kind == "scalper" else evasive_bot(rng)
        draw -= share
    return "human", purchase(rng, s.model_copy(update={"bot_share": 0.0}))


def run_traffic(s: CheckoutSettings) -> dict[str, int]:
    rng = random.Random(s.seed)
    session = requests.Session()
    if s.token:
        session.headers["Authorization"] = f"Bearer {s.token}"
    counts: dict[str, int] = {}
    base, knobs_read = s, 0.0
    deadline = time.monotonic() + s.duration_seconds if s.duration_seconds else None
    next_at = time.monotonic()
    while deadline is None or time.monotonic() < deadline:
        if time.monotonic() - knobs_read >= 1:
            s, knobs_read = read_knobs(s, base), time.monotonic()
        scalping = s.scalper_share > 0 and rng.random() < s.scalper_share
        body = scalper(rng) if scalping else purchase(rng, s)
        try:
            answer = session.post(s.url, json={"tenant": s.tenant, **body}, timeout=5)
            key = answer.json().get("decision", str(answer.status_code)) if answer.ok \
                else str(answer.status_code)
        except (requests.RequestException, ValueError) as exc:
            key = "unreachable"
            log.warning("fraud check failed", extra={"error": str(exc)[:200]})
        counts[key] = counts.get(key, 0) + 1
        next_at = max(next_at + 1 / s.checks_per_second, time.monotonic() - 1)
        time.sleep(max(0.0, next_at - time.monotonic()))
    return counts


DEMO_CONFIG = Path(__file__).with_name("checkout_demo.yaml")


def run(args: argparse.Namespace) -> int:
    settings = config.load(CheckoutSettings, args.config or DEMO_CONFIG)
    logs.setup(args.log_level)
    try:
        counts = run_traffic(settings)
    except KeyboardInterrupt:
        return 0
    log.info("checkout traffic finished", extra={"decisions": counts})
    return 0
