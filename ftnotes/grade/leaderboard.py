"""A coach's leaderboard: grade every notebook of a folder on one task, one at a time, each in
its own sandbox, all on the same hidden split (one secret for the folder), and write the ranking
as a CSV and an HTML table with each failure's reason and the tail of its log.
"""

from __future__ import annotations

import csv
import html
import io
import time
from pathlib import Path

from ftnotes import contest
from ftnotes.contest.core import Secret
from ftnotes.grade.grader import check_options, grade
from ftnotes.utils import atomic_write

COLUMNS = ("rank", "notebook", "status", "score", "points", "seconds", "time_limit_s", "reason")


def notebooks_in(folder: Path) -> list[Path]:
    """The folder's ``*.ipynb`` files (not hidden ones, not Jupyter's checkpoints), by name."""
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith(".") and p.is_file())


def ranked(results) -> list:
    """Scored runs by points, then score, then time; the failures after them, by name."""
    scored = sorted((r for r in results if r.status == "scored"),
                    key=lambda r: (-(r.points or 0), -r.score, r.seconds))  # fmt: skip
    failed = sorted((r for r in results if r.status != "scored"), key=lambda r: r.name)
    return scored + failed


def _row(rank, r) -> dict:
    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    return {"rank": rank if r.status == "scored" else "", "notebook": Path(r.name).name,
            "status": r.status, "score": num(r.score, ".4f"), "points": num(r.points, ".1f"),
            "seconds": num(r.seconds, ".1f"), "time_limit_s": num(r.time_limit_s, "g"),
            "reason": r.message}  # fmt: skip


def to_csv(results) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rank, r in enumerate(ranked(results), 1):
        writer.writerow(_row(rank, r))
    return buf.getvalue()


def to_html(results, title: str, sandbox: str) -> str:
    """A self-contained HTML page: the ranking, failures in red with their reason and log."""
    esc = html.escape
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = []
    for rank, r in enumerate(ranked(results), 1):
        row = _row(rank, r)
        cells = "".join(f"<td>{esc(str(row[c]))}</td>" for c in COLUMNS[:-1])
        tail = r.extra.get("log_tail") or []
        log = (f"<details><summary>log</summary><pre>{esc(chr(10).join(tail))}</pre></details>"
               if tail else "")  # fmt: skip
        style = "" if r.status == "scored" else ' class="failed"'
        body.append(f"<tr{style}>{cells}<td>{esc(row['reason'])}{log}</td></tr>")
    warn = "" if sandbox == "bubblewrap" else f"<p class='failed'>Sandbox: {esc(sandbox)}</p>"
    return ("<!doctype html><meta charset='utf-8'><title>" + esc(title) + "</title><style>"
            "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid "
            "#ccc;padding:3px 8px;vertical-align:top}.failed{color:#b00}</style><h1>"
            + esc(title) + "</h1>" + warn + f"<table><tr>{head}</tr>" + "".join(body)
            + "</table>\n")  # fmt: skip


def grade_folder(task_name: str, folder, *, board: str = "live", out=None, time_limit_s=None,
                 memory_limit_gb=None, require_sandbox: bool = False, history: bool = True,
                 quiet: bool = False) -> tuple[list, Path, Path]:  # fmt: skip
    """Grade every notebook in ``folder`` (see :func:`~ftnotes.grade.grader.grade`) on one
    secret; write ``leaderboard_<task>_<board>.csv`` and ``.html`` into ``out`` (default: the
    folder). Returns (results in ranking order, CSV path, HTML path)."""
    task = contest.get_task(task_name)
    folder = Path(folder)
    check_options(task, board, time_limit_s, memory_limit_gb)
    paths = notebooks_in(folder) if folder.is_dir() else []
    if not paths:
        raise ValueError(f"folder {str(folder)!r} holds no .ipynb notebook to grade")
    out = Path(out) if out is not None else folder
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder for the leaderboard files, got the file {str(out)!r}")
    secret, results = Secret.new(), []
    for i, path in enumerate(paths, 1):
        if not quiet:
            print(f"== {i}/{len(paths)}: {path.name}", flush=True)
        results.append(grade(task.name, path, board=board, time_limit_s=time_limit_s,
                             memory_limit_gb=memory_limit_gb, require_sandbox=require_sandbox,
                             history=history, quiet=quiet, secret=secret))  # fmt: skip
    stem = f"leaderboard_{task.name}_{board}"
    title = (f"{task.name}: {board} board, {len(paths)} notebooks, graded "
             f"{time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    sandbox = results[0].extra.get("sandbox", "")
    csv_path = atomic_write(out / f"{stem}.csv", to_csv(results))
    html_path = atomic_write(out / f"{stem}.html", to_html(results, title, sandbox))
    return ranked(results), csv_path, html_path
