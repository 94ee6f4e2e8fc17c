"""The distribution ships every package: a folder of modules without __init__.py is a
namespace package that setuptools' find_packages leaves out of a non-editable install
(the Docker image), though it imports fine from a checkout."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_has_an_init() -> None:
    missing = [str(d.relative_to(REPO)) for root in ("ticketmon", "receiver", "exporters")
               for d in [REPO / root, *(REPO / root).rglob("*")]
               if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py"))
               and not (d / "__init__.py").exists()]
    assert not missing, f"add __init__.py to: {missing}"


def test_exporters_and_the_core_never_import_the_receiver() -> None:
    """Shared pieces live in ticketmon.core; an exporter that imported `receiver` would
    drag the receiver's settings, store and Flask app into every exporter process."""
    import ast

    offenders = []
    for root in ("exporters", "ticketmon/core"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n == "receiver" or n.startswith("receiver.") for n in names):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, offenders


def test_the_lock_pins_every_declared_requirement_within_its_range():
    """requirements.lock (what ./dev installs and .ci/audit.py audits) covers pyproject."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    lines = (root / "requirements.lock").read_text().splitlines()
    lock = {canonicalize_name(n): Version(v)
            for n, v in (line.split("==", 1) for line in lines if "==" in line)}
    for raw in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in lock, f"{name} is not in requirements.lock: run .ci/lock.py"
        assert req.specifier.contains(lock[name], prereleases=True), \
            f"{name}=={lock[name]} in the lock does not satisfy {raw}"
