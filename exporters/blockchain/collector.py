"""The Solana collector: every figure comes from an RPC answer, none is made up.

One collection polls every endpoint at once (health, slot, block height), each
endpoint bounded by its own timeout so a dead one never delays the others; then reads
epoch, network TPS, wallet balances and the platform's new transactions from the first
endpoint that answered (the primary while it is up). Per program it remembers the
newest signature seen and asks only for newer ones; the first collection only sets
that mark, so counters count what happened while the exporter watched.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import BaseModel, Field

from exporters.blockchain.rpc import BackoffState, Endpoint, Instruments, RpcFailure
from exporters.blockchain.settings import BlockchainSettings
from exporters.framework import SnapshotCollector

log = logging.getLogger("ticketmon.exporters.blockchain")

LAMPORTS_PER_SOL = 1_000_000_000
NonNegative = Annotated[int, Field(ge=0)]
T = TypeVar("T")


# -- the answer shapes we rely on (extra fields are ignored, missing ones are malformed)
class EpochInfo(BaseModel):
    absoluteSlot: NonNegative
    epoch: NonNegative
    slotIndex: NonNegative
    slotsInEpoch: Annotated[int, Field(gt=0)]


class PerfSample(BaseModel):
    numTransactions: NonNegative
    samplePeriodSecs: NonNegative


class Balance(BaseModel):
    value: NonNegative


class SignatureInfo(BaseModel):
    signature: str
    slot: NonNegative
    err: Any = None
    memo: str | None = None
    blockTime: int | None = None


@dataclass
class EndpointStatus:
    endpoint: Endpoint
    answered: bool = False
    healthy: bool = False
    slot: int | None = None
    block_height: int | None = None


@dataclass
class ProgramMark:
    address: str
    started: bool = False          # the first successful read only sets the mark
    newest: str | None = None      # newest signature already counted


class SolanaCollector(SnapshotCollector):
    name = "solana"

    def __init__(self, settings: BlockchainSettings) -> None:
        super().__init__(settings.interval, settings.timeout)
        self.settings = settings
        self.instruments = Instruments()
        self.backoff = {e.name: BackoffState(settings.interval, settings.max_backoff)
                        for e in settings.endpoints}
        self.marks = {label: ProgramMark(addr) for label, addr in settings.programs.items()}
        self.memo_submitted = re.compile(settings.memo_submitted_pattern)
        self.transactions = Counter(
            "ticketmon_solana_program_transactions",
            "The platform's transactions per program or mint authority, by outcome.",
            ["program", "outcome"], registry=None,
        )
        self.confirmation = Histogram(
            "ticketmon_solana_confirmation_seconds",
            "Seconds from the submission time in a transaction's memo to its block time.",
            ["program"], registry=None,
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120),
        )
        for label in self.marks:  # make the series exist from the start
            for outcome in ("success", "failed"):
                self.transactions.labels(label, outcome)
            self.confirmation.labels(label)

    def collect_snapshot(self) -> list[Metric]:
        # stop a little before the framework's own bound so clients close cleanly
        return asyncio.run(asyncio.wait_for(self._collect(), self.timeout * 0.9))

    async def _collect(self) -> list[Metric]:
        endpoints = [Endpoint(e.name, e.url, e.timeout, self.backoff[e.name], self.instruments)
                     for e in self.settings.endpoints]
        try:
            statuses = await asyncio.gather(*(self._poll(e) for e in endpoints))
            sources = [s.endpoint for s in statuses if s.answered]
            epoch, tps, balances, _ = await asyncio.gather(
                self._first(sources, self._epoch),
                self._first(sources, self._tps),
                self._balances(sources),
                asyncio.gather(*(self._program(sources, label, mark)
                                 for label, mark in self.marks.items())),
            )
        finally:
            await asyncio.gather(*(e.close() for e in endpoints), return_exceptions=True)
        return [*self._endpoint_families(statuses), *self._chain_families(epoch, tps),
                *self._wallet_families(balances), *self.transactions.collect(),
                *self.confirmation.collect(), *self.instruments.families()]

    # -- reading --------------------------------------------------------------------------
    async def _poll(self, endpoint: Endpoint) -> EndpointStatus:
        status = EndpointStatus(endpoint)
        try:
            status.healthy = await endpoint.call("getHealth", None, str) == "ok"
            status.answered = True
        except RpcFailure as failure:
            if failure.transport:
                return status
            status.answered = True  # e.g. -32005: the node answers but is behind
        for method, attr in (("getSlot", "slot"), ("getBlockHeight", "block_height")):
            try:
                setattr(status, attr, await endpoint.call(method, None, NonNegative))
            except RpcFailure as failure:
                if failure.transport:
                    status.answered = False
                    return status
        return status

    @staticmethod
    async def _first(sources: list[Endpoint],
                     read: Callable[[Endpoint], Awaitable[T]]) -> T | None:
        """The first answer from the endpoints in order of preference."""
        for endpoint in sources:
            try:
                return await read(endpoint)
            except RpcFailure:
                continue
        return None

    @staticmethod
    async def _epoch(endpoint: Endpoint) -> EpochInfo:
        return await endpoint.call("getEpochInfo", None, EpochInfo)

    async def _tps(self, endpoint: Endpoint) -> float | None:
        samples = await endpoint.call("getRecentPerformanceSamples",
                                      [self.settings.performance_samples], list[PerfSample])
        seconds = sum(s.samplePeriodSecs for s in samples)
        return sum(s.numTransactions for s in samples) / seconds if seconds else None

    async def _balances(self, sources: list[Endpoint]) -> dict[str, int]:
        async def one(address: str) -> int | None:
            async def read(e: Endpoint) -> int:
                return (await e.call("getBalance", [address], Balance)).value
            return await self._first(sources, read)

        labels = list(self.settings.wallets)
        values = await asyncio.gather(*(one(self.settings.wallets[k]) for k in labels))
        return {k: v for k, v in zip(labels, values, strict=True) if v is not None}

    async def _program(self, sources: list[Endpoint], label: str, mark: ProgramMark) -> None:
        async def read(endpoint: Endpoint) -> list[SignatureInfo]:
            return await self._new_signatures(endpoint, mark)

        new = await self._first(sources, read)
        if new is None:
            return
        if new:
            mark.newest = new[0].signature
        if not mark.started:
            mark.started = True
            return
        for tx in new:
            self.transactions.labels(label, "success" if tx.err is None else "failed").inc()
            latency = self._confirmation_seconds(tx)
            if latency is not None:
                self.confirmation.labels(label).observe(latency)

    async def _new_signatures(self, endpoint: Endpoint, mark: ProgramMark) -> list[SignatureInfo]:
        """Signatures newer than the mark, newest first; all pages or an error."""
        per_page = 1 if not mark.started else self.settings.signatures_per_page
        found: list[SignatureInfo] = []
        before = None
        for _ in range(self.settings.max_pages):
            config: dict[str, Any] = {"limit": per_page}
            if mark.newest:
                config["until"] = mark.newest
            if before:
                config["before"] = before
            page = await endpoint.call("getSignaturesForAddress", [mark.address, config],
                                       list[SignatureInfo])
            found.extend(page)
            if len(page) < per_page or not mark.started:
                return found
            before = page[-1].signature
        log.warning("more new signatures than max_pages allow; older ones skipped",
                    extra={"address": mark.address, "counted": len(found)})
        return found

    def _confirmation_seconds(self, tx: SignatureInfo) -> float | None:
        if tx.blockTime is None or not tx.memo:
            return None
        match = self.memo_submitted.search(tx.memo)
        if not match:
            return None
        # block times are whole seconds: a fast confirmation may come out slightly negative
        return max(0.0, tx.blockTime - float(match.group(1)))

    # -- metric families ------------------------------------------------------------------
    @staticmethod
    def _endpoint_families(statuses: list[EndpointStatus]) -> list[Metric]:
        up = GaugeMetricFamily("ticketmon_solana_rpc_up",
                               "1 if the endpoint answered JSON-RPC in the last collection.",
                               labels=["endpoint"])
        healthy = GaugeMetricFamily("ticketmon_solana_rpc_healthy",
                                    "1 if the endpoint's getHealth answered ok.",
                                    labels=["endpoint"])
        slot = GaugeMetricFamily("ticketmon_solana_slot", "Latest slot the endpoint reports.",
                                 labels=["endpoint"])
        lag = GaugeMetricFamily("ticketmon_solana_slot_lag",
                                "Slots the endpoint is behind the highest slot seen.",
                                labels=["endpoint"])
        height = GaugeMetricFamily("ticketmon_solana_block_height",
                                   "Latest block height the endpoint reports.",
                                   labels=["endpoint"])
        slots = [s.slot for s in statuses if s.slot is not None]
        highest = max(slots) if slots else None
        for s in statuses:
            name = [s.endpoint.name]
            up.add_metric(name, 1.0 if s.answered else 0.0)
            healthy.add_metric(name, 1.0 if s.healthy else 0.0)
            if s.slot is not None and highest is not None:
                slot.add_metric(name, float(s.slot))
                lag.add_metric(name, float(highest - s.slot))
            if s.block_height is not None:
                height.add_metric(name, float(s.block_height))
        return [up, healthy, slot, lag, height]

    @staticmethod
    def _chain_families(epoch: EpochInfo | None, tps: float | None) -> list[Metric]:
        out: list[Metric] = []
        if epoch is not None:
            out.append(GaugeMetricFamily("ticketmon_solana_epoch", "Current epoch.",
                                         value=float(epoch.epoch)))
            out.append(GaugeMetricFamily("ticketmon_solana_epoch_progress_ratio",
                                         "Share of the current epoch's slots already passed.",
                                         value=epoch.slotIndex / epoch.slotsInEpoch))
        if tps is not None:
            out.append(GaugeMetricFamily(
                "ticketmon_solana_transactions_per_second",
                "Network transactions per second over the recent performance samples.",
                value=tps))
        return out

    @staticmethod
    def _wallet_families(balances: dict[str, int]) -> list[Metric]:
        family = GaugeMetricFamily("ticketmon_solana_wallet_balance_sol",
                                   "SOL balance of a watched wallet.", labels=["wallet"])
        for label, lamports in balances.items():
            family.add_metric([label], lamports / LAMPORTS_PER_SOL)
        return [family]
