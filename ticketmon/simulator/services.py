"""Simulated platform services: /health with dependencies, /metrics from simulated traffic.

Each service listens on its own loopback port and exposes what the real platform's
services expose: `http_requests_total{service,route,code}` and the
`http_request_duration_seconds{service,route}` histogram, fed by a background
traffic generator, and a `/health` JSON document with its dependencies.

Each also exposes authentication and rate-limit metrics (auth_traffic.py): login
attempts by result, lockouts, token validations, 429 rejections per route, and bounded
gauges of the recent failed logins, from a low baseline of ordinary logins.

A control endpoint (default 127.0.0.1:10200) switches a service's mode or starts an
attack on it, for the stack's scenarios:
    GET  /control                   -> {"checkout": "ok", ...}
    GET  /control/<service>         -> {"service": …, "mode": …, "attack": …}
    POST /control/<service>  {"mode": "ok|degraded|slow|failing|down"} and/or
                             {"attack": "none|brute-force|credential-stuffing|rate-limit-storm"}
Modes: ok; degraded (health says degraded, one dependency down, 3 % errors, 2x latency);
slow (health answers after 2.5 s, 10x latency); failing (health 503 unhealthy, 30 %
5xx); down (the port stays bound but every connection is reset as soon as it is
accepted, /metrics gone too: nothing else can take the port and look healthy in its place).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import requests
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import Field, model_validator

from ticketmon.core import logs, ports
from ticketmon.core.config import Settings, load
from ticketmon.simulator.auth_traffic import ATTACKS, AuthTraffic

log = logging.getLogger("ticketmon.simulator.services")
Mode = Literal["ok", "degraded", "slow", "failing", "down"]
MODES = ("ok", "degraded", "slow", "failing", "down")
# "ok" stays well inside every SLO in rules/slo/slos.yaml (the strictest is 99.9 %).
ERROR_RATIO = {"ok": 0.0003, "degraded": 0.03, "slow": 0.01, "failing": 0.3, "down": 0.0}
LATENCY_FACTOR = {"ok": 1.0, "degraded": 2.0, "slow": 10.0, "failing": 1.5, "down": 1.0}
SLOW_HEALTH_SECONDS = 2.5


class ServiceSpec(Settings):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    port: int = Field(ge=0, le=65535)
    routes: list[str] = Field(min_length=1)
    dependencies: list[str] = []
    requests_per_second: float = Field(default=10.0, ge=0, le=10_000)
    median_latency_seconds: float = Field(default=0.04, gt=0)
    logins_per_second: float = Field(default=0.0, ge=0, le=1000)  # ordinary logins


def _default_services() -> list[ServiceSpec]:
    return [
        ServiceSpec(name="checkout", port=10201, routes=["/checkout", "/cart"],
                    dependencies=["payments", "inventory", "postgres"], requests_per_second=15,
                    logins_per_second=2),
        ServiceSpec(name="payments", port=10202, routes=["/payments", "/refunds"],
                    dependencies=["postgres", "stripe"], requests_per_second=8),
        ServiceSpec(name="inventory", port=10203, routes=["/events", "/seats"],
                    dependencies=["postgres", "redis"], requests_per_second=25),
        ServiceSpec(name="marketplace", port=10204, routes=["/listings", "/offers"],
                    dependencies=["postgres", "solana"], requests_per_second=6,
                    logins_per_second=1),
    ]


class ServicesSettings(Settings):
    host: str = "127.0.0.1"
    control_port: int = Field(default=10200, ge=0, le=65535)
    tick_seconds: float = Field(default=0.25, gt=0, le=10)
    # the window of recent failed logins behind the auth_failing_*/auth_top_* gauges and
    # lockouts (a real service's lockout window); the main job uses 60 s
    auth_window_seconds: float = Field(default=300, ge=10, le=86_400)
    services: list[ServiceSpec] = Field(default_factory=_default_services)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _unique(self) -> ServicesSettings:
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"services: names repeat: {names}")
        ports = [s.port for s in self.services if s.port] + [self.control_port]
        if len(set(ports)) != len(ports):
            raise ValueError("services: ports repeat (or equal control_port)")
        return self


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes,
           content_type: str = "application/json") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _ServiceServer(_Server):
    """Keeps its port while the service is down, resetting each connection it accepts."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 is_down: Callable[[], bool]) -> None:
        super().__init__(address, handler)
        self.is_down = is_down

    def verify_request(self, request, client_address) -> bool:
        if not self.is_down():
            return True
        # linger 0: close sends RST, so a client sees "connection reset", never a reply
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.close()
        return False


