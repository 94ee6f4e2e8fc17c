"""`promtool check metrics` over an exposition, for tests and the `--check` flags."""

from __future__ import annotations

import subprocess

from ticketmon.servers.process import find_binary


def promtool_check_metrics(text: bytes | str) -> str:
    """Everything promtool printed about the text format given (empty means clean)."""
    data = text.encode() if isinstance(text, str) else text
    result = subprocess.run(
        [find_binary("promtool", "PROMTOOL", "prometheus"), "check", "metrics"],
        input=data, capture_output=True, timeout=60,
    )
    out = (result.stdout + result.stderr).decode(errors="replace").strip()
    if result.returncode != 0 and not out:
        out = f"promtool exited with {result.returncode}"
    return out
