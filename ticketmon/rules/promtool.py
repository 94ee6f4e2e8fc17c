"""Run promtool on the rule files and their unit tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ticketmon.rules import RULES_DIR

INSTALL_HINT = ("promtool not found: install it with `apt-get install prometheus` "
                "(Debian/Ubuntu) or download Prometheus from https://prometheus.io/download/, "
                "or point $PROMTOOL at the binary")


class PromtoolMissing(RuntimeError):
    pass


def find_promtool() -> str:
    candidate = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not candidate or not (Path(candidate).is_file() or shutil.which(candidate)):
        raise PromtoolMissing(INSTALL_HINT)
    return candidate


def rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    """The files Prometheus loads: rules/*.yml and rules/generated/*.yml."""
    return sorted(rules_dir.glob("*.yml")) + sorted((rules_dir / "generated").glob("*.yml"))


def test_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    return sorted((rules_dir / "tests").glob("*.yml"))


def run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([find_promtool(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def check_rules(files: list[Path]) -> subprocess.CompletedProcess:
    return run(["check", "rules", *map(str, files)])


def test_rules(files: list[Path]) -> subprocess.CompletedProcess:
    return run(["test", "rules", *map(str, files)])


def check_metrics(text: str) -> subprocess.CompletedProcess:
    """`promtool check metrics` on an exposition in the text format (empty output = clean)."""
    return subprocess.run([find_promtool(), "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
