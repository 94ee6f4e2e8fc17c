"""Demo scenarios: break one thing in the running stack and watch the alert travel.

Each scenario talks to a simulator's own control (the services' control endpoint,
the Solana simulator's /control, the platform database's knobs file), so the alert
that follows is produced by the real exporters, rules, Prometheus and Alertmanager.
The stack is the one in `--workdir DIR`, else this user's only running stack
(ticketmon/stack/state.py); the output names it, and never prints the admin token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import requests

from ticketmon.simulator.batch_jobs import BatchJobsSettings
from ticketmon.stack import state as stack_state

FEE_PAYER = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"


class ScenarioError(Exception):
    pass


def load_state(workdir: Path | None = None,
               runtime: Path | None = None) -> tuple[stack_state.Running, dict]:
    try:
        return stack_state.find(workdir, runtime)
    except stack_state.StackNotFound as exc:
        raise ScenarioError(str(exc)) from exc


def _post(url: str, body: dict) -> dict:
    try:
        resp = requests.post(url, json=body, timeout=10)
    except requests.RequestException as exc:
        raise ScenarioError(f"{url} did not answer: {exc}") from exc
    if resp.status_code != 200:
        raise ScenarioError(f"{url} refused: {resp.status_code} {resp.text.strip()}")
    return resp.json()


def _service_mode(mode: str) -> Callable[[dict, str | None], str]:
    def apply(state: dict, target: str | None) -> str:
        service = target or "checkout"
        _post(f"{state['services_control']}/control/{service}", {"mode": mode})
        return f"service {service} is now {mode}"

    return apply


def _attack(attack: str) -> Callable[[dict, str | None], str]:
    """Start an attack on one service (default checkout); "none" without a target ends
    every service's attack."""
    def apply(state: dict, target: str | None) -> str:
        control = state["services_control"]
        if target is None and attack == "none":
            try:
                services = list(requests.get(f"{control}/control", timeout=10).json())
            except (requests.RequestException, ValueError) as exc:
                raise ScenarioError(f"{control}/control did not answer: {exc}") from exc
        else:
            services = [target or "checkout"]
        for service in services:
            _post(f"{control}/control/{service}", {"attack": attack})
        return f"attack on {', '.join(services)}: {attack}"

    return apply


def _knobs(**values: float) -> Callable[[dict, str | None], str]:
    def apply(state: dict, target: str | None) -> str:
        path = Path(state["platform_knobs"])
        current = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**current, **values}))
        return "platform database: " + ", ".join(f"{k}={v}" for k, v in values.items())

    return apply


def _write_json(path: Path, doc: dict) -> None:
    """Replace a simulator's control file in one step: it never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def _checkout(**knobs: float) -> Callable[[dict, str | None], str]:
    def apply(state: dict, target: str | None) -> str:
        _write_json(Path(state["checkout_knobs"]), knobs)
        return "checkout traffic: " + (", ".join(f"{k}={v}" for k, v in knobs.items())
                                       or "back to normal")

    return apply


def _batch(job_state: str) -> Callable[[dict, str | None], str]:
    """Set a nightly job's state (default settlement; `ok` without a job: every job)."""
    def apply(state: dict, target: str | None) -> str:
        known = [j.name for j in BatchJobsSettings().jobs]
        if target is not None and target not in known:
            raise ScenarioError(f"no batch job named {target!r}; try: {', '.join(known)}")
        jobs = [target] if target else (known if job_state == "ok" else ["settlement"])
        path = Path(state["batch_knobs"])
        current = json.loads(path.read_text()) if path.exists() else {}
        _write_json(path, {**current, **dict.fromkeys(jobs, job_state)})
        return f"batch job(s) {', '.join(jobs)}: {job_state}"

    return apply


def _rpc(doc: dict) -> Callable[[dict, str | None], str]:
    def apply(state: dict, target: str | None) -> str:
        rpc = state["solana-rpc"].rsplit("/", 1)[0]
        _post(f"{rpc}/control", {"node": target or "primary", **doc})
        return f"solana node {target or 'primary'}: {doc}"

    return apply


