"""Demo scenarios: break one thing in the running stack and watch the alert travel.

Each scenario talks to a simulator's own control (the services' control endpoint,
the Solana simulator's /control, the platform database's knobs file), so the alert
that follows is produced by the real exporters, rules, Prometheus and Alertmanager.
Every breaking scenario names the alert that proves it and the scenario that undoes
it; tests/stack/test_scenarios_e2e.py runs each one from break to resolve notification
and bench/time_to_signal.py times it. The stack is the one in `--workdir DIR`, else
this user's only running stack (ticketmon/stack/state.py); the output names it, and
never prints the admin token.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select

from exporters.business import schema
from ticketmon.simulator.batch_jobs import BatchJobsSettings
from ticketmon.stack import state as stack_state

FEE_PAYER = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"
FEE_PAYER_LAMPORTS = 42_000_000_000  # what `stack up` gives it, and fee-payer-ok restores
# 0.35 SOL a minute: the 42 SOL last two hours, well inside the alert's 24 h horizon
FEE_PAYER_DRAIN = 5_833_333

Apply = Callable[[dict, str | None], str]


class ScenarioError(Exception):
    pass


@dataclass(frozen=True)
class Scenario:
    what: str
    expect: str
    apply: Apply
    alert: str | None = None  # the alert that proves a breaking scenario; None for an undo
    undo: str | None = None   # the scenario that clears it, run with the same target
    target: str | None = None  # the default target
    # labels the proving alert carries ("{target}" is the target); scenarios of one lane
    # change the same thing, so they run one after another when run together
    labels: dict[str, str] = field(default_factory=dict)
    lane: str = "service:{target}"

    def alert_labels(self, target: str | None) -> dict[str, str]:
        return {k: v.format(target=target or self.target) for k, v in self.labels.items()}

    def lane_of(self, target: str | None) -> str:
        return self.lane.format(target=target or self.target)


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


def _service_mode(mode: str) -> Apply:
    def apply(state: dict, target: str | None) -> str:
        _post(f"{state['services_control']}/control/{target}", {"mode": mode})
        return f"service {target} is now {mode}"

    return apply


def _services_ok(state: dict, target: str | None) -> str:
    """Bring one service back, or every service that is not ok when no target is given."""
    control = state["services_control"]
    if target:
        names = [target]
    else:
        try:
            modes = requests.get(f"{control}/control", timeout=10).json()
        except (requests.RequestException, ValueError) as exc:
            raise ScenarioError(f"{control}/control did not list the services: {exc}") from exc
        names = [name for name, mode in modes.items() if mode != "ok"]
    for name in names:
        _post(f"{control}/control/{name}", {"mode": "ok"})
    return f"services ok again: {', '.join(names) or 'all were'}"


def _attack(attack: str) -> Apply:
    """Start an attack on one service; "none" without a target ends every service's."""
    def apply(state: dict, target: str | None) -> str:
        control = state["services_control"]
        if target is None:
            try:
                services = list(requests.get(f"{control}/control", timeout=10).json())
            except (requests.RequestException, ValueError) as exc:
                raise ScenarioError(f"{control}/control did not answer: {exc}") from exc
        else:
            services = [target]
        for service in services:
            _post(f"{control}/control/{service}", {"attack": attack})
        return f"attack on {', '.join(services)}: {attack}"

    return apply


def _write_json(path: Path, doc: dict) -> None:
    """Replace a simulator's control file in one step: it never reads half a file."""
    tmp = path.with_suffix(".tmp")
    stack_state.write_private(tmp, json.dumps(doc))
    os.replace(tmp, path)


def _merge_json(path: Path, values: dict) -> None:
    """Merge `values` into a control file under a lock: scenarios run at once must not
    drop each other's change."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = json.loads(path.read_text()) if path.exists() else {}
        _write_json(path, {**current, **values})


def _write_knobs(state: dict, values: dict) -> str:
    _merge_json(Path(state["platform_knobs"]), values)
    return "platform database: " + ", ".join(f"{k}={v}" for k, v in values.items())


def _knobs(**values: float) -> Apply:
    return lambda state, target: _write_knobs(state, values)


def _defaults(*names: str, **values: float) -> Apply:
    """The stack's own start-up values of some knobs back, and `values`."""
    def apply(state: dict, target: str | None) -> str:
        defaults = state.get("platform_defaults", {})
        return _write_knobs(state, {n: defaults[n] for n in names if n in defaults} | values)

    return apply


