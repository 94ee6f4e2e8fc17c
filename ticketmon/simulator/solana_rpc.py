"""A local Solana JSON-RPC 2.0 node that answers with the real response shapes.

Tests and the demo run the real `solana` client against it, since no Solana cluster is
reachable here. One process serves several "nodes" (POST / is `primary`, POST /<name>
any other configured node) over one simulated chain whose slot advances with the
clock; each node can lag behind and can be told to misbehave like real providers do:
-32005 "node is behind" (with or without `data`), other JSON-RPC error codes, HTTP 429
with Retry-After, slow answers, malformed bodies, HTTP 5xx, dropped connections.

Faults are set from Python (`set_fault`) or over HTTP (`POST /control`), e.g.
  {"node": "primary", "mode": "rate_limit", "retry_after": 2}
  {"node": "primary", "mode": "none"}
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import Field
from solders.pubkey import Pubkey
from solders.signature import Signature

from ticketmon.core import ports
from ticketmon.core.config import Settings

log = logging.getLogger("ticketmon.simulator.solana_rpc")

LAMPORTS_PER_SOL = 1_000_000_000
LAMPORTS_PER_SIGNATURE = 5000  # the base fee of one signature
MAX_SIGNATURES_LIMIT = 1000
SAMPLE_PERIOD_SECONDS = 60
FAULT_MODES = ("none", "behind", "behind_no_data", "error", "rate_limit", "slow",
               "malformed", "http_error", "drop")
API_VERSION = "2.0.18"


class NodeSettings(Settings):
    name: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    lag_slots: int = Field(0, ge=0)


class ProgramSettings(Settings):
    """Simulated activity of one address (a program or mint authority)."""

    transactions_per_second: float = Field(0.5, gt=0, le=1000)
    failure_ratio: float = Field(0.05, ge=0, le=1)
    confirmation_seconds: float = Field(1.5, ge=0, le=120)


class SolanaSimSettings(Settings):
    host: str = "127.0.0.1"
    port: int = Field(10197, ge=0, le=65535)
    slot_seconds: float = Field(0.4, gt=0, le=10)
    start_slot: int = Field(290_000_000, ge=0)
    slots_per_epoch: int = Field(432_000, ge=32)
    transactions_per_second: float = Field(3000, ge=0)
    nodes: list[NodeSettings] = Field(
        default_factory=lambda: [NodeSettings(name="primary"), NodeSettings(name="reference")]
    )
    # address -> lamports
    balances: dict[str, int] = Field(default_factory=dict)
    # address -> activity
    programs: dict[str, ProgramSettings] = Field(default_factory=dict)


@dataclass
class Fault:
    mode: str = "none"
    methods: frozenset[str] = frozenset()  # empty: every method
    delay: float = 0.0                     # slow: seconds before the answer
    retry_after: int = 1                   # rate_limit: Retry-After header
    code: int = -32007                     # error: JSON-RPC code
    message: str = "simulated error"
    data: Any = None
    status: int = 503                      # http_error: HTTP status
    slots_behind: int = 100                # behind: reported in the error

    def applies_to(self, method: str | None) -> bool:
        return self.mode != "none" and (not self.methods or method in self.methods)


@dataclass
class Node:
    name: str
    lag_slots: int = 0
    fault: Fault = field(default_factory=Fault)
    requests: int = 0


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def body(self) -> dict:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def _pubkey(value: Any) -> str:
    if not isinstance(value, str):
        raise RpcError(-32602, "Invalid params: expected a base-58 pubkey string")
    try:
        return str(Pubkey.from_string(value))
    except ValueError:
        raise RpcError(-32602, "Invalid param: Invalid") from None


def _config(params: list, index: int) -> dict:
    if len(params) > index and params[index] is not None:
        if not isinstance(params[index], dict):
            raise RpcError(-32602, "Invalid params: config must be an object")
        return params[index]
    return {}


class Chain:
    """The simulated ledger: a clock-driven slot and deterministic address activity."""

    def __init__(self, settings: SolanaSimSettings, clock=time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.genesis = clock()
        self.balances = dict(settings.balances)
        self.programs = dict(settings.programs)
        self._lock = threading.Lock()

    # -- time and slots
    def slot(self, at: float | None = None) -> int:
        at = self.clock() if at is None else at
        return self.settings.start_slot + int((at - self.genesis) / self.settings.slot_seconds)

    def slot_time(self, slot: int) -> float:
        return self.genesis + (slot - self.settings.start_slot) * self.settings.slot_seconds

    def block_height(self, slot: int) -> int:
        # about 5 % of slots are skipped by their leader
        return slot - slot // 20 - 20_000_000

    def epoch_info(self, slot: int) -> dict:
        spe = self.settings.slots_per_epoch
        tx_count = int(self.settings.transactions_per_second * self.settings.slot_seconds * slot)
        return {"absoluteSlot": slot, "blockHeight": self.block_height(slot),
                "epoch": slot // spe, "slotIndex": slot % spe, "slotsInEpoch": spe,
                "transactionCount": tx_count}

    def performance_samples(self, slot: int, limit: int) -> list[dict]:
        now = self.slot_time(slot)
        newest = int((now - self.genesis) // SAMPLE_PERIOD_SECONDS)
        out = []
        for k in range(newest, max(newest - limit, -1), -1):
            end = self.genesis + (k + 1) * SAMPLE_PERIOD_SECONDS
            wobble = 0.9 + 0.2 * (int(hashlib.sha256(str(k).encode()).hexdigest()[:4], 16) / 65535)
            txs = int(self.settings.transactions_per_second * SAMPLE_PERIOD_SECONDS * wobble)
            out.append({"slot": self.slot(end),
                        "numSlots": int(SAMPLE_PERIOD_SECONDS / self.settings.slot_seconds),
                        "numTransactions": txs, "numNonVoteTransactions": txs // 4,
                        "samplePeriodSecs": SAMPLE_PERIOD_SECONDS})
        return out

    # -- balances
    def balance(self, address: str) -> int:
        with self._lock:
            return self.balances.get(address, 0)

    def set_balance(self, address: str, lamports: int) -> None:
        with self._lock:
            self.balances[address] = lamports

    def pay_fees(self, address: str, signatures: int,
                 lamports_per_signature: int = LAMPORTS_PER_SIGNATURE) -> int:
        """A fee payer pays for `signatures` transactions (never below zero: the cluster
        refuses what it cannot pay); its balance after."""
        with self._lock:
            left = max(0, self.balances.get(address, 0) - signatures * lamports_per_signature)
            self.balances[address] = left
            return left

    # -- an address's transactions: transaction i happens at genesis + i / rate
    def _signature(self, address: str, index: int) -> str:
        digest = hashlib.sha512(f"{address}:{index}".encode()).digest()
        return str(Signature(index.to_bytes(8, "big") + digest[:56]))

    def _index_of(self, address: str, signature: Any) -> int:
        if not isinstance(signature, str):
            raise RpcError(-32602, "Invalid param: signature must be a string")
        try:
            raw = bytes(Signature.from_string(signature))
        except ValueError:
            raise RpcError(-32602, "Invalid param: Invalid") from None
        index = int.from_bytes(raw[:8], "big")
        if self._signature(address, index) != signature:
            raise RpcError(-32602, "Invalid param: unknown signature for this address")
        return index

    def _transaction(self, address: str, prog: ProgramSettings, index: int) -> dict:
        # transactions land in index order; their submission came `confirm` seconds before
        landed = self.genesis + index / prog.transactions_per_second
        digest = hashlib.sha256(f"{address}:{index}:o".encode()).digest()
        failed = digest[0] / 256 < prog.failure_ratio
        submitted = landed - prog.confirmation_seconds * (0.5 + digest[1] / 256)
        slot = self.slot(landed)
        return {
            "signature": self._signature(address, index),
            "slot": slot,
            "err": {"InstructionError": [0, {"Custom": 6001}]} if failed else None,
            "memo": f"[24] submitted_at={submitted:.3f}",
            "blockTime": int(self.slot_time(slot)),
            "confirmationStatus": "finalized",
        }

    def signatures_for_address(self, address: str, config: dict) -> list[dict]:
        limit = config.get("limit", MAX_SIGNATURES_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise RpcError(-32602, "Invalid params: limit must be a positive integer")
        if limit > MAX_SIGNATURES_LIMIT:
            raise RpcError(-32602, f"Invalid limit; max {MAX_SIGNATURES_LIMIT}")
        prog = self.programs.get(address)
        if prog is None:
            return []
        # the newest transaction that has landed by now
        newest = int((self.clock() - self.genesis) * prog.transactions_per_second)
        top = newest
        if config.get("before") is not None:
            top = min(top, self._index_of(address, config["before"]) - 1)
        bottom = 0
        if config.get("until") is not None:
            bottom = self._index_of(address, config["until"]) + 1
        indices = range(top, max(bottom, top - limit + 1) - 1, -1)
        return [self._transaction(address, prog, i) for i in indices if i >= 0]


class SolanaRpcSimulator:
    """The HTTP server in a background thread; `url(node)` is what clients dial."""

    def __init__(self, settings: SolanaSimSettings | None = None, clock=time.time) -> None:
        self.settings = settings or SolanaSimSettings()
        self.chain = Chain(self.settings, clock)
        self.nodes = {n.name: Node(n.name, n.lag_slots) for n in self.settings.nodes}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> SolanaRpcSimulator:
        handler = type("Handler", (_Handler,), {"sim": self})
        with ports.listening(self.settings.host, self.settings.port, "port"):
            self._server = ThreadingHTTPServer((self.settings.host, self.settings.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="solana-rpc-sim", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    def url(self, node: str = "primary") -> str:
        return f"http://{self.settings.host}:{self.port}/{'' if node == 'primary' else node}"

    def serve_forever(self) -> None:
        self.start()
        assert self._thread is not None
        self._thread.join()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- control
    def set_fault(self, node: str, mode: str = "none", methods: list[str] | None = None,
                  **kwargs: Any) -> None:
        if node not in self.nodes:
            raise KeyError(f"unknown node {node!r}")
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r} (one of {', '.join(FAULT_MODES)})")
        fault = Fault(mode=mode, methods=frozenset(methods or ()), **kwargs)
        with self._lock:
            self.nodes[node].fault = fault

    def set_lag(self, node: str, lag_slots: int) -> None:
        with self._lock:
            self.nodes[node].lag_slots = lag_slots

    def control(self, doc: Any) -> dict:
        """Apply a JSON control document; raises ValueError/KeyError/TypeError on bad input."""
        if not isinstance(doc, dict):
            raise ValueError("control body must be a JSON object")
        doc = dict(doc)
        node = doc.pop("node", "primary")
        if "balance" in doc:
            bal = doc.pop("balance")
            if not isinstance(bal, dict) or not isinstance(bal.get("lamports"), int):
                raise ValueError("balance must be {address, lamports}")
            self.chain.set_balance(_pubkey(bal.get("address")), bal["lamports"])
        if "lag_slots" in doc:
            lag = doc.pop("lag_slots")
            if not isinstance(lag, int) or lag < 0:
                raise ValueError("lag_slots must be a non-negative integer")
            self.set_lag(node, lag)
        if "mode" in doc:
            self.set_fault(node, **doc)
        elif doc:
            raise ValueError(f"unknown control keys: {', '.join(sorted(doc))}")
        return self.status()

    def status(self) -> dict:
        with self._lock:
            return {"slot": self.chain.slot(),
                    "nodes": {n.name: {"lag_slots": n.lag_slots, "fault": n.fault.mode,
                                       "requests": n.requests} for n in self.nodes.values()}}

    # -- JSON-RPC
    def answer(self, node: Node, request: Any) -> dict | None:
        """One JSON-RPC request object -> response object (None for a notification)."""
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" \
                or not isinstance(request.get("method"), str):
            return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"},
                    "id": None}
        req_id = request.get("id")
        try:
            result = self.call(node, request["method"], request.get("params", []))
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.body(), "id": req_id}
        return {"jsonrpc": "2.0", "result": result, "id": req_id}

    def call(self, node: Node, method: str, params: Any) -> Any:
        if not isinstance(params, list):
            raise RpcError(-32602, "Invalid params: expected an array")
        fault = node.fault
        if fault.applies_to(method):
            if fault.mode == "behind" or (fault.mode == "behind_no_data" and method == "getHealth"):
                data = {"numSlotsBehind": fault.slots_behind} if fault.mode == "behind" else None
                raise RpcError(-32005, f"Node is behind by {fault.slots_behind} slots", data)
            if fault.mode == "error":
                raise RpcError(fault.code, fault.message, fault.data)
        slot = self.chain.slot() - node.lag_slots
        context = {"slot": slot, "apiVersion": API_VERSION}
        if method == "getHealth":
            return "ok"
        if method == "getSlot":
            return slot
        if method == "getBlockHeight":
            return self.chain.block_height(slot)
        if method == "getEpochInfo":
            return self.chain.epoch_info(slot)
        if method == "getVersion":
            return {"solana-core": API_VERSION, "feature-set": 3469865029}
        if method == "getRecentPerformanceSamples":
            limit = params[0] if params else 720
            if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 720:
                raise RpcError(-32602, "Invalid limit; max 720")
            return self.chain.performance_samples(slot, limit)
        if method == "getBalance":
            if not params:
                raise RpcError(-32602, "Invalid params: missing pubkey")
            return {"context": context, "value": self.chain.balance(_pubkey(params[0]))}
        if method == "getSignaturesForAddress":
            if not params:
                raise RpcError(-32602, "Invalid params: missing pubkey")
            address = _pubkey(params[0])
            return self.chain.signatures_for_address(address, _config(params, 1))
        raise RpcError(-32601, "Method not found")


class _Handler(BaseHTTPRequestHandler):
    sim: SolanaRpcSimulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: tests hammer it
        log.debug(fmt, *args)

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(doc).encode(), headers=headers)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path in ("/healthz", "/control"):
            self._json(200, self.sim.status())
        else:
            self._json(404, {"error": "POST JSON-RPC to / or /<node>"})

    def _body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(411, {"error": "Content-Length required"})
            return None
        if not 0 <= length <= 1_000_000:
            self._json(413, {"error": "body too large"})
            return None
        return self.rfile.read(length)

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        if body is None:
            return
        path = self.path.strip("/")
        if path == "control":
            try:
                self._json(200, self.sim.control(json.loads(body)))
            except (ValueError, KeyError, TypeError, RpcError) as exc:
                self._json(400, {"error": str(exc)})
            return
        node = self.sim.nodes.get(path or "primary")
        if node is None:
            self._json(404, {"error": f"no node {path!r}"})
            return
        node.requests += 1
        try:
            request = json.loads(body)
        except ValueError:
            self._json(200, {"jsonrpc": "2.0", "id": None,
                             "error": {"code": -32700, "message": "Parse error"}})
            return
        methods = [r.get("method") for r in (request if isinstance(request, list) else [request])
                   if isinstance(r, dict)]
        fault = node.fault
        if any(fault.applies_to(m) for m in methods) or (fault.mode != "none" and not methods):
            if self._transport_fault(fault):
                return
        if isinstance(request, list):
            answers = [a for a in (self.sim.answer(node, r) for r in request) if a is not None]
            self._json(200, answers)
        else:
            self._json(200, self.sim.answer(node, request))

    def _transport_fault(self, fault: Fault) -> bool:
        """Faults below JSON-RPC; True when the answer has been sent (or refused)."""
        if fault.mode == "slow":
            time.sleep(fault.delay)
            return False
        if fault.mode == "rate_limit":
            error = {"code": 429, "message": "Too many requests for a specific RPC call"}
            self._json(429, {"jsonrpc": "2.0", "id": None, "error": error},
                       headers={"Retry-After": str(fault.retry_after)})
            return True
        if fault.mode == "malformed":
            self._send(200, b'{"jsonrpc": "2.0", "result": {"context": ', "application/json")
            return True
        if fault.mode == "http_error":
            self._send(fault.status, b"<html><body>upstream unavailable</body></html>",
                       "text/html")
            return True
        if fault.mode == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        return False


def main(settings: SolanaSimSettings) -> int:
    sim = SolanaRpcSimulator(settings)
    sim.start()
    log.info("solana rpc simulator listening",
             extra={"url": sim.url(), "nodes": [n for n in sim.nodes]})
    try:
        assert sim._thread is not None
        while sim._thread.is_alive():
            sim._thread.join(1.0)
    finally:
        sim.stop()
    return 0
