"""Regenerate rules/generated/ from the SLO spec, or check the committed files match."""

from __future__ import annotations

import difflib
from pathlib import Path

from ticketmon.rules import slo


def outputs(spec_file: Path | None = None) -> dict[Path, str]:
    """Every generated file and its fresh content."""
    return {slo.OUTPUT_FILE: slo.render(slo.generate(slo.load_spec(spec_file)))}


def build(check: bool = False, spec_file: Path | None = None,
          output_dir: Path | None = None) -> list[str]:
    """Write the generated files, or with check=True return a unified diff per stale file."""
    problems: list[str] = []
    for path, fresh in outputs(spec_file).items():
        if output_dir is not None:
            path = output_dir / path.name
        current = path.read_text() if path.exists() else None
        if check:
            if current != fresh:
                diff = difflib.unified_diff((current or "").splitlines(True),
                                            fresh.splitlines(True),
                                            f"{path} (committed)", f"{path} (fresh build)")
                problems.append("".join(diff) or f"{path} is missing")
        elif current != fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(fresh)
    return problems
