"""The Solana exporter against the simulator, through the real `solana` client."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.promtool import promtool_check_metrics

from exporters.blockchain.collector import SolanaCollector
from exporters.blockchain.main import build
from exporters.blockchain.settings import BlockchainSettings
from ticketmon.core.config import ConfigError, load
from ticketmon.servers.process import free_port


def make_collector(sim, addresses, **overrides) -> SolanaCollector:
    doc = {
        "endpoints": [
            {"name": "primary", "url": sim.url(), "timeout": 0.5},
            {"name": "reference", "url": sim.url("reference"), "timeout": 0.5},
        ],
        "interval": 1, "timeout": 3,
        "wallets": {"fee_payer": addresses["fee_payer"], "treasury": addresses["treasury"]},
        "programs": {"ticket_mint": addresses["program"]},
    }
    doc.update(overrides)
    collector = SolanaCollector(BlockchainSettings.model_validate(doc))
    collector.exporter_name = "blockchain"
    return collector


def samples(collector: SolanaCollector) -> dict[tuple, float]:
    text = collector.exposition()[0].decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(collector, name, **labels):
    return samples(collector).get((name, tuple(sorted(labels.items()))))


def collect(collector) -> None:
    assert collector.run_once(), collector.health.last_error


def expected_outcomes(sim, address, until: str, newest: str) -> dict[str, int]:
    """Count the simulator's own record of the transactions after `until` up to `newest`."""
    txs = sim.chain.signatures_for_address(address, {"until": until})
    sigs = [t["signature"] for t in txs]
    window = txs[sigs.index(newest):]
    return {"success": sum(t["err"] is None for t in window),
            "failed": sum(t["err"] is not None for t in window)}


def test_healthy_endpoints_give_every_figure_from_rpc(solana_sim, addresses):
    collector = make_collector(solana_sim, addresses)
    collect(collector)
    assert value(collector, "ticketmon_solana_rpc_up", endpoint="primary") == 1
    assert value(collector, "ticketmon_solana_rpc_healthy", endpoint="reference") == 1
    slot = solana_sim.chain.slot()
    assert value(collector, "ticketmon_solana_slot", endpoint="primary") == slot
    assert value(collector, "ticketmon_solana_slot_lag", endpoint="primary") == 0
    assert value(collector, "ticketmon_solana_slot_lag", endpoint="reference") == 7
    assert value(collector, "ticketmon_solana_block_height", endpoint="primary") \
        == solana_sim.chain.block_height(slot)
    info = solana_sim.chain.epoch_info(slot)
    assert value(collector, "ticketmon_solana_epoch") == info["epoch"]
    assert value(collector, "ticketmon_solana_epoch_progress_ratio") == pytest.approx(
        info["slotIndex"] / info["slotsInEpoch"])
    perf = solana_sim.chain.performance_samples(slot, 5)
    assert value(collector, "ticketmon_solana_transactions_per_second") == pytest.approx(
        sum(p["numTransactions"] for p in perf) / sum(p["samplePeriodSecs"] for p in perf))
    assert value(collector, "ticketmon_solana_wallet_balance_sol", wallet="fee_payer") == 2.5
    assert value(collector, "ticketmon_solana_wallet_balance_sol", wallet="treasury") == 120
    assert promtool_check_metrics(collector.exposition()[0]) == ""


def test_program_transactions_read_incrementally(solana_sim, addresses, clock):
    collector = make_collector(solana_sim, addresses, signatures_per_page=7, max_pages=20)
    collect(collector)  # sets the mark only: history before the exporter is not counted
    mark = collector.marks["ticket_mint"].newest
    assert value(collector, "ticketmon_solana_program_transactions_total",
                 program="ticket_mint", outcome="success") == 0
    clock.advance(12)  # 60 new transactions: several pages of 7
    collect(collector)
    newest = collector.marks["ticket_mint"].newest
    expected = expected_outcomes(solana_sim, addresses["program"], mark, newest)
    assert sum(expected.values()) == 60 and expected["failed"] > 0
    for outcome, count in expected.items():
        assert value(collector, "ticketmon_solana_program_transactions_total",
                     program="ticket_mint", outcome=outcome) == count
    assert value(collector, "ticketmon_solana_confirmation_seconds_count",
                 program="ticket_mint") == 60
    mean = value(collector, "ticketmon_solana_confirmation_seconds_sum",
                 program="ticket_mint") / 60
    assert 0.5 <= mean <= 3.5  # confirmation_seconds=2 in the simulator, whole-second block times
    collect(collector)  # nothing new: nothing counted twice
    assert value(collector, "ticketmon_solana_program_transactions_total",
                 program="ticket_mint", outcome="success") == expected["success"]


def test_failed_program_read_counts_nothing_and_loses_nothing(solana_sim, addresses, clock):
    collector = make_collector(solana_sim, addresses)
    collect(collector)
    mark = collector.marks["ticket_mint"].newest
    clock.advance(4)
    for node in ("primary", "reference"):
        solana_sim.set_fault(node, "error", methods=["getSignaturesForAddress"], code=-32011,
                             message="Transaction history is not available from this node")
    collect(collector)
    assert collector.marks["ticket_mint"].newest == mark
    assert value(collector, "ticketmon_solana_rpc_errors_total", endpoint="primary",
                 method="getSignaturesForAddress", code="-32011") == 1
    for node in ("primary", "reference"):
        solana_sim.set_fault(node, "none")
    collect(collector)
    expected = expected_outcomes(solana_sim, addresses["program"], mark,
                                 collector.marks["ticket_mint"].newest)
    assert sum(expected.values()) == 20
    assert value(collector, "ticketmon_solana_program_transactions_total",
                 program="ticket_mint", outcome="failed") == expected["failed"]