def _event_on_sale(state: dict, target: str | None) -> tuple[int, str]:
    """The event on sale a target names (its id or name), else the best seller of the
    last hour: surely on its own series, so its stall is not mistaken for quiet."""
    e, t = schema.events.c, schema.tickets.c
    now = datetime.now(UTC).replace(tzinfo=None)
    sold = (select(func.count(t.id)).where(t.event_id == e.id, t.sold_at >= now -
                                           timedelta(hours=1)).scalar_subquery())
    engine = create_engine(state["platform-db"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(e.id, e.name)
                                .where(e.sale_starts_at <= now, e.sale_ends_at > now)
                                .order_by(sold.desc(), e.id)).all()
    finally:
        engine.dispose()
    for event_id, name in rows:
        if target in (None, str(event_id), name):
            return event_id, name
    raise ScenarioError(f"no event on sale is named {target!r}" if target
                        else "no event is on sale")


def _stall_sales(state: dict, target: str | None) -> str:
    event_id, name = _event_on_sale(state, target)
    _write_knobs(state, {"stalled_event_id": event_id})
    return f"platform database: no more orders for event {name!r} (id {event_id})"


def _checkout(**knobs: float) -> Apply:
    def apply(state: dict, target: str | None) -> str:
        _write_json(Path(state["checkout_knobs"]), knobs)
        return "checkout traffic: " + (", ".join(f"{k}={v}" for k, v in knobs.items())
                                       or "back to normal")

    return apply


def _batch(job_state: str) -> Apply:
    """Set a nightly job's state (`ok` without a job: every job)."""
    def apply(state: dict, target: str | None) -> str:
        known = [j.name for j in BatchJobsSettings().jobs]
        if target is not None and target not in known:
            raise ScenarioError(f"no batch job named {target!r}; try: {', '.join(known)}")
        jobs = [target] if target else known
        _merge_json(Path(state["batch_knobs"]), dict.fromkeys(jobs, job_state))
        return f"batch job(s) {', '.join(jobs)}: {job_state}"

    return apply


def _rpc_base(state: dict) -> str:
    return state["solana-rpc"].rsplit("/", 1)[0]


def _rpc(doc: dict) -> Apply:
    def apply(state: dict, target: str | None) -> str:
        _post(f"{_rpc_base(state)}/control", {"node": target, **doc})
        return f"solana node {target}: {doc}"

    return apply


def _rpc_clear(state: dict, target: str | None) -> str:
    """Clear the faults of one node, or of every node when no target is given."""
    base = _rpc_base(state)
    if target:
        nodes = [target]
    else:
        try:
            nodes = list(requests.get(f"{base}/control", timeout=10).json()["nodes"])
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise ScenarioError(f"{base}/control did not list the nodes: {exc}") from exc
    for node in nodes:
        _post(f"{base}/control", {"node": node, "mode": "none", "lag_slots": 0})
    return f"solana nodes {', '.join(nodes)}: faults cleared"


def _fee_payer(lamports_per_second: int, refill: bool) -> Apply:
    def apply(state: dict, target: str | None) -> str:
        doc: dict = {"drain": {"address": FEE_PAYER, "lamports_per_second": lamports_per_second}}
        if refill:
            doc["balance"] = {"address": FEE_PAYER, "lamports": FEE_PAYER_LAMPORTS}
        _post(f"{_rpc_base(state)}/control", doc)
        return ("fee payer refilled to 42 SOL, spending stopped" if refill
                else "fee payer spends 0.35 SOL a minute (empty in two hours)")

    return apply


SCENARIOS: dict[str, Scenario] = {
    "service-down": Scenario(
        "stop a simulated service (default checkout)",
        "ServiceDown (critical) after ~1 min: incident, PagerDuty + Slack in the sink",
        _service_mode("down"), alert="ServiceDown", undo="service-ok", target="checkout",
        labels={"service": "{target}"}),
    "service-degraded": Scenario(
        "make a service report itself degraded, one dependency down (default inventory)",
        "ServiceDegraded (warning) after ~1.5 min: incident, Slack in the sink",
        _service_mode("degraded"), alert="ServiceDegraded", undo="service-ok",
        target="inventory", labels={"service": "{target}"}),
    "service-failing": Scenario(
        "make a service answer 30 % errors (default marketplace)",
        "ErrorBudgetBurnFast (SLO page) within ~1 min: PagerDuty + Slack",
        _service_mode("failing"), alert="ErrorBudgetBurnFast", undo="service-ok",
        target="marketplace", labels={"service": "{target}"}),
    "service-ok": Scenario("bring a service back (default every service)",
                           "its alerts resolve, so does the incident", _services_ok),
    # The security scenarios share the service lanes above, one after the other: an
    # attack's critical alert would silence the other lanes' warnings of that service.
    "brute-force": Scenario(
        "one source guesses passwords on a service (default checkout)",
        "AuthBruteForce (warning) after ~1.5 min: incident, Slack in the sink",
        _attack("brute-force"), alert="AuthBruteForce", undo="security-ok",
        target="checkout", labels={"service": "{target}"}),
    "credential-stuffing": Scenario(
        "a botnet replays a leaked credential list on a service (default marketplace)",
        "AuthCredentialStuffing (critical) after ~1.5 min: PagerDuty + Slack",
        _attack("credential-stuffing"), alert="AuthCredentialStuffing", undo="security-ok",
        target="marketplace", labels={"service": "{target}"}),
    "rate-limit-storm": Scenario(
        "flood a service's first route past its rate limit (default inventory)",
        "RateLimitStorm (warning) after ~1.5 min (demo window)",
        _attack("rate-limit-storm"), alert="RateLimitStorm", undo="security-ok",
        target="inventory", labels={"service": "{target}"}),
    "security-ok": Scenario(
        "end the attack on a service (default: on every service)",
        "security alerts resolve within ~1.5 min (the demo's 60 s lockout window and 1m "
        "rates)", _attack("none")),
    "bot-attack": Scenario(
        "a burst of bot and scalper traffic through checkout (25 checks/s, half bots)",
        "FraudHighRiskRatioHigh (warning) after ~1.5 min, FraudBotSurge too once the stack "
        "has been up 2 min (demo windows): incident, Slack in the sink",
        _checkout(checks_per_second=25, bot_share=0.5, scalper_share=0.2),
        alert="FraudHighRiskRatioHigh", undo="fraud-ok", labels={"service": "fraud"},
        lane="fraud"),
    "fraud-ok": Scenario("ordinary checkout traffic again", "fraud alerts resolve within ~2 min",
                         _checkout()),
    # BatchJobLate (critical) proves both: a failing job's BatchJobFailed (warning) is
    # inhibited by its BatchJobLate about when its first notification is due.
    "batch-job-fail": Scenario(
        "a nightly job's runs fail (default settlement)",
        "BatchJobFailed (warning) at the next run, BatchJobLate (critical) within 1.5 min: "
        "PagerDuty + Slack", _batch("fail"), alert="BatchJobLate", undo="batch-ok",
        target="settlement", labels={"service": "{target}"}, lane="batch:{target}"),
    "batch-job-late": Scenario(
        "a nightly job stops running (default nft-reconciliation)",
        "BatchJobLate (critical) within 1.5 min: PagerDuty + Slack", _batch("stop"),
        alert="BatchJobLate", undo="batch-ok", target="nft-reconciliation",
        labels={"service": "{target}"}, lane="batch:{target}"),
    "batch-ok": Scenario("a nightly job runs and succeeds again, at once (default: every job)",
                         "batch alerts resolve", _batch("ok")),
    "payments-failing": Scenario(
        "half of all payments fail", "PaymentFailureRatioHigh (critical) after ~1.5 min",
        _knobs(payment_failure_ratio=0.5), alert="PaymentFailureRatioHigh",
        undo="payments-ok", lane="platform:payments"),
    "payments-ok": Scenario("payments fail as usual again (5 %)",
                            "PaymentFailureRatioHigh resolves",
                            _defaults("payment_failure_ratio")),
    "sales-stall": Scenario(
        "no more orders for one event (an event id or name; default the best seller)",
        "TicketSalesStalled (critical) for that event after ~3 min",
        _stall_sales, alert="TicketSalesStalled", undo="sales-ok", lane="platform:sales"),
    "sales-ok": Scenario("orders reach every event again", "TicketSalesStalled resolves",
                         _knobs(stalled_event_id=0)),
    "platform-ok": Scenario("normal sales and payments again", "business alerts resolve",
                            _defaults("orders_per_second", "payment_failure_ratio",
                                      stalled_event_id=0)),
    "rpc-down": Scenario(
        "a Solana RPC node answers HTTP 503 (default primary)",
        "SolanaRPCDown (critical) after ~1 min", _rpc({"mode": "http_error", "status": 503}),
        alert="SolanaRPCDown", undo="rpc-ok", target="primary",
        labels={"endpoint": "{target}"}, lane="solana:nodes"),
    "rpc-lag": Scenario(
        "a Solana RPC node falls 500 slots behind (default reference)",
        "SolanaSlotLagHigh (warning) after ~1.5 min", _rpc({"lag_slots": 500}),
        alert="SolanaSlotLagHigh", undo="rpc-ok", target="reference",
        labels={"endpoint": "{target}"}, lane="solana:nodes"),
    "rpc-ok": Scenario("clear Solana faults (one node, default every node)",
                       "blockchain alerts resolve", _rpc_clear),
    "fee-payer-low": Scenario(
        "the fee payer wallet spends 0.35 SOL a minute",
        "FeePayerBalanceExhaustionPredicted (warning) after ~1.5 min",
        _fee_payer(FEE_PAYER_DRAIN, refill=False), alert="FeePayerBalanceExhaustionPredicted",
        undo="fee-payer-ok", labels={"wallet": "fee_payer"}, lane="solana:fee-payer"),
    "fee-payer-ok": Scenario("refill the fee payer to 42 SOL and stop the spending",
                             "FeePayerBalanceExhaustionPredicted resolves",
                             _fee_payer(0, refill=True)),
}


def apply(name: str, target: str | None, state: dict) -> str:
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; try: {', '.join(SCENARIOS)}")
    scenario = SCENARIOS[name]
    return scenario.apply(state, target or scenario.target)


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
    scenario = SCENARIOS[name]
    done = apply(name, target, state)
    undo = (f"\nundo: ticketmon stack scenario {scenario.undo}"
            f"{' ' + (target or scenario.target) if target or scenario.target else ''}"
            if scenario.undo else "")
    return (f"stack: {stack.describe()}\n{done}\nexpect: {scenario.expect}{undo}\n"
            f"watch: {alerts_page(state['prometheus'])}, "
            f"{state['receiver_url']}/api/v1/incidents (admin token: `ticketmon stack token`, "
            f"from {stack.state_file}, readable by you only), {state['notification-sink']}")
