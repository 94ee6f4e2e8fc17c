"""A real Prometheus on a free loopback port with temporary storage."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from ticketmon.servers.process import LoopbackServer, ServerError


class Prometheus(LoopbackServer):
    name = "prometheus"
    binary = "prometheus"
    env_var = "PROMETHEUS"
    apt_package = "prometheus"

    def arguments(self, config_file: Path, data: Path) -> list[str]:
        return [
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            "--storage.tsdb.retention.time=1d",
        ]

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

