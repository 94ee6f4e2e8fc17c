"""The simulator must answer like a Solana node, or tests of the exporter prove nothing."""

from __future__ import annotations

import requests

from ticketmon.simulator.solana_rpc import SolanaRpcSimulator


def rpc(sim: SolanaRpcSimulator, method: str, params=None, node: str = "primary"):
    body = {"jsonrpc": "2.0", "id": 7, "method": method}
    if params is not None:
        body["params"] = params
    return requests.post(sim.url(node), json=body, timeout=5)


def test_chain_answers_have_solana_shapes(solana_sim, clock, addresses):
    slot = rpc(solana_sim, "getSlot").json()
    assert slot["jsonrpc"] == "2.0" and slot["id"] == 7
    clock.advance(4)
    assert rpc(solana_sim, "getSlot").json()["result"] == slot["result"] + 10  # 0.4 s slots
    assert rpc(solana_sim, "getSlot", node="reference").json()["result"] == slot["result"] + 3
    info = rpc(solana_sim, "getEpochInfo").json()["result"]
    assert set(info) == {"absoluteSlot", "blockHeight", "epoch", "slotIndex", "slotsInEpoch",
                         "transactionCount"}
    assert info["epoch"] * info["slotsInEpoch"] + info["slotIndex"] == info["absoluteSlot"]
    balance = rpc(solana_sim, "getBalance", [addresses['fee_payer']]).json()["result"]
    assert balance["value"] == 2_500_000_000 and balance["context"]["slot"] > 0
    samples = rpc(solana_sim, "getRecentPerformanceSamples", [3]).json()["result"]
    assert len(samples) == 3 and samples[0]["slot"] > samples[1]["slot"]
    assert {"numSlots", "numTransactions", "samplePeriodSecs"} <= set(samples[0])


def test_signatures_paging_with_before_until_and_limit(solana_sim, addresses):
    PROGRAM = addresses["program"]  # noqa: N806
    newest = rpc(solana_sim, "getSignaturesForAddress", [PROGRAM, {"limit": 10}]).json()["result"]
    assert len(newest) == 10
    assert [s["slot"] for s in newest] == sorted((s["slot"] for s in newest), reverse=True)
    assert {"signature", "slot", "err", "memo", "blockTime", "confirmationStatus"} <= set(newest[0])
    older = rpc(solana_sim, "getSignaturesForAddress",
                [PROGRAM, {"limit": 5, "before": newest[4]["signature"]}]).json()["result"]
    assert [s["signature"] for s in older] == [s["signature"] for s in newest[5:10]]
    between = rpc(solana_sim, "getSignaturesForAddress",
                  [PROGRAM, {"until": newest[6]["signature"]}]).json()["result"]
    assert [s["signature"] for s in between] == [s["signature"] for s in newest[:6]]
    failed = [s for s in rpc(solana_sim, "getSignaturesForAddress", [PROGRAM]).json()["result"]
              if s["err"] is not None]
    assert failed and failed[0]["err"] == {"InstructionError": [0, {"Custom": 6001}]}


def test_bad_requests_get_json_rpc_errors(solana_sim, addresses):
    PROGRAM = addresses["program"]  # noqa: N806
    assert rpc(solana_sim, "getBalance", ["not-a-key!"]).json()["error"]["code"] == -32602
    assert rpc(solana_sim, "getSignaturesForAddress",
               [PROGRAM, {"limit": 5000}]).json()["error"]["code"] == -32602
    assert rpc(solana_sim, "getSignaturesForAddress",
               [PROGRAM, {"until": "1" * 88}]).json()["error"]["code"] == -32602
    assert rpc(solana_sim, "noSuchMethod").json()["error"]["code"] == -32601
    garbled = requests.post(solana_sim.url(), data=b"{nope", timeout=5).json()
    assert garbled["error"]["code"] == -32700
    assert requests.post(solana_sim.url(), json={"id": 1}, timeout=5).json()["error"]["code"] \
        == -32600


def test_faults_are_set_over_http_and_bad_control_is_refused(solana_sim):
    url = solana_sim.url().rstrip("/") + "/control"
    ok = requests.post(url, json={"node": "primary", "mode": "rate_limit", "retry_after": 3},
                       timeout=5)
    assert ok.status_code == 200 and ok.json()["nodes"]["primary"]["fault"] == "rate_limit"
    limited = rpc(solana_sim, "getSlot")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert rpc(solana_sim, "getSlot", node="reference").status_code == 200
    requests.post(url, json={"mode": "behind", "slots_behind": 42}, timeout=5)
    err = rpc(solana_sim, "getHealth").json()["error"]
    assert err == {"code": -32005, "message": "Node is behind by 42 slots",
                   "data": {"numSlotsBehind": 42}}
    for bad in ({"mode": "explode"}, {"node": "nobody", "mode": "none"}, [1, 2],
                {"lag_slots": -1}, {"surprise": 1}):
        answer = requests.post(url, json=bad, timeout=5)
        assert answer.status_code == 400, bad
        assert answer.json()["error"]


def test_a_fee_payer_pays_for_its_signatures_and_stops_at_zero():
    from ticketmon.simulator.solana_rpc import Chain, SolanaSimSettings

    chain = Chain(SolanaSimSettings(balances={"payer": 12_000}))
    assert chain.pay_fees("payer", 2) == 2_000  # 5,000 lamports a signature
    assert chain.pay_fees("payer", 1) == 0 and chain.balance("payer") == 0
