"""A real single-node Alertmanager on a free loopback port with temporary storage."""

from __future__ import annotations

from pathlib import Path

from ticketmon.servers.process import ManagedProcess, find_binary, free_port


class Alertmanager:
    def __init__(self, config_file: Path, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = find_binary("prometheus-alertmanager", "ALERTMANAGER", "prometheus-alertmanager")
        data = workdir / "alertmanager-data"
        data.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            "alertmanager",
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                "--cluster.listen-address=",
            ],
            workdir / "alertmanager.log",
        )
        self.process.wait_http(f"{self.url}/-/ready")

    def stop(self) -> None:
        self.process.stop()
