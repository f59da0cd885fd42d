"""The grade history: one JSON line per grading run, written by the grader only (the notebook's
sandbox cannot see or write it), read back leniently.

Each line is a :class:`~ftnotes.contest.result.Result` as a dict; ``extra["submission"]``
counts the runs of that task by that notebook (name), this one included, as IOAI 2025 counted
submissions per task.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import warnings
from dataclasses import asdict
from pathlib import Path

HISTORY_ENV = "FTNOTES_GRADE_HISTORY"
ROOT = Path(__file__).resolve().parents[2]


def history_path() -> Path:
    """``$FTNOTES_GRADE_HISTORY``, else ``runs/grade_history.jsonl`` in the repository (gitignored)."""
    return Path(os.environ.get(HISTORY_ENV) or ROOT / "runs" / "grade_history.jsonl")


def _problem(row) -> str:
    """'' for a usable report line, else what is wrong with it."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    for key in ("task", "status"):
        if not isinstance(row.get(key), str):
            return f"no text {key!r}"
    for key in ("points", "score"):
        value = row.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not (number and math.isfinite(value)):
            return f"{key!r} is {value!r:.30}, not a number or null"
    if not isinstance(row.get("name", row.get("notebook")), str):
        return "no notebook 'name'"
    return ""


def _parse(lines) -> tuple[list[dict], list[str]]:
    runs, skipped = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            skipped.append(f"line {number}: not JSON")
            continue
        why = _problem(row)
        if why:
            skipped.append(f"line {number}: {why}")
            continue
        row.setdefault("name", row.get("notebook"))  # lines written before 2026-12 said notebook
        row.setdefault("points", None)
        row.setdefault("extra", {})
        runs.append(row)
    return runs, skipped


def read_history(path=None, *, warn: bool = True) -> list[dict]:
    """The history's reports, oldest first. Lines that are not a report (not JSON, not an
    object, no task or status, points that are not a number) are skipped, with one warning
    naming them."""
    path = Path(path) if path is not None else history_path()
    if not path.is_file():
        return []
    runs, skipped = _parse(path.read_text(errors="replace").splitlines())
    if skipped and warn:
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        warnings.warn(f"{path}: skipped {len(skipped)} malformed lines ({'; '.join(skipped[:3])}"
                      f"{more})", stacklevel=2)  # fmt: skip
    return runs


def append_history(result, path=None) -> Path:
    """Number the submission (``result.extra["submission"]``) and append one JSON line, under
    a file lock, in one write: older lines are never rewritten."""
    path = Path(path) if path is not None else history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read()
        runs, _ = _parse(text.splitlines())
        name = Path(result.name).name
        result.extra["submission"] = 1 + sum(
            r["task"] == result.task and Path(r["name"]).name == name for r in runs)
        glue = "\n" if text and not text.endswith("\n") else ""  # a torn last line stays apart
        f.write(glue + json.dumps(asdict(result), default=str) + "\n")
        f.flush()
    return path