# name -> (what it does, what to expect, how)
SCENARIOS: dict[str, tuple[str, str, Callable[[dict, str | None], str]]] = {
    "service-down": ("stop a simulated service (default checkout)",
                     "ServiceDown (critical) after ~1 min: incident, PagerDuty + Slack in the sink",
                     _service_mode("down")),
    "service-degraded": ("make a service report degraded", "ServiceDegraded (warning)",
                         _service_mode("degraded")),
    "service-failing": ("make a service answer 30 % errors",
                        "SLO burn-rate pages for the service", _service_mode("failing")),
    "service-ok": ("bring a service back", "its alerts resolve, so does the incident",
                   _service_mode("ok")),
    "brute-force": ("one source guesses passwords on a service (default checkout)",
                    "AuthBruteForce (warning) after ~1.5 min: incident, Slack in the sink",
                    _attack("brute-force")),
    "credential-stuffing": ("a botnet replays a leaked credential list (default checkout)",
                            "AuthCredentialStuffing (critical) after ~1.5 min: PagerDuty + Slack",
                            _attack("credential-stuffing")),
    "rate-limit-storm": ("flood a service's first route past its rate limit (default checkout)",
                         "RateLimitStorm (warning) after ~2.5 min", _attack("rate-limit-storm")),
    "security-ok": ("end the attack on a service (default: on every service)",
                    "AuthBruteForce and AuthCredentialStuffing resolve within ~1.5 min (the "
                    "demo's 60 s lockout window), RateLimitStorm within ~5 min (its 5m rate)",
                    _attack("none")),
    "bot-attack": ("a burst of bot and scalper traffic through checkout (25 checks/s, half bots)",
                   "FraudHighRiskRatioHigh and FraudBotSurge (warning) after ~1.5 min "
                   "(demo windows; run it once the stack has been up 2 min): incident, Slack "
                   "in the sink", _checkout(
                       checks_per_second=25, bot_share=0.5, scalper_share=0.2)),
    "fraud-ok": ("ordinary checkout traffic again", "fraud alerts resolve within ~2 min",
                 _checkout()),
    "batch-job-fail": ("a nightly job's runs fail (default settlement)",
                       "BatchJobFailed (warning) within a minute, BatchJobLate (critical) "
                       "within 1.5 min", _batch("fail")),
    "batch-job-late": ("a nightly job stops running (default settlement)",
                       "BatchJobLate (critical) within 1.5 min: PagerDuty + Slack",
                       _batch("stop")),
    "batch-ok": ("a nightly job runs and succeeds again, at once (default: every job)",
                 "batch alerts resolve", _batch("ok")),
    "payments-failing": ("half of all payments fail", "PaymentFailureRatioHigh",
                         _knobs(payment_failure_ratio=0.5)),
    "sales-stall": ("no more orders", "TicketSalesStalled for events on sale",
                    _knobs(orders_per_second=0.0)),
    "platform-ok": ("normal sales and payments again", "business alerts resolve",
                    _knobs(orders_per_second=2.0, payment_failure_ratio=0.05)),
    "rpc-down": ("the primary Solana RPC answers HTTP 503", "SolanaRPCDown",
                 _rpc({"mode": "http_error", "status": 503})),
    "rpc-lag": ("the reference node falls 500 slots behind", "SolanaSlotLagHigh",
                _rpc({"lag_slots": 500})),
    "fee-payer-low": ("drain the fee payer wallet to 0.1 SOL", "FeePayerBalanceExhaustionPredicted",
                      _rpc({"balance": {"address": FEE_PAYER, "lamports": 100_000_000}})),
    "rpc-ok": ("clear Solana faults", "blockchain alerts resolve",
               _rpc({"mode": "none", "lag_slots": 0})),
}


def alerts_page(prometheus: str) -> str:
    """The alerts page this Prometheus serves: Debian's build (these machines') ships only
    the classic UI, under /classic/, and upstream's only the new one, at /alerts."""
    for path in ("/alerts", "/classic/alerts"):
        try:
            if requests.get(prometheus + path, timeout=2).status_code == 200:
                return prometheus + path
        except requests.RequestException:
            break
    return f"{prometheus}/api/v1/alerts"  # answers on every version, if not in a browser


def run(name: str, target: str | None, workdir: Path | None = None,
        runtime: Path | None = None) -> str:
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; try: {', '.join(SCENARIOS)}")
    stack, state = load_state(workdir, runtime)
    _, expect, apply = SCENARIOS[name]
    done = apply(state, target)
    return (f"stack: {stack.describe()}\n{done}\nexpect: {expect}\n"
            f"watch: {alerts_page(state['prometheus'])}, "
            f"{state['receiver_url']}/api/v1/incidents (admin token: `ticketmon stack token`, "
            f"from {stack.state_file}, readable by you only), {state['notification-sink']}")