class SimulatedService:
    def __init__(self, spec: ServiceSpec, host: str, rng: random.Random,
                 auth_window_seconds: float = 300) -> None:
        self.spec = spec
        self.host = host
        self.rng = rng
        self.mode: str = "ok"
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "Requests served.", ["service", "route", "code"],
                                registry=self.registry)
        self.latency = Histogram("http_request_duration_seconds", "Request latency.",
                                 ["service", "route"], registry=self.registry)
        for route in spec.routes:  # series exist from the start, so rates are never absent
            self.latency.labels(spec.name, route)
            for code in ("200", "500"):
                self.requests.labels(spec.name, route, code)
        self.auth = AuthTraffic(spec.name, spec.routes, self.registry, rng,
                                spec.logins_per_second, auth_window_seconds)
        self.server: _ServiceServer | None = None
        self.port = spec.port

    # -- HTTP ---------------------------------------------------------------------------

    def health(self) -> tuple[int, dict]:
        deps = {d: "up" for d in self.spec.dependencies}
        if self.mode == "degraded" and deps:
            deps[self.spec.dependencies[-1]] = "down"
            return 200, {"status": "degraded", "service": self.spec.name, "dependencies": deps}
        if self.mode == "failing":
            deps = {d: {"status": "down", "error": "connection pool exhausted"} for d in deps}
            return 503, {"status": "unhealthy", "service": self.spec.name, "dependencies": deps}
        return 200, {"status": "ok", "service": self.spec.name, "dependencies": deps}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(_Quiet):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                if self.path == "/health":
                    if service.mode == "slow":
                        time.sleep(SLOW_HEALTH_SECONDS)
                    status, doc = service.health()
                    _reply(self, status, json.dumps(doc).encode())
                elif self.path == "/metrics":
                    _reply(self, 200, generate_latest(service.registry), CONTENT_TYPE_PLAIN_0_0_4)
                else:
                    _reply(self, 404, b'{"error": "not found"}')

        return Handler

    def listen(self) -> None:
        with ports.listening(self.host, self.port, f"port for service {self.spec.name}"):
            self.server = _ServiceServer((self.host, self.port), self.handler(),
                                         lambda: self.mode == "down")
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True,
                         name=f"service-{self.spec.name}").start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        log.info("service mode", extra={"service": self.spec.name, "mode": mode})

    # -- traffic ------------------------------------------------------------------------

    def simulate(self, seconds: float) -> None:
        if self.mode == "down":
            return
        expected = self.spec.requests_per_second * seconds
        count = int(expected) + (self.rng.random() < expected - int(expected))
        errors, factor = ERROR_RATIO[self.mode], LATENCY_FACTOR[self.mode]
        served = dict.fromkeys(self.spec.routes, 0)
        for _ in range(count):
            route = self.rng.choice(self.spec.routes)
            code = "500" if self.rng.random() < errors else "200"
            latency = self.rng.lognormvariate(0, 0.5) * self.spec.median_latency_seconds * factor
            self.requests.labels(self.spec.name, route, code).inc()
            self.latency.labels(self.spec.name, route).observe(latency)
            served[route] += 1
        for route, n in served.items():
            self.auth.served(route, n)
        self.auth.simulate(time.monotonic(), seconds)


