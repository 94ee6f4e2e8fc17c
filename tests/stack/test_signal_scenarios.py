"""The security, bot-attack and batch-job scenarios drive the real simulators' controls
(a running services platform, the checkout and batch jobs' control files) and undo."""

from __future__ import annotations

import json
import os
import random

import pytest

from ticketmon.simulator.batch_jobs import BatchJobsSettings, read_states
from ticketmon.simulator.checkout import CheckoutSettings, read_knobs
from ticketmon.simulator.services import Platform, ServicesSettings
from ticketmon.stack import scenario, state


@pytest.fixture
def platform():
    p = Platform(ServicesSettings.model_validate({
        "control_port": 0, "services": [{"name": n, "port": 0, "routes": ["/a"]}
                                        for n in ("checkout", "payments")]}),
        random.Random(1))
    p.start()
    yield p
    p.stop()


@pytest.fixture
def stack(tmp_path, platform):
    workdir = state.private_dir(tmp_path / "stack")
    doc = {"workdir": str(workdir), "pid": os.getpid(), "admin_token": "tm_admin_x_0123456789",
           "services_control": platform.control_url,
           "checkout_knobs": str(workdir / "checkout-knobs.json"),
           "batch_knobs": str(workdir / "batch-knobs.json"),
           "prometheus": "http://127.0.0.1:9", "receiver_url": "http://127.0.0.1:9",
           "notification-sink": "http://127.0.0.1:9/"}
    state.write_private(state.state_path(workdir), json.dumps(doc))
    return workdir


def attacks(platform: Platform) -> dict[str, str]:
    return {n: s.auth.attack for n, s in platform.services.items()}


def test_attacks_start_on_the_target_and_security_ok_ends_them_all(stack, platform):
    scenario.run("brute-force", None, workdir=stack)
    scenario.run("rate-limit-storm", "payments", workdir=stack)
    assert attacks(platform) == {"checkout": "brute-force", "payments": "rate-limit-storm"}
    said = scenario.run("security-ok", None, workdir=stack)
    assert "checkout, payments" in said
    assert attacks(platform) == {"checkout": "none", "payments": "none"}
    with pytest.raises(scenario.ScenarioError, match="no service named"):
        scenario.run("credential-stuffing", "ledger", workdir=stack)


def test_bot_attack_changes_the_checkout_mix_and_fraud_ok_restores_it(stack):
    settings = CheckoutSettings(control_file=stack / "checkout-knobs.json")
    scenario.run("bot-attack", None, workdir=stack)
    attack = read_knobs(settings, settings)
    assert (attack.checks_per_second, attack.bot_share, attack.scalper_share) == (25, 0.5, 0.2)
    scenario.run("fraud-ok", None, workdir=stack)
    assert read_knobs(attack, settings) == settings


def test_a_bad_checkout_control_file_keeps_the_current_mix(tmp_path):
    base = CheckoutSettings(control_file=tmp_path / "knobs.json")
    current = base.model_copy(update={"bot_share": 0.5})
    for text in ("{", '{"bot_share": 3}', '{"url": "http://evil"}', "[]"):
        (tmp_path / "knobs.json").write_text(text)
        assert read_knobs(current, base) == current


def test_batch_scenarios_set_job_states_and_batch_ok_restores_every_job(stack):
    jobs = [j.name for j in BatchJobsSettings().jobs]
    ok = dict.fromkeys(jobs, "ok")
    control = stack / "batch-knobs.json"
    scenario.run("batch-job-fail", None, workdir=stack)
    scenario.run("batch-job-late", "nft-reconciliation", workdir=stack)
    assert read_states(control, jobs, ok) == {"settlement": "fail",
                                              "nft-reconciliation": "stop"}
    scenario.run("batch-ok", None, workdir=stack)
    assert read_states(control, jobs, {}) == ok
    with pytest.raises(scenario.ScenarioError, match="no batch job named 'payroll'"):
        scenario.run("batch-job-fail", "payroll", workdir=stack)
