"""Grading one notebook: ``grade(task, notebook)`` -> :class:`~ftnotes.contest.result.Result`.

What IOAI's 2026 graders do, on one machine: check the notebook's size; build the hidden split
of the chosen board in this process from a fresh secret (:class:`~ftnotes.contest.core.Secret`);
write only its test *inputs* into a fresh working folder; run the notebook top to bottom in a
sandboxed kernel (:mod:`~ftnotes.grade.sandbox`) under one wall clock from kernel start to the
last cell (:mod:`~ftnotes.grade.run`); kill the sandbox; read the submission file the statement
names (strictly, item by item: :mod:`~ftnotes.contest.formats`); score it against the answers,
which never left this process; normalise it between the baseline and the reference; append one
line to the history. Every failure has a reason, no score, and its history line.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from ftnotes import contest
from ftnotes.checks import check_choice, check_number
from ftnotes.contest.core import BOARDS, INPUTS_ENV, SPLIT_ENV, Secret
from ftnotes.contest.formats import SubmissionError
from ftnotes.contest.result import Result
from ftnotes.grade import run, sandbox
from ftnotes.grade.history import ROOT, append_history

MAX_TIME_LIMIT_S = 24 * 3600.0


def check_options(task, board, time_limit_s, memory_limit_gb) -> tuple[float, float]:
    """(limit in seconds, memory cap in GB), or ValueError naming the bad argument."""
    check_choice("board", board, BOARDS)
    limit = task.time_limit_s if time_limit_s is None else time_limit_s
    check_number("time_limit_s", limit, 0, MAX_TIME_LIMIT_S, strict=True)  # seconds
    memory = task.memory_limit_gb if memory_limit_gb is None else memory_limit_gb
    check_number("memory_limit_gb", memory, 0.25, 1024)
    return float(limit), float(memory)


def read_notebook(path: Path, max_bytes: int):
    """(notebook, '') or (None, why it cannot be graded): too large, or not a notebook."""
    import nbformat

    size = path.stat().st_size
    if size > max_bytes:
        return None, (f"the notebook is {size / 2**20:.2f} MiB, over the task's {max_bytes / 2**20:g} "
                      "MiB cap: submit code only (no weights, data or outputs; nbstripout "
                      "removes outputs)")  # fmt: skip
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return nb, ""
    except Exception as err:  # nbformat raises several kinds for "not a notebook"
        return None, f"not a Jupyter notebook ({type(err).__name__}: {str(err)[:120]})"


def _sandbox_note(bwrap, why: str) -> str:
    if bwrap:
        return "bubblewrap"
    return (f"NONE: {why}; the notebook ran NOT ISOLATED, with your rights, network and files "
            f"({sandbox.INSTALL_HINT})")  # fmt: skip


def _score(task, result, work: Path, answers, board: str) -> None:
    try:
        parts = task.score_file(work / task.submission, *answers, board)
    except SubmissionError as err:
        result.status, result.message = "bad submission", str(err)
        return
    result.status, result.score = "scored", parts.pop("score")
    result.points, result.message = parts.pop("points"), parts.pop("note")
    result.parts = parts


def _run_in_sandbox(task, nb, path, board, limit, memory_gb, bwrap, secret, result) -> None:
    served, answers = task.hidden(board, secret)
    with tempfile.TemporaryDirectory(prefix=f"ftnotes-grade-{task.name}-") as tmp:
        work = Path(tmp) / "work"
        sandbox.prepare_workdir(work)
        inputs = work / ".contest" / "hidden_inputs.pt"
        inputs.parent.mkdir()
        torch.save(served, inputs)
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = sandbox.kernel_env(work, pythonpath, {SPLIT_ENV: "hidden", INPUTS_ENV: str(inputs)})
        prefix = (sandbox.bwrap_command(bwrap, ROOT, work, path, task.private_files) if bwrap
                  else [])  # fmt: skip
        km = sandbox.SandboxKernelManager(sandbox=prefix, memory_bytes=int(memory_gb * 2**30),
                                          workdir=work)  # fmt: skip
        ran = run.execute(nb, km, limit, Path(tmp) / "kernel.log", env=env, cwd=str(work))
        result.status, result.message, result.seconds = ran.status, ran.message, ran.seconds
        result.extra["kernel_start_s"] = ran.kernel_s
        if ran.status == "ran":
            _score(task, result, work, answers, board)
        if result.status != "scored":
            result.extra["log_tail"] = ran.log[-run.LOG_TAIL_LINES :]


def grade(task_name: str, notebook, *, board: str = "live", time_limit_s=None,
          memory_limit_gb=None, require_sandbox: bool = False, history: bool = True,
          quiet: bool = False, secret: Secret | None = None) -> Result:  # fmt: skip
    """Grade ``notebook`` on task ``task_name``'s hidden ``board`` ("live" or "final").

    ``time_limit_s``/``memory_limit_gb`` replace the task's; ``require_sandbox`` refuses to run
    without bubblewrap (status "no sandbox"); ``history=False`` skips the history file;
    ``secret``: the hidden split's secret (default: a fresh one; a coach's leaderboard passes
    one for the whole folder, tests pass one to rebuild the same split). Bad arguments raise
    ``ValueError``; the notebook's failures do not: they are the Result's status and message.
    """
    task = contest.get_task(task_name)
    path = Path(notebook)
    if not path.is_file():
        what = "is a folder (grade_folder grades a folder)" if path.is_dir() else "does not exist"
        raise ValueError(f"notebook {str(path)!r} {what}")
    limit, memory_gb = check_options(task, board, time_limit_s, memory_limit_gb)
    if secret is not None and not isinstance(secret, Secret):
        raise ValueError(f"secret must be None or a contest Secret, got {type(secret).__name__}")
    start = time.perf_counter()
    bwrap, why = sandbox.probe()
    result = Result(task.name, str(path), "error", time_limit_s=limit,
                    extra={"board": board, "sandbox": _sandbox_note(bwrap, why)})  # fmt: skip
    nb, problem = read_notebook(path, task.notebook_max_bytes)
    if bwrap is None and require_sandbox:
        result.status, result.message = "no sandbox", f"--require-sandbox and {why}"
    elif nb is None:
        result.status, result.message = "bad notebook", problem
    else:
        _run_in_sandbox(task, nb, path, board, limit, memory_gb, bwrap, secret or Secret.new(),
                        result)  # fmt: skip
    result.overhead_s = time.perf_counter() - start - result.seconds
    result.when = time.strftime("%Y-%m-%dT%H:%M:%S")
    if history:
        append_history(result)
    if not quiet:
        print(report_text(result))
    return result


def report_text(result: Result) -> str:
    """The result, the sandbox warning when there was none, the log's tail on failure."""
    lines = [str(result)]
    if not result.extra.get("sandbox", "bubblewrap").startswith("bubblewrap"):
        lines.append(f"WARNING: sandbox {result.extra['sandbox']}")
    tail = result.extra.get("log_tail") or []
    if tail:
        lines += [f"--- the last {len(tail)} lines of the notebook's log:"] + tail
    return "\n".join(lines)
