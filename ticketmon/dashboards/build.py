"""Build dashboards/*.json from jsonnet/mixin.libsonnet through the jsonnet Python binding.

Output is deterministic (sorted keys, fixed indentation), so the committed JSON can be
compared byte for byte with a fresh build.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from ticketmon.dashboards import DASHBOARDS_DIR, JSONNET_DIR


class BuildError(RuntimeError):
    """The jsonnet sources do not evaluate."""


def evaluate(jsonnet_dir: Path = JSONNET_DIR) -> dict[str, dict]:
    """File name -> dashboard, as the mixin's grafanaDashboards defines them."""
    import _jsonnet

    snippet = '(import "mixin.libsonnet").grafanaDashboards'
    try:
        text = _jsonnet.evaluate_snippet("build", snippet, jpathdir=[str(jsonnet_dir)])
    except RuntimeError as exc:
        raise BuildError(f"jsonnet evaluation failed: {exc}") from exc
    return json.loads(text)


def render(dashboard: dict) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build(check: bool = False, jsonnet_dir: Path = JSONNET_DIR,
          out_dir: Path = DASHBOARDS_DIR, boards: dict[str, dict] | None = None) -> list[str]:
    """Write every dashboard (or, with check, report each that differs); returns problems.

    `boards` are already evaluated dashboards, to skip a second jsonnet evaluation.
    """
    boards = evaluate(jsonnet_dir) if boards is None else boards
    fresh = {name: render(board) for name, board in boards.items()}
    problems: list[str] = []
    for name, text in sorted(fresh.items()):
        path = out_dir / name
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if check:
            diff = "".join(difflib.unified_diff(
                (current or "").splitlines(True), text.splitlines(True),
                f"{path} (committed)", f"{path} (fresh build)", n=1))
            problems.append(f"{name} differs from a fresh build:\n{diff}" if current is not None
                            else f"{name} is missing: run `ticketmon dashboards build`")
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for stale in sorted(p.name for p in out_dir.glob("*.json")) if out_dir.exists() else []:
        if stale not in fresh:
            if check:
                problems.append(f"{stale} is not built from jsonnet/: delete it or add it to "
                                "the mixin")
            else:
                (out_dir / stale).unlink()
    return problems
