"""The on-call tests reuse the escalation tests' sink fixtures and worker helpers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "escalation"))
