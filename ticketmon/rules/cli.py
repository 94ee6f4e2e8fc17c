"""`ticketmon rules check|test|build|lint|backtest`: the rule pipeline CI runs on every
change, and the backtest a reviewer reads on a pull request."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ticketmon.rules import REPO, RULES_DIR

DASHBOARDS_DIR = REPO / "dashboards"
JSONNET_DIR = REPO / "jsonnet"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rules", help="check, unit-test, build and lint alerting rules")
    sub = parser.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    cmd = sub.add_parser("check", help="promtool check rules on every rule file")
    cmd.set_defaults(func=check)
    cmd = sub.add_parser("test", help="promtool test rules, plus every alert tested both ways")
    cmd.set_defaults(func=test)
    cmd = sub.add_parser("build", help="regenerate rules/generated/ from the SLO spec")
    cmd.add_argument("--check", action="store_true",
                     help="write nothing; fail if the committed files differ from a fresh build")
    cmd.set_defaults(func=build)
    cmd = sub.add_parser("lint", help="names, labels, annotations, runbooks and the catalog")
    cmd.add_argument("--dashboards-dir", type=Path, default=DASHBOARDS_DIR)
    cmd.add_argument("--jsonnet-dir", type=Path, default=JSONNET_DIR,
                     help="jsonnet sources whose _config.thresholds the alerts must match")
    cmd.set_defaults(func=lint)
    cmd = sub.add_parser("backtest", help="when would the alerts have fired over real history "
                         "(Markdown for a pull request)")
    cmd.add_argument("files", nargs="*", metavar="FILE",
                     help="rule files (default: rules/*.yml and rules/generated/*.yml)")
    cmd.add_argument("--since", default="7d", help="history to replay (default 7d)")
    cmd.add_argument("--step", type=float, default=60.0,
                     help="evaluation step in seconds (default 60)")
    cmd.add_argument("--diff", metavar="REF", help="compare with the rules at this git ref")
    cmd.add_argument("--prometheus", default=os.environ.get("TICKETMON_PROMETHEUS_URL",
                                                            "http://127.0.0.1:9090"))
    cmd.add_argument("--out", help="write the Markdown here instead of standard output")
    cmd.add_argument("--repo", help=argparse.SUPPRESS)
    cmd.set_defaults(func=backtest)
    for name in ("check", "test", "build", "lint", "backtest"):
        sub.choices[name].add_argument("--rules-dir", type=Path, default=RULES_DIR,
                                       help="rules directory (default: the repository's)")


def _report(title: str, problems: list[str]) -> int:
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(f"{title}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{title}: ok")
    return 0


def _promtool(fn, files: list[Path]) -> int:
    from ticketmon.rules.promtool import PromtoolMissing

    try:
        result = fn(files)
    except PromtoolMissing as exc:
        print(f"ticketmon: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return 0 if result.returncode == 0 else 1


def check(args: argparse.Namespace) -> int:
    from ticketmon.rules import promtool

    files = promtool.rule_files(args.rules_dir)
    if not files:
        return _report("rules check", [f"no rule files under {args.rules_dir}"])
    return _promtool(promtool.check_rules, files)


def test(args: argparse.Namespace) -> int:
    from ticketmon.rules import lint as lint_mod
    from ticketmon.rules import promtool

    tests = promtool.test_files(args.rules_dir)
    rule_files = promtool.rule_files(args.rules_dir)
    coverage = lint_mod.lint_tests(rule_files, tests)
    if not tests:
        print(f"no unit tests under {args.rules_dir / 'tests'}", file=sys.stderr)
    status = _promtool(promtool.test_rules, tests) if tests else 1
    counts = lint_mod.test_case_counts(tests)
    print(f"{len(lint_mod.alert_names(rule_files))} alerts; {len(tests)} test files with "
          f"{counts['firing']} firing and {counts['quiet']} quiet alert cases and "
          f"{counts['promql']} PromQL cases")
    return max(status, _report("rules test coverage", coverage))


def build(args: argparse.Namespace) -> int:
    from ticketmon.rules import build as build_mod
    from ticketmon.rules import slo

    spec = args.rules_dir / "slo" / "slos.yaml"
    out_dir = args.rules_dir / "generated"
    if args.check:
        diffs = build_mod.build(check=True, spec_file=spec, output_dir=out_dir)
        for diff in diffs:
            sys.stderr.write(diff)
        return _report("rules build --check",
                       [f"generated rules are stale: run `ticketmon rules build` "
                        f"({len(diffs)} file(s) differ)"] if diffs else [])
    build_mod.build(spec_file=spec, output_dir=out_dir)
    print(f"wrote {out_dir / slo.OUTPUT_FILE.name}")
    return 0


def lint(args: argparse.Namespace) -> int:
    from ticketmon.rules import lint as lint_mod
    from ticketmon.rules import promtool
    from ticketmon.rules.catalog import load_catalog

    catalog = load_catalog(args.rules_dir / "metrics-catalog.yaml")
    files = promtool.rule_files(args.rules_dir)
    recorded = lint_mod.recorded_names(files)
    problems = lint_mod.lint_rule_style(files, args.rules_dir.parent)
    problems += lint_mod.lint_rule_metrics(files, catalog)
    problems += lint_mod.lint_tests(files, promtool.test_files(args.rules_dir))
    dashboards = sorted(args.dashboards_dir.glob("*.json"))
    problems += lint_mod.lint_dashboards(dashboards, catalog, recorded)
    problems += lint_mod.lint_thresholds(files, args.jsonnet_dir)
    alerts = len(lint_mod.alert_names(files))
    print(f"linted {len(files)} rule files ({alerts} alerts, {len(recorded)} recorded names) "
          f"and {len(dashboards)} dashboards against {len(catalog.metrics)} catalogued metrics")
    return _report("rules lint", problems)


def backtest(args: argparse.Namespace) -> int:
    import time

    from ticketmon.reports.prometheus import PromClient, PrometheusUnavailable
    from ticketmon.reports.spec import parse_duration
    from ticketmon.rules import backtest as bt
    from ticketmon.rules import promtool

    try:
        since = parse_duration(args.since)
    except ValueError as exc:
        print(f"ticketmon rules backtest: --since: {exc}", file=sys.stderr)
        return 2
    files = [Path(f) for f in args.files] or promtool.rule_files(args.rules_dir)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"ticketmon rules backtest: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    end = float(int(time.time()) // int(args.step) * int(args.step))
    start = end - since
    client = PromClient(args.prometheus)
    try:
        client.ping()
        new = bt.backtest(client, bt.load_files(files), start, end, args.step)
        if args.diff:
            repo = Path(args.repo or REPO)
            try:
                old_rules = bt.load_ref(args.diff, files, repo)
            except ValueError as exc:
                print(f"ticketmon rules backtest: {exc}", file=sys.stderr)
                return 2
            old = bt.backtest(client, old_rules, start, end, args.step)
            text = bt.diff_markdown(old, new, args.diff, start, end, args.step, args.prometheus)
        else:
            text = bt.markdown(new, start, end, args.step, args.prometheus)
    except PrometheusUnavailable as exc:
        print(f"ticketmon rules backtest: {exc}", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
