"""The contest grader: ``python -m ftnotes.grade TASK NOTEBOOK.ipynb [--time-limit S]``.

What IOAI's graders do, on one machine: run the notebook top to bottom in a fresh kernel
(nbclient), offline (``HF_HUB_OFFLINE=1`` and friends), in an empty working folder, with
``FTNOTES_CONTEST_SPLIT=hidden`` so the task's ``load()`` serves the hidden test inputs where the
notebook asks for the public ones; stop it when the task's time limit is used up; read the
submission file the statement names; score it against the hidden labels (which only this process
reads) and normalise it against the baseline and the reference. The report (score, points, time
used, the limit) is printed and appended to a JSON-lines history file that notebook 06 plots.

Every failure has a reason and no score: the time limit (with the cell that was running), an
exception (with the cell), a missing or malformed submission (what was expected, what was found).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from ftnotes import contest
from ftnotes.contest.core import SPLIT_ENV, SubmissionError
from ftnotes.contest.result import Result

ROOT = Path(__file__).resolve().parents[1]
HISTORY_ENV = "FTNOTES_GRADE_HISTORY"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TQDM_DISABLE": "1"}  # fmt: skip


def history_path() -> Path:
    """``$FTNOTES_GRADE_HISTORY``, else ``runs/grade_history.jsonl`` in the repository (gitignored)."""
    return Path(os.environ.get(HISTORY_ENV) or ROOT / "runs" / "grade_history.jsonl")


def _check_notebook(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"notebook {str(path)!r} does not exist")
    import nbformat

    try:
        nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several kinds for "not a notebook"
        raise ValueError(f"{str(path)!r} is not a Jupyter notebook ({type(err).__name__}: "
                         f"{str(err)[:120]})") from None  # fmt: skip
    return path


def _kernel_env() -> dict:
    env = dict(os.environ, **OFFLINE_ENV)
    env[SPLIT_ENV] = "hidden"
    env.pop(HISTORY_ENV, None)
    # the kernel imports the same ftnotes as this grader, wherever the notebook runs
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _cell_label(nb, index: int) -> str:
    first = next((ln for ln in nb.cells[index].source.splitlines() if ln.strip()), "")
    number = sum(c.cell_type == "code" for c in nb.cells[: index + 1])
    return f"code cell {number} (`{first.strip()[:60]}`)"


def _run(nb, workdir: Path, limit: float) -> tuple[str, str, float, float]:
    """Execute the cells with what is left of ``limit`` as each cell's timeout:
    (status, message, cell seconds, kernel start seconds)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    client = NotebookClient(nb, timeout=int(limit) + 1, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})  # fmt: skip
    start = time.perf_counter()
    with client.setup_kernel(env=_kernel_env(), cwd=str(workdir)):
        kernel_s, used = time.perf_counter() - start, 0.0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = limit - used
            client.timeout = max(1, int(left + 0.999))
            t = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                return ("time limit exceeded", f"still running {_cell_label(nb, index)} when the "
                        f"{limit:.0f} s limit ran out", limit, kernel_s)  # fmt: skip
            except CellExecutionError as err:
                used += time.perf_counter() - t
                last = f"{err.ename}: {err.evalue}" if getattr(err, "ename", None) else str(err)
                return "error", f"{_cell_label(nb, index)} raised {last}", used, kernel_s
            except DeadKernelError:
                used += time.perf_counter() - t
                return "error", f"the kernel died in {_cell_label(nb, index)}", used, kernel_s
            used += time.perf_counter() - t
            if used > limit:
                return ("time limit exceeded", f"{_cell_label(nb, index)} finished after the "
                        f"{limit:.0f} s limit", used, kernel_s)  # fmt: skip
    return "ran", "", used, kernel_s


def grade(task_name: str, notebook, *, time_limit_s=None, history=True, quiet=False) -> Result:
    """Grade ``notebook`` on task ``task_name`` (see the module docstring); returns the
    :class:`~ftnotes.contest.result.Result`.

    ``time_limit_s`` replaces the statement's limit (e.g. smaller, for tests); ``history=False``
    skips the history file. Bad arguments raise ``ValueError``; the student's failures do not.
    """
    task = contest.get_task(task_name)
    path = _check_notebook(notebook)
    limit = task.time_limit_s if time_limit_s is None else time_limit_s
    if not (isinstance(limit, (int, float)) and limit > 0):
        raise ValueError(f"time_limit_s must be None or a number > 0, got {time_limit_s!r}")
    import nbformat

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix=f"grade-{task.name}-") as tmp:
        status, message, used, kernel_s = _run(nb, Path(tmp), float(limit))
        report = Result(task.name, str(path), status, used, float(limit), message=message,
                        overhead_s=kernel_s, when=time.strftime("%Y-%m-%dT%H:%M:%S"))  # fmt: skip
        if status == "ran":
            t = time.perf_counter()
            try:
                result = task.grade_file(Path(tmp) / task.submission, "hidden")
                report.status, report.score = "scored", result.pop("score")
                report.points, report.parts = result.pop("points"), result
            except SubmissionError as err:
                report.status, report.message = "bad submission", str(err)
            report.overhead_s += time.perf_counter() - t
    if history:
        append_history(report)
    if not quiet:
        print(report)
    return report


def append_history(report: Result) -> Path:
    """Append one JSON line to :func:`history_path` (appending never rewrites older lines)."""
    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(asdict(report)) + "\n")
    return path


def read_history(path=None) -> list[dict]:
    """The history's reports, oldest first; lines that are not valid JSON are skipped."""
    path = Path(path) if path is not None else history_path()
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def plot_history(path=None):
    """Points of every scored run per task, in order (failed runs as crosses at 0)."""
    import matplotlib.pyplot as plt

    runs = read_history(path)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name in contest.task_names():
        mine = [r for r in runs if r["task"] == name]
        if not mine:
            continue
        xs = range(1, len(mine) + 1)
        ax.plot(xs, [r["points"] if r["points"] is not None else 0 for r in mine], "o-",
                label=name)  # fmt: skip
        fails = [(i, 0) for i, r in zip(xs, mine) if r["points"] is None]
        if fails:
            ax.plot(*zip(*fails), "x", color="tab:red", ms=9)
    ax.axhline(100, color="gray", ls="--", lw=1, label="reference = 100")
    ax.set(xlabel="graded run of that task", ylabel="points (baseline = 0)",
           title=f"grading history ({len(runs)} runs; red x: no score)")  # fmt: skip
    if runs:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.grade", description=__doc__.split("\n")[0])
    ap.add_argument("task", help=f"one of {', '.join(contest.task_names())}")
    ap.add_argument("notebook", help="the .ipynb to run and grade")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds (default: the statement's)")
    ap.add_argument("--no-history", action="store_true", help="do not append to the history file")
    args = ap.parse_args(argv)
    try:
        report = grade(args.task, args.notebook, time_limit_s=args.time_limit,
                       history=not args.no_history)  # fmt: skip
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if report.status == "scored" else 1


if __name__ == "__main__":
    sys.exit(main())
