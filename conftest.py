"""Root pytest hooks: a per-notebook wall-time summary at the end of every run.

nbval reports one test item per cell; students and reviewers care about whole notebooks, so the
cells' setup+call+teardown times are summed per file. Machines differ in speed by up to 2.5x, so
the budgets (below) are in *reference steps*: one TinyViT-sized training step at batch 32 on
one thread, as timed by ``tools/refstep.py`` (plain torch, in the repository, so a fresh clone
measures it too). The summary prints the CPU, the step times and each notebook in steps, and
flags a notebook over its budget.

The step is timed beside every notebook, interleaved: before each one starts and once after the
last, outside the notebooks' own times; a notebook is counted against the mean of the two timings
on either side of it. A shared machine changes speed by tens of percent within minutes (on the
course's 2-core VM one timing gave 10.7 ms and the next, a minute later, 19.9 ms), so a step timed
once, at one end of a run, decided the verdict by itself.
"""

import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

NOTEBOOK_BUDGET_STEPS = 2_300
#: the real pretrained models (notebooks 10 and 11: MiniLM, SmolLM2) get a larger budget
REAL_MODEL_BUDGET_STEPS = 8_000
REAL_MODEL_NOTEBOOKS = ("10_", "11_")
TOTAL_BUDGET_STEPS = 34_000
REFSTEP = Path(__file__).resolve().parent / "tools" / "refstep.py"

_notebook_seconds: dict[str, float] = defaultdict(float)
#: the reference step timed as each notebook was about to start, in run order: (path, ms or None)
_step_at_start: list[tuple[str, float | None]] = []


def _notebook(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    return path if path.endswith(".ipynb") else None


def pytest_runtest_logstart(nodeid, location):
    # called before an item's setup, so the timing stays out of the notebook's seconds
    path = _notebook(nodeid)
    if path and (not _step_at_start or _step_at_start[-1][0] != path):
        _step_at_start.append((path, reference_step_ms()))


def pytest_runtest_logreport(report):
    path = _notebook(report.nodeid)
    if path:
        _notebook_seconds[path] += report.duration


def reference_step_ms() -> float | None:
    """This machine's reference step in ms (median of 5 rounds), or None without the tool."""
    if not REFSTEP.is_file():
        return None
    try:
        run = subprocess.run([sys.executable, str(REFSTEP)], capture_output=True, text=True,
                             timeout=120, check=True)  # fmt: skip
        return float(run.stdout.split()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def budget_steps(path: str) -> int:
    """The budget in reference steps of the notebook at ``path`` (a node id's file part)."""
    return (
        REAL_MODEL_BUDGET_STEPS
        if Path(path).name.startswith(REAL_MODEL_NOTEBOOKS)
        else NOTEBOOK_BUDGET_STEPS
    )


def notebook_steps_ms(starts, end_ms):
    """``{path: step ms}``: each notebook's reference step, the mean of the timings just before
    it and just after it (the next notebook's start, or ``end_ms`` for the last); a timing that
    failed (None) is left out, and a notebook with neither gets None. ``starts``: ``(path, ms)``
    in run order. A notebook run twice in one session keeps its last pair."""
    after = [ms for _, ms in starts[1:]] + [end_ms]
    out = {}
    for (path, before), next_ms in zip(starts, after):
        timed = [t for t in (before, next_ms) if t is not None]
        out[path] = sum(timed) / len(timed) if timed else None
    return out


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    from ftnotes.reproduce import machine

    write = terminalreporter.write_line
    terminalreporter.section("notebook wall times (all cells)")
    end_ms = reference_step_ms()
    step = notebook_steps_ms(_step_at_start, end_ms)
    timings = [ms for _, ms in _step_at_start if ms is not None] + ([end_ms] if end_ms else [])
    m = machine()
    write(f"CPU: {m['cpu']} ({m['cpu_capability']}), {m['threads']} torch threads in pytest "
          f"(notebooks set 1), torch {m['torch_version']}")  # fmt: skip
    if not timings:
        write(f"reference step: unavailable ({REFSTEP} not found); times in seconds only")
    else:
        write(f"reference step (python {REFSTEP.relative_to(REFSTEP.parents[1])}): timed before "
              f"each notebook and after the last, {len(timings)} timings, {min(timings):.2f}-"
              f"{max(timings):.2f} ms, median {statistics.median(timings):.2f} ms; each notebook "
              "counts against the mean of the two timings beside it")  # fmt: skip
    write(f"{'seconds':>8}  {'ref ms':>6}  {'ref steps':>9}  notebook (budget "
          f"{NOTEBOOK_BUDGET_STEPS:,} steps each, {REAL_MODEL_BUDGET_STEPS:,} for the real "
          "models' 10 and 11)")  # fmt: skip
    steps = {path: seconds * 1e3 / step[path] if step.get(path) else float("nan")
             for path, seconds in sorted(_notebook_seconds.items())}  # fmt: skip
    for path, n in steps.items():
        flag = "  OVER BUDGET" if n > budget_steps(path) else ""  # nan compares False
        write(f"{_notebook_seconds[path]:8.1f}  {step.get(path) or float('nan'):6.2f}  {n:9,.0f}  "
              f"{path}{flag}")  # fmt: skip
    total = sum(_notebook_seconds.values())
    total_steps = sum(steps.values())  # nan if any notebook lacks a reference step
    flag = "  OVER BUDGET" if total_steps > TOTAL_BUDGET_STEPS else ""
    write(f"{total:8.1f}  {'':6}  {total_steps:9,.0f}  total over {len(_notebook_seconds)} "
          f"notebooks (budget {TOTAL_BUDGET_STEPS:,}){flag}")  # fmt: skip
