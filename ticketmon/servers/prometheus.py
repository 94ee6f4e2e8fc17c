"""A real Prometheus on a free loopback port with temporary storage."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from ticketmon.servers.process import ManagedProcess, ServerError, find_binary, free_port


class Prometheus:
    def __init__(self, config_file: Path, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = find_binary("prometheus", "PROMETHEUS", "prometheus")
        data = workdir / "prometheus-data"
        data.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "prometheus",
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
                "--storage.tsdb.retention.time=1d",
            ],
            workdir / "prometheus.log",
        )
        self.process.wait_http(f"{self.url}/-/ready")

    def reload(self) -> None:
        requests.post(f"{self.url}/-/reload", timeout=10).raise_for_status()

    def query(self, expr: str) -> list[dict]:
        resp = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise ServerError(f"query {expr!r} failed: {body.get('error')}")
        return body["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict]:
        """Poll an instant query until it returns at least one sample."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.25)
        raise ServerError(f"no data for {expr!r} after {timeout}s")

    def stop(self) -> None:
        self.process.stop()
