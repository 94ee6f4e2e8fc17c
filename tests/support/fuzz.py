"""Schemathesis against an app's own /openapi.json, in process (WSGI), bounded in time.

Every operation is fuzzed with schema-valid data, then with schema-violating data, and
each answer goes through all of schemathesis' checks: no 5xx, the status, content type
and body match the document, valid data is accepted and invalid data refused, and an
operation that needs credentials refuses a call without them. Examples are derandomized
so a run is repeatable; TICKETMON_FUZZ_EXAMPLES raises the count for a longer hunt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance


@dataclass
class FuzzReport:
    operations: int = 0
    examples: int = 0
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # over the time budget

    def __str__(self) -> str:
        return (f"{self.operations} operations, {self.examples} examples, "
                f"{len(self.failures)} failing, {len(self.skipped)} skipped")


def fuzz(app, headers: Callable[[str], dict], max_examples: int = 25,
         budget_seconds: float = 120.0,
         semantic_bounds: tuple[str, ...] = (),
         unfuzzed: dict[str, str] | None = None) -> FuzzReport:
    """Fuzz every operation of `app`'s /openapi.json; `headers(path)` authenticates.

    `semantic_bounds`: operation labels whose valid data the server may still refuse
    because a bound depends on the value, not its form (a duration string over the
    configured maximum): positive_data_acceptance is not applied to them.
    `unfuzzed`: operation label -> why it cannot be fuzzed in process, and where it is
    tested instead."""
    max_examples = int(os.environ.get("TICKETMON_FUZZ_EXAMPLES", max_examples))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    report = FuzzReport(operations=len(operations))
    deadline = time.monotonic() + budget_seconds
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for op in operations:
            if op.label in (unfuzzed or {}):
                continue
            if time.monotonic() > deadline:
                report.skipped.append(f"{op.label} [{mode}]")
                continue
            excluded = [positive_data_acceptance] if op.label in semantic_bounds else []
            try:
                _test(op, mode, max_examples, headers(op.path), excluded, report)()
            except Unsatisfiable:  # no parameters to violate: nothing negative to send
                pass
            except (Exception, BaseExceptionGroup) as exc:  # each distinct failure
                report.failures.append(f"{op.label} [{mode}]: {exc}")
    return report


def _test(op, mode: GenerationMode, max_examples: int, headers: dict, excluded: list,
          report: FuzzReport) -> Callable[[], None]:
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case) -> None:
        report.examples += 1
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    return run


def route_methods(app) -> dict[str, set[str]]:
    """The Flask url_map as OpenAPI paths -> lower-case methods (HEAD/OPTIONS aside)."""
    import re

    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        # the console's pages (/ui/) are HTML for people, not part of the API
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def documented_methods(doc: dict) -> dict[str, set[str]]:
    return {path: set(item) for path, item in doc["paths"].items()}
