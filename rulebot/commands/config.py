"""Commands on the config file alone: ``validate``, ``schema``, ``test``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rulebot.commands.shared import EXIT_ERROR, EXIT_OK, config_path, load, out
from rulebot.safe import json_text


def cmd_schema(args: argparse.Namespace) -> int:
    from rulebot.rules.schema import schema_text

    out(schema_text())
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from rulebot.rules.config import render_problems, validate_file

    # several files: pre-commit passes every changed rules file at once
    paths = [Path(f) for f in args.files] or [config_path(args)]
    problems = [problem for path in paths for problem in validate_file(path)]
    text = render_problems(problems, args.format)
    if text:
        out(text)
    if args.format == "text" and not args.quiet:
        bad = {p.file for p in problems if p.is_error}
        for path in paths:
            if str(path) not in bad:
                out(f"{path}: valid", sys.stderr)
    # warnings are shown, but only errors fail: the config loads with warnings
    return EXIT_ERROR if any(p.is_error for p in problems) else EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from rulebot.planning.selftest import run_tests, tests_text

    config = load(args)
    results = run_tests(config)
    if args.format == "json":
        out(json_text([r.to_json() for r in results]))
    else:
        out(tests_text(results, colour=sys.stdout.isatty() and "NO_COLOR" not in os.environ))
    return EXIT_OK if all(r.passed for r in results) else EXIT_ERROR
