"""The `ticketmon` command: one entry point, subcommands grouped per component.

Each component adds its own subcommands through a `register(subparsers)` function,
and imports its heavy dependencies only when its command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from ticketmon.core import redact
from ticketmon.core.config import ConfigError

# component name -> module with register(subparsers)
COMPONENTS = {
    "stack": "ticketmon.stack.cli",
    "receiver": "receiver.cli",
    "rules": "ticketmon.rules.cli",
    "dashboards": "ticketmon.dashboards.cli",
    "report": "ticketmon.reports.cli",
    "exporter": "exporters.cli",
    "simulator": "ticketmon.simulator.cli",
    "oncall": "receiver.oncall.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticketmon", description="Operations layer for a ticketing platform."
    )
    sub = parser.add_subparsers(dest="component", required=True, metavar="COMPONENT")
    for module in COMPONENTS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except ConfigError as exc:
        print(f"ticketmon: {redact.text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception:
        # Python's own traceback would print exception texts (URLs, keys) as they are
        print(redact.text(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
