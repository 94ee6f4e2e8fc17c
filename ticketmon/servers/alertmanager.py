"""A real single-node Alertmanager on a free loopback port with temporary storage."""

from __future__ import annotations

from pathlib import Path

from ticketmon.servers.process import LoopbackServer


class Alertmanager(LoopbackServer):
    name = "alertmanager"
    binary = "prometheus-alertmanager"
    env_var = "ALERTMANAGER"
    apt_package = "prometheus-alertmanager"

    def arguments(self, config_file: Path, data: Path) -> list[str]:
        return [
            f"--config.file={config_file}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--cluster.listen-address=",  # a single node: no gossip
        ]
