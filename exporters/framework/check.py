"""`ticketmon exporter NAME --check`: the one output shape every exporter prints.

One line per collector on stdout, `NAME: ok` or `NAME: FAILED: reason` (the reason on
one line, secrets redacted), then exit 0 if all were ok, 1 if any failed.
"""

from __future__ import annotations

from exporters.framework.server import Exporter
from ticketmon.core import redact


def outcome_line(name: str, error: str | None) -> str:
    """`name: ok`, or `name: FAILED: reason` with the reason folded onto one line."""
    if not error:
        return f"{name}: ok"
    return f"{name}: FAILED: {' '.join(redact.text(error).split())}"


def check(exporter: Exporter) -> int:
    """Run each collector once and print its outcome line; 1 if any failed."""
    failed = 0
    for collector in exporter.collectors:
        ok = collector.run_once()
        failed += not ok
        print(outcome_line(collector.name, None if ok else collector.health.last_error or "failed"))
        collector.close()
    return 1 if failed else 0