@pytest.mark.parametrize("fault, code, up, healthy", [
    ({"mode": "behind", "slots_behind": 150}, "-32005", 1, 0),
    ({"mode": "behind_no_data"}, "-32005", 1, 0),  # solders would panic on this one
    ({"mode": "error", "code": -32099, "message": "provider-specific"}, "-32099", 1, 0),
    ({"mode": "rate_limit", "retry_after": 30}, "429", 0, 0),
    ({"mode": "malformed"}, "malformed", 0, 0),
    ({"mode": "http_error", "status": 502}, "502", 0, 0),
    ({"mode": "drop"}, "transport", 0, 0),
    ({"mode": "slow", "delay": 1.5}, "timeout", 0, 0),
])
def test_a_failing_endpoint_is_counted_and_never_stalls_the_others(
        solana_sim, addresses, fault, code, up, healthy):
    collector = make_collector(solana_sim, addresses)
    solana_sim.set_fault("primary", methods=["getHealth"], **fault)
    started = time.monotonic()
    collect(collector)
    assert time.monotonic() - started < 1.5  # bounded by the 0.5 s endpoint timeout
    assert value(collector, "ticketmon_solana_rpc_errors_total", endpoint="primary",
                 method="getHealth", code=code) == 1
    assert value(collector, "ticketmon_solana_rpc_up", endpoint="primary") == up
    assert value(collector, "ticketmon_solana_rpc_healthy", endpoint="primary") == healthy
    assert value(collector, "ticketmon_solana_rpc_up", endpoint="reference") == 1
    # the reference takes over what the primary could not give
    assert value(collector, "ticketmon_solana_wallet_balance_sol", wallet="fee_payer") == 2.5
    assert value(collector, "ticketmon_solana_epoch") is not None
    assert promtool_check_metrics(collector.exposition()[0]) == ""


def test_rate_limited_endpoint_is_left_alone_for_retry_after(solana_sim, addresses):
    collector = make_collector(solana_sim, addresses)
    solana_sim.set_fault("primary", "rate_limit", retry_after=30)
    collect(collector)
    asked = solana_sim.nodes["primary"].requests
    collect(collector)
    assert solana_sim.nodes["primary"].requests == asked  # paused, not hammered
    assert value(collector, "ticketmon_solana_rpc_up", endpoint="primary") == 0
    assert value(collector, "ticketmon_solana_slot", endpoint="reference") is not None


def test_dead_endpoint_and_repeated_timeouts_back_off(solana_sim, addresses):
    dead = f"http://127.0.0.1:{free_port()}/"
    collector = make_collector(solana_sim, addresses, endpoints=[
        {"name": "dead", "url": dead, "timeout": 0.5},
        {"name": "reference", "url": solana_sim.url("reference"), "timeout": 0.5}])
    collect(collector)
    collect(collector)
    assert value(collector, "ticketmon_solana_rpc_up", endpoint="dead") == 0
    assert value(collector, "ticketmon_solana_rpc_errors_total", endpoint="dead",
                 method="getHealth", code="transport") == 2
    assert collector.backoff["dead"].paused()  # second failure in a row: pause
    assert value(collector, "ticketmon_solana_slot_lag", endpoint="reference") == 0


def test_wallet_balance_follows_the_chain(solana_sim, addresses):
    collector = make_collector(solana_sim, addresses)
    collect(collector)
    solana_sim.chain.set_balance(addresses["fee_payer"], 150_000_000)
    collect(collector)
    assert value(collector, "ticketmon_solana_wallet_balance_sol", wallet="fee_payer") == 0.15


def test_metrics_served_over_http_pass_promtool(solana_sim, addresses):
    settings = BlockchainSettings.model_validate({
        "http": {"port": free_port()},
        "endpoints": [{"name": "primary", "url": solana_sim.url(), "timeout": 0.5}],
        "interval": 0.2, "timeout": 2, "programs": {"ticket_mint": addresses["program"]},
    })
    exporter = build(settings)
    exporter.start()
    try:
        deadline = time.monotonic() + 10
        while "ticketmon_solana_slot{" not in (body := requests.get(
                exporter.url + "/metrics", timeout=5).text) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 'ticketmon_collector_up{collector="solana",exporter="blockchain"} 1.0' in body
        assert promtool_check_metrics(body) == ""
    finally:
        exporter.stop()


@pytest.mark.parametrize("yaml_text, key", [
    ("wallets: {fee_payer: not-base58!}\n", "wallets"),
    ("endpoints: [{name: a, url: 'ftp://x'}]\n", "endpoints.0.url"),
    ("endpoints: []\n", "endpoints"),
    ("endpoints: [{name: a, url: 'http://x', timeout: 5}]\ntimeout: 6\n", "timeout"),
    ("memo_submitted_pattern: '('\n", "memo_submitted_pattern"),
    ("intervall: 5\n", "intervall"),
])
def test_bad_config_names_the_key(tmp_path, yaml_text, key):
    path = tmp_path / "blockchain.yml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load(BlockchainSettings, path, environ={})
    assert key in str(err.value)
