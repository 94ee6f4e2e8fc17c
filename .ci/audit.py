"""pip-audit over requirements.lock: fail on a known vulnerability that has a fix.

A vulnerability with a fixed release is actionable (bump it in the lock, and in
pyproject.toml when its floor is the problem), so it fails the run; one with no fix yet
is printed and let through, since nothing can be done but wait. pip-audit's exit status
cannot make that distinction, so its JSON report is read here. The lock is fully pinned:
no resolution, no temporary venv (--no-deps --disable-pip).

pip-audit looks each pinned release up in PyPI's per-release JSON API. Where that lookup
fails (a PyPI mirror or proxy that serves only project pages), the project page is read
instead: its `vulnerabilities` are those of the latest release, so a pin that is the
latest release is still audited; any other is reported as not audited. With
TICKETMON_AUDIT_STRICT=1 (CI with full PyPI access) a package left unaudited fails too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPI = os.environ.get("TICKETMON_AUDIT_PYPI", "https://pypi.org/pypi")


def pinned() -> dict[str, str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line)


def project_page(name: str, version: str) -> tuple[str, list[dict] | None]:
    """(why not audited, None) or ("", vulnerabilities of the pinned = latest release)."""
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=30) as resp:
            doc = json.load(resp)
    except (OSError, ValueError) as exc:
        return f"PyPI lookup failed: {exc}", None
    latest = doc["info"]["version"]
    if latest != version:
        return f"release {version} not found on PyPI's API (latest is {latest})", None
    return "", [{"id": v["id"], "fix_versions": v.get("fixed_in") or []}
                for v in doc.get("vulnerabilities", [])]


def main() -> int:
    cmd = [sys.executable, "-m", "pip_audit", "--requirement", str(ROOT / "requirements.lock"),
           "--no-deps", "--disable-pip", "--format", "json", "--progress-spinner", "off",
           "--timeout", "30"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    try:
        deps = json.loads(result.stdout)["dependencies"]
    except (ValueError, KeyError):
        print(f"audit: pip-audit failed ({result.returncode}):\n{result.stderr}",
              file=sys.stderr)
        return 2
    versions = pinned()
    skipped = [d["name"] for d in deps if "skip_reason" in d]
    with ThreadPoolExecutor(8) as pool:
        fallback = dict(zip(skipped, pool.map(lambda n: project_page(n, versions[n]), skipped),
                            strict=True))
    fixable, unfixed, unaudited = [], [], []
    for dep in deps:
        name = dep["name"]
        vulns = dep.get("vulns", [])
        if name in fallback:
            why, vulns = fallback[name]
            if vulns is None:
                unaudited.append(f"{name} {versions[name]}: {why}")
                continue
        for vuln in vulns:
            line = f"{name} {versions.get(name, dep.get('version'))}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                unfixed.append(f"{line} (no fix released yet)")
    for line in unaudited:
        print(f"audit: not audited: {line}", file=sys.stderr)
    for line in unfixed:
        print(f"audit: known, unfixed: {line}", file=sys.stderr)
    for line in fixable:
        print(f"audit: FIX AVAILABLE: {line}", file=sys.stderr)
    print(f"audit: {len(deps)} locked packages: {len(fixable)} vulnerabilities with a fix, "
          f"{len(unfixed)} without a fix yet, {len(unaudited)} packages not audited",
          file=sys.stderr)
    if fixable:
        return 1
    if unaudited and os.environ.get("TICKETMON_AUDIT_STRICT") == "1":
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
