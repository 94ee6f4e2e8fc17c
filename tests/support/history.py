"""A real Prometheus holding days of backfilled history (promtool create-blocks-from).

Blocks are written as one long block (--max-block-duration) because 2 h blocks take
fifteen times longer to write and load; retention is raised so they are not dropped.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ticketmon.servers.process import find_binary
from ticketmon.servers.prometheus import Prometheus


class HistoryPrometheus(Prometheus):
    def arguments(self, config_file: Path, data: Path) -> list[str]:
        args = super().arguments(config_file, data)
        return [a if not a.startswith("--storage.tsdb.retention.time") else
                "--storage.tsdb.retention.time=60d" for a in args]


def backfilled_prometheus(work: Path, openmetrics: str, config: str | None = None,
                          rules: dict[str, str] | None = None) -> Prometheus:
    source = work / "history.om"
    source.write_text(openmetrics)
    data = work / "prometheus-data"
    data.mkdir(parents=True, exist_ok=True)
    promtool = find_binary("promtool", "PROMTOOL", "prometheus")
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                    "--max-block-duration=2400h", str(source), str(data)],
                   check=True, capture_output=True, timeout=300)
    source.unlink()
    for name, text in (rules or {}).items():
        (work / name).write_text(text)
    config_file = work / "prometheus.yml"
    config_file.write_text(config or "global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    return HistoryPrometheus(config_file, work)


def minute_end() -> int:
    """A history's last sample time: a whole minute, two minutes ago."""
    return (int(time.time()) // 60 - 2) * 60
