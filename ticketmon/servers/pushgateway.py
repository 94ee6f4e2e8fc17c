"""A real Prometheus Pushgateway on a free loopback port, its state persisted under a
work directory (so a restart keeps the last success of jobs that run once a night)."""

from __future__ import annotations

from pathlib import Path

from ticketmon.servers.process import LoopbackServer


class Pushgateway(LoopbackServer):
    name = "pushgateway"
    binary = "prometheus-pushgateway"
    env_var = "PUSHGATEWAY"
    apt_package = "prometheus-pushgateway"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        super().__init__(None, workdir, port)

    def arguments(self, config_file: Path | None, data: Path) -> list[str]:
        return [
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            f"--persistence.file={data / 'pushgateway.data'}",
            "--persistence.interval=1m",
        ]