class Platform:
    """All services, their traffic, and the control endpoint."""

    def __init__(self, settings: ServicesSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        rng = rng or random.Random()
        self.services = {s.name: SimulatedService(s, settings.host, rng,
                                                  settings.auth_window_seconds)
                         for s in settings.services}
        self.control: _Server | None = None
        self._stop = threading.Event()

    def control_handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(_Quiet):
            def do_GET(self) -> None:  # noqa: N802
                name = self.path.removeprefix("/control/")
                if self.path in ("/control", "/control/"):
                    _reply(self, 200, json.dumps(platform.modes()).encode())
                elif self.path.startswith("/control/") and name in platform.services:
                    service = platform.services[name]
                    _reply(self, 200, json.dumps({"service": name, "mode": service.mode,
                                                  "attack": service.auth.attack}).encode())
                elif self.path == "/healthz":
                    _reply(self, 200, b'{"status": "ok"}')
                else:
                    _reply(self, 404, b'{"error": "not found"}')

            def do_POST(self) -> None:  # noqa: N802
                status, doc = platform.handle_control(self.path, self._body())
                _reply(self, status, json.dumps(doc).encode())

            def _body(self) -> bytes:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > 10_000:
                    return b"\x00invalid"
                return self.rfile.read(length)

        return Handler

    def handle_control(self, path: str, body: bytes) -> tuple[int, dict]:
        prefix = "/control/"
        if not path.startswith(prefix):
            return 404, {"error": "not found"}
        name = path[len(prefix):]
        if name not in self.services:
            return 404, {"error": f"no service named {name!r}", "services": list(self.services)}
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": "body is not JSON"}
        if not isinstance(doc, dict) or not doc.keys() & {"mode", "attack"} \
                or doc.keys() - {"mode", "attack"}:
            return 400, {"error": 'body must be {"mode": …} and/or {"attack": …}, nothing else'}
        mode, attack = doc.get("mode"), doc.get("attack")
        if "mode" in doc and mode not in MODES:
            return 400, {"error": f"mode must be one of {list(MODES)}"}
        if "attack" in doc and attack not in ATTACKS:
            return 400, {"error": f"attack must be one of {list(ATTACKS)}"}
        service = self.services[name]
        if "mode" in doc:
            service.set_mode(mode)
        if "attack" in doc:
            service.auth.attack = attack
            log.info("service attack", extra={"service": name, "attack": attack})
        return 200, {"service": name, "mode": service.mode, "attack": service.auth.attack}

    def modes(self) -> dict[str, str]:
        return {name: s.mode for name, s in self.services.items()}

    def urls(self) -> dict[str, str]:
        return {name: f"http://{self.settings.host}:{s.port}" for name, s in self.services.items()}

    def start(self) -> None:
        for service in self.services.values():
            service.listen()
        with ports.listening(self.settings.host, self.settings.control_port, "control_port"):
            self.control = _Server((self.settings.host, self.settings.control_port),
                                   self.control_handler())
        threading.Thread(target=self.control.serve_forever, daemon=True,
                         name="services-control").start()
        threading.Thread(target=self._traffic, daemon=True, name="services-traffic").start()

    @property
    def control_url(self) -> str:
        assert self.control is not None
        return f"http://{self.settings.host}:{self.control.server_address[1]}"

    def _traffic(self) -> None:
        tick = self.settings.tick_seconds
        while not self._stop.wait(tick):
            for service in self.services.values():
                service.simulate(tick)

    def stop(self) -> None:
        self._stop.set()
        if self.control is not None:
            self.control.shutdown()
            self.control.server_close()
        for service in self.services.values():
            service.close()


def set_mode(control_url: str, service: str, mode: str, timeout: float = 5.0) -> dict:
    """Client side of the control endpoint, for scenarios: raises on a refused change."""
    return _control(control_url, service, {"mode": mode}, timeout)


def set_attack(control_url: str, service: str, attack: str, timeout: float = 5.0) -> dict:
    return _control(control_url, service, {"attack": attack}, timeout)


def _control(control_url: str, service: str, body: dict, timeout: float) -> dict:
    resp = requests.post(f"{control_url}/control/{service}", json=body, timeout=timeout)
    if resp.status_code != 200:
        raise RuntimeError(f"cannot set {service} to {body}: {resp.text}")
    return resp.json()


def serve(settings: ServicesSettings, on_start: Callable[[Platform], None] | None = None) -> int:
    platform = Platform(settings)
    finished = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: finished.set())
    platform.start()
    log.info("simulated services listening",
             extra={"services": platform.urls(), "control": platform.control_url})
    if on_start:
        on_start(platform)
    while not finished.wait(1.0):
        pass
    platform.stop()
    return 0


def run(args) -> int:
    settings = load(ServicesSettings, args.config)
    logs.setup(getattr(args, "log_level", None) or settings.log_level)
    return serve(settings)
