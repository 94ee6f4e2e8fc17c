"""A Solana JSON-RPC simulator per test, on a free port, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.clock import FakeClock

from ticketmon.simulator.solana_rpc import ProgramSettings, SolanaRpcSimulator, SolanaSimSettings

PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
FEE_PAYER = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"
TREASURY = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


@pytest.fixture
def addresses() -> dict[str, str]:
    return {"program": PROGRAM, "fee_payer": FEE_PAYER, "treasury": TREASURY}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def solana_sim(clock: FakeClock) -> Iterator[SolanaRpcSimulator]:
    settings = SolanaSimSettings(
        port=0,
        nodes=[{"name": "primary"}, {"name": "reference", "lag_slots": 7}],
        balances={FEE_PAYER: 2_500_000_000, TREASURY: 120 * 10**9},
        programs={PROGRAM: ProgramSettings(transactions_per_second=5, failure_ratio=0.2,
                                           confirmation_seconds=2)},
    )
    sim = SolanaRpcSimulator(settings, clock=clock).start()
    clock.advance(600)  # some history before the exporter starts watching
    yield sim
    sim.stop()
