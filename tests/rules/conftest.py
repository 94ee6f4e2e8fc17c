"""A throw-away copy of rules/ (and the runbooks it links) that a test may break."""

import shutil
from pathlib import Path

import pytest

from ticketmon.rules import RULES_DIR


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target
