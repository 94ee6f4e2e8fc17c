"""SLA reports as code: YAML definitions, figures from Prometheus and the incident store,
charts, HTML/Markdown/JSON rendering, and the worker's schedule."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPORTS_DIR = REPO / "reports"
