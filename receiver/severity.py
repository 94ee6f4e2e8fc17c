"""Severity order: critical > error > warning > info > none; unknown values rank lowest.

Unknown values are kept as given (never rejected): a team's own `severity="page"`
still shows up, it just never outranks a known level.
"""

from __future__ import annotations

RANKS = {"critical": 5, "error": 4, "warning": 3, "info": 2, "none": 1}
KNOWN = tuple(RANKS)
DEFAULT = "none"


def rank(severity: str | None) -> int:
    return RANKS.get((severity or "").lower(), 0)


def highest(severities) -> str:
    """The highest of some severities (the first seen wins among equals)."""
    best, best_rank = None, -1
    for sev in severities:
        r = rank(sev)
        if r > best_rank:
            best, best_rank = sev, r
    return DEFAULT if best is None else best
