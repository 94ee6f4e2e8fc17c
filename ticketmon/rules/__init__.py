"""Rules as code: the metric catalog, promtool wrappers, lint and the SLO rule generator."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"
