"""Demo scenarios: break one thing in the running stack and watch the alert travel.

Each scenario talks to a simulator's own control (the services' control endpoint,
the Solana simulator's /control, the platform database's knobs file), so the alert
that follows is produced by the real exporters, rules, Prometheus and Alertmanager.
The stack is the one in `--workdir DIR`, else this user's only running stack
(ticketmon/stack/state.py); the output names it, and never prints the admin token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import requests

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


def _knobs(**values: float) -> Callable[[dict, str | None], str]:
    def apply(state: dict, target: str | None) -> str:
        path = Path(state["platform_knobs"])
        current = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**current, **values}))
        return "platform database: " + ", ".join(f"{k}={v}" for k, v in values.items())

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
