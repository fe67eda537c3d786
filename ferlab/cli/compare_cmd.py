"""`ferlab compare SUITE.yaml --data SOURCE --out DIR` or `ferlab compare RUN_DIR [RUN_DIR ...] --out DIR`."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ferlab.evaluate.suite import TTA_NAMES

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="train/evaluate a benchmark suite, or rank finished runs, into a leaderboard",
        description="Suite mode (a .yaml file): train (re-using finished runs, resuming unfinished ones) and evaluate "
                    "every experiment into DIR/runs/<name>. Runs mode (directories holding summary.json): evaluate "
                    "finished runs. Both write leaderboard.md/.csv/.html/.json and plots into --out.")
    p.add_argument("targets", nargs="+", metavar="SUITE_OR_RUN_DIR", help="a suite YAML file, or run directories")
    p.add_argument("--out", required=True, help="leaderboard folder (suite runs go to RUNS/<name>, see --runs)")
    p.add_argument("--runs", default=None, help="where suite experiments are trained (default: OUT/runs); keep it "
                                                "out of git when OUT is published")
    p.add_argument("--data", default=None, help="data source (required for a suite; runs default to their own data)")
    p.add_argument("--only", default=None, help="comma-separated experiment names of the suite to run")
    p.add_argument("--dry-run", action="store_true", help="print what would be trained, resumed, re-used or skipped")
    p.add_argument("--tta", default="none", choices=TTA_NAMES, help="TTA for runs mode")
    p.add_argument("--readme", default=None, help="splice the leaderboard into this file between the "
                                                  "<!-- leaderboard:start/end --> markers")
    p.add_argument("--readme-section", default="leaderboard", metavar="NAME",
                   help="with --readme: splice between <!-- NAME:start/end --> instead (default: leaderboard)")
    p.add_argument("--merge", action="store_true", help="add these rows to the leaderboard already in --out (rows of "
                                                       "the same experiment name are replaced), e.g. a second suite")
    p.add_argument("--json", action="store_true", help="print the leaderboard rows (or the plan) as JSON on stdout")
    p.set_defaults(func=run)


def _command(args: argparse.Namespace) -> str:
    parts = ["ferlab", "compare", *args.targets]
    for flag, value in (("--data", args.data), ("--out", args.out), ("--runs", args.runs), ("--only", args.only)):
        if value:
            parts += [flag, str(value)]
    if args.tta != "none":
        parts += ["--tta", args.tta]
    if args.merge:
        parts.append("--merge")
    return shlex.join(parts)


def _suite_target(targets: list[str]) -> Path | None:
    from ferlab.errors import ConfigError
    from ferlab.evaluate.compare import is_run_dir

    first = Path(targets[0])
    if len(targets) == 1 and first.suffix.lower() in (".yaml", ".yml"):
        if not first.is_file():
            raise ConfigError(f"suite file not found: {first}")
        return first
    for t in targets:
        if not is_run_dir(t):
            raise ConfigError(f"{t} is neither a suite .yaml file nor a run directory holding summary.json")
    return None


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ferlab.errors import ConfigError
    from ferlab.evaluate.compare import plan_suite, preflight, rows_from_runs, run_suite
    from ferlab.evaluate.leaderboard import leaderboard_markdown, merge_leaderboard, splice_readme, write_leaderboard
    from ferlab.evaluate.report import json_safe
    from ferlab.evaluate.suite import load_suite

    if args.readme:
        from ferlab.evaluate.leaderboard import readme_slot

        readme_slot(args.readme, args.readme_section)  # a README without markers fails now, not after the runs
    suite_path = _suite_target(args.targets)
    if suite_path is not None:
        if not args.data:
            raise ConfigError("a suite needs --data SOURCE")
        only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only is not None else None
        if only == []:
            raise ConfigError("--only names no experiment; give NAME[,NAME...]")
        suite = load_suite(suite_path).select(only)
        runs_dir = Path(args.runs) if args.runs else Path(args.out) / "runs"
        from ferlab.io import blocked_folder_message

        for folder in (Path(args.out), runs_dir):  # training children would otherwise fail with tracebacks
            if blocked := blocked_folder_message(folder):
                raise ConfigError(blocked)
        from ferlab.data import load

        dataset = load(args.data, progress=not args.json)  # a bad --data fails here, before any run is touched
        if problems := preflight(suite, args.data, dataset, runs_dir):
            raise ConfigError(f"{len(problems)} of {len(suite.experiments)} experiments cannot run, nothing was "
                              "trained: " + "; ".join(problems))
        if args.dry_run:
            plans = plan_suite(suite, args.data, runs_dir)
            if args.json:
                print(json.dumps([{"experiment": p.experiment.name, "action": p.action, "note": p.note,
                                   "run_dir": str(p.run_dir), "options": json_safe(p.experiment.options)}
                                  for p in plans]))
            else:
                for p in plans:
                    print(f"{p.action:8} {p.experiment.name:32} {p.run_dir}" + (f"  ({p.note})" if p.note else ""))
            return 0
        rows = run_suite(suite, args.data, runs_dir)
        title = f"ferlab leaderboard: {suite.name}"
    else:
        if args.only or args.dry_run or args.runs:
            raise ConfigError("--only, --dry-run and --runs apply to a suite file, not to run directories")
        rows = rows_from_runs(args.targets, args.out, data=args.data, tta=args.tta)
        title = "ferlab leaderboard"
    command = _command(args)
    if args.merge:
        rows, command = merge_leaderboard(args.out, rows, command)
        title = "ferlab leaderboard"
    paths = write_leaderboard(rows, args.out, title=title, command=command)
    if args.readme:
        splice_readme(args.readme, rows, args.out, command=command, section=args.readme_section)
    if args.json:
        print(json.dumps(json_safe([asdict(r) for r in rows])))
    else:
        print(leaderboard_markdown(rows, command=command), end="")
        print(f"leaderboard written to {paths['leaderboard.html']}")
    failed = [r.experiment for r in rows if r.status == "failed"]
    if failed:  # the board is written, but a script or CI must see that experiments did not run
        print(f"ferlab: error: {len(failed)} of {len(rows)} experiments failed: {', '.join(failed)} "
              "(reasons in the leaderboard notes)", file=sys.stderr)
        return 1
    return 0 if any(r.status == "ok" for r in rows) else 1
