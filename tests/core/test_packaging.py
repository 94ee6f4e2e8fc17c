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
