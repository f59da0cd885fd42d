"""``python -m ftnotes.grade TASK NOTEBOOK.ipynb`` grades one notebook; ``python -m
ftnotes.grade TASK FOLDER/`` grades every notebook in the folder and writes a leaderboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftnotes import contest
from ftnotes.cli import positive_float
from ftnotes.contest.core import BOARDS
from ftnotes.grade.grader import grade
from ftnotes.grade.leaderboard import grade_folder


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.grade", description=(
        "Grade a notebook on a task's hidden split in a sandbox, or every notebook of a folder "
        "into a leaderboard (CSV and HTML)."))
    ap.add_argument("task", help=f"one of {', '.join(contest.task_names())}")
    ap.add_argument("path", help="the .ipynb to run and grade, or a folder of them (leaderboard)")
    ap.add_argument("--board", default="live", choices=BOARDS,
                    help="the hidden split: live (default) or final")  # fmt: skip
    ap.add_argument("--time-limit", type=positive_float, default=None, metavar="S",
                    help="seconds for the whole notebook (default: the statement's)")  # fmt: skip
    ap.add_argument("--memory-limit", type=positive_float, default=None, metavar="GB",
                    help="data-segment cap of each sandboxed process (default: the task's)")  # fmt: skip
    ap.add_argument("--require-sandbox", action="store_true",
                    help="refuse to run a notebook without the bubblewrap sandbox")  # fmt: skip
    ap.add_argument("--no-history", action="store_true", help="do not append to the history file")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="where a folder's leaderboard goes (default: the folder)")  # fmt: skip
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    options = dict(board=args.board, time_limit_s=args.time_limit,
                   memory_limit_gb=args.memory_limit, require_sandbox=args.require_sandbox,
                   history=not args.no_history)  # fmt: skip
    try:
        if Path(args.path).is_dir():
            results, csv_path, html_path = grade_folder(args.task, args.path, out=args.out,
                                                        **options)  # fmt: skip
            print(f"leaderboard: {csv_path} and {html_path} ({len(results)} notebooks)")
            return 0
        report = grade(args.task, args.path, **options)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if report.status == "scored" else 1
