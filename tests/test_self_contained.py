"""A clone of the repository is all a user has: no code may read a path outside it.

Two nets: this static scan of every Python and shell file (tests, benchmarks, the
packages, the scripts), and the audit hook in tests/conftest.py that refuses any file
opened during the test run in the team's reference folder beside the clone.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# a path that climbs out of the clone, or names the team's reference folder beside it
OUTSIDE_TEXT = re.compile(r"\.\./|(^|[/\"'])shared/|/work/")


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                          *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in out.stdout.splitlines() if (REPO / line).is_file()]


def _ups(node: ast.AST) -> int | None:
    """How many folders `Path(__file__)…` climbs, or None if the expression is not one."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "parents" and isinstance(node.slice, ast.Constant):
        inner = _ups(node.value.value)
        return None if inner is None else inner + node.slice.value + 1
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _ups(node.value)
        return None if inner is None else inner + 1
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in ("resolve", "absolute"):
        return _ups(node.func.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "Path" and node.args \
            and isinstance(node.args[0], ast.Name) and node.args[0].id == "__file__":
        return 0
    return None


def escapes(path: Path) -> list[str]:
    """Every place in one Python file that reaches above the clone's root."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        ups = _ups(node)
        if ups is not None:
            target = path
            for _ in range(ups):
                target = target.parent
            if not target.is_relative_to(REPO):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} climbs to {target}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and OUTSIDE_TEXT.search(node.value) and not _is_docstring_like(node.value):
            found.append(f"{path.relative_to(REPO)}:{node.lineno} names {node.value!r}")
    return found


def _is_docstring_like(text: str) -> bool:
    return "\n" in text or " " in text.strip()


def test_no_python_file_reads_outside_the_clone() -> None:
    files = [f for f in tracked("*.py") if f != Path(__file__)]  # not the patterns here
    assert len(files) > 100  # the scan saw the project
    problems = [p for f in files for p in escapes(f)]
    assert not problems, "\n".join(problems)


def test_no_script_reads_outside_the_clone() -> None:
    scripts = tracked("*.sh", "dev", ".ci/run")
    assert any(s.name == "dev" for s in scripts)
    problems = [f"{s.relative_to(REPO)}: {line.strip()}" for s in scripts
                for line in s.read_text().splitlines()
                if OUTSIDE_TEXT.search(line) and not line.lstrip().startswith("#")]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("snippet, bad", [
    ('X = Path(__file__).resolve().parents[9] / "data"', True),
    ('X = Path(__file__).resolve().parent.parent.parent.parent.parent / "x"', True),
    ("X = \"" + ".." + "/" + "shared/payloads\"", True),
    ('X = Path(__file__).resolve().parents[0] / "fixtures"', False),
])
def test_the_scan_catches_escapes(snippet: str, bad: bool) -> None:
    """The scan itself can fail: a file placed in tests/ that climbs out is reported."""
    probe = REPO / "tests" / "_escape_probe.py"
    probe.write_text(snippet + "\n")
    try:
        assert bool(escapes(probe)) is bad
    finally:
        probe.unlink()


def test_the_audit_hook_refuses_reads_beside_the_clone() -> None:
    outside = Path(os.path.dirname(REPO), "shared", "payloads", "anything.json")
    with pytest.raises(PermissionError, match="outside the repository"):
        outside.open()
