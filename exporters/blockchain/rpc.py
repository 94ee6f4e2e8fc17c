"""One Solana RPC endpoint seen through the `solana` client: timed, classified, backed off.

Every call goes through `Endpoint.call`, which bounds it with the endpoint's timeout,
records its duration and, on failure, the JSON-RPC error code (or "429", "503",
"timeout", "transport", "malformed") before raising `RpcFailure`. Failures of the
transport (timeouts, HTTP errors, dropped connections, unreadable bodies) pause the
endpoint: Retry-After for a 429, exponential otherwise, so a sick provider is not
hammered and never delays the healthy ones.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeVar

import httpx2
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.jsonrpc import JsonRpcRequest, SolanaJsonRpcError

T = TypeVar("T")

class Instruments:
    """Live call instruments, one set per collector (not registered: the snapshot carries them)."""

    def __init__(self) -> None:
        self.duration = Histogram(
            "ticketmon_solana_rpc_request_duration_seconds",
            "Duration of Solana JSON-RPC calls, failed ones included.",
            ["endpoint", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=None,
        )
        self.errors = Counter(
            "ticketmon_solana_rpc_errors",
            "Failed Solana JSON-RPC calls by JSON-RPC error code, HTTP status, timeout, "
            "transport or malformed answer.",
            ["endpoint", "method", "code"],
            registry=None,
        )

    def families(self) -> list:
        return [*self.duration.collect(), *self.errors.collect()]


class RpcFailure(Exception):
    """A call that produced no usable result; `code` is the errors_total label."""

    def __init__(self, code: str, detail: str, transport: bool) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.transport = transport


class EndpointPaused(RpcFailure):
    def __init__(self, until: float) -> None:
        super().__init__("paused", f"backing off for {until - time.monotonic():.1f}s", True)


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date or garbage: fall back to exponential backoff


class Endpoint:
    """Calls to one endpoint; created per collection (the client is bound to its event loop)."""

    def __init__(self, name: str, url: str, timeout: float, state: BackoffState,
                 instruments: Instruments) -> None:
        self.name = name
        self.instruments = instruments
        self.timeout = timeout
        self.state = state
        self.client = AsyncClient(url, timeout=timeout, max_transport_retries=0)

    async def close(self) -> None:
        await self.client.close()

    async def call(self, method: str, params: list | None, result_type: Any) -> Any:
        if self.state.paused():
            raise EndpointPaused(self.state.paused_until)
        request = JsonRpcRequest(method=method, params=params or None)
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(
                self.client.send_rpc_request(request, result_type), self.timeout
            )
        except SolanaJsonRpcError as exc:
            failure = RpcFailure(str(exc.code), exc.message, transport=False)
        except TimeoutError:
            failure = RpcFailure("timeout", f"no answer within {self.timeout:g}s", True)
        except SolanaRpcException as exc:
            failure = self._transport_failure(exc.__cause__ or exc)
        except (ValidationError, ValueError) as exc:
            failure = RpcFailure("malformed", str(exc).splitlines()[0], transport=True)
        else:
            failure = None
        self.instruments.duration.labels(self.name, method).observe(
            time.perf_counter() - started)
        if failure is None:
            self.state.succeeded()
            return result
        self.instruments.errors.labels(self.name, method, failure.code).inc()
        if failure.transport:
            self.state.failed(getattr(failure, "retry_after", None))
        raise failure

    @staticmethod
    def _transport_failure(cause: BaseException) -> RpcFailure:
        if isinstance(cause, httpx2.HTTPStatusError):
            status = cause.response.status_code
            failure = RpcFailure(str(status), f"HTTP {status}", transport=True)
            if status == 429:
                failure.retry_after = _retry_after(cause.response)  # type: ignore[attr-defined]
            return failure
        if isinstance(cause, httpx2.TimeoutException):
            return RpcFailure("timeout", type(cause).__name__, transport=True)
        return RpcFailure("transport", f"{type(cause).__name__}: {cause}", transport=True)


class BackoffState:
    """Survives across collections: when an endpoint may be called again."""

    def __init__(self, base: float, cap: float, clock=time.monotonic) -> None:
        self.base, self.cap, self.clock = base, cap, clock
        self.failures = 0
        self.paused_until = 0.0

    def paused(self) -> bool:
        return self.clock() < self.paused_until

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, retry_after: float | None = None) -> None:
        self.failures += 1
        if retry_after is not None:
            pause = min(retry_after, self.cap)
        elif self.failures == 1:
            pause = 0.0  # one blip: try again at the next collection
        else:
            pause = min(self.base * 2 ** (self.failures - 2), self.cap)
        self.paused_until = self.clock() + pause
