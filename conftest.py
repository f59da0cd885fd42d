"""Root pytest hooks: a per-notebook wall-time summary at the end of every run.

nbval reports one test item per cell; students and reviewers care about whole notebooks, so the
cells' setup+call+teardown times are summed per file. Machines differ in speed by up to 2.5x, so
the budgets (below) are in *reference steps*: one TinyViT-sized training step at batch 32 on
one thread, as timed by ``tools/refstep.py`` (plain torch, in the repository, so a fresh clone
measures it too). The summary prints the CPU, that step time and each notebook in steps, and
flags a notebook over its budget. The step is timed twice, before the first test and after the
last, and the budgets use the mean: on a shared machine one timing moved from 9 to 18 ms within
an hour while the notebooks' seconds barely moved, so a single timing decided the verdict.
"""

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
_step_before: list[float | None] = []  # the reference step timed before the first test


def pytest_collection_finish(session):
    if any(item.nodeid.split("::", 1)[0].endswith(".ipynb") for item in session.items):
        _step_before.append(reference_step_ms())


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
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


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    from ftnotes.reproduce import machine

    write = terminalreporter.write_line
    terminalreporter.section("notebook wall times (all cells)")
    before, after = (_step_before or [None])[0], reference_step_ms()
    timed = [t for t in (before, after) if t is not None]
    step = sum(timed) / len(timed) if timed else None
    m = machine()
    write(f"CPU: {m['cpu']} ({m['cpu_capability']}), {m['threads']} torch threads in pytest "
          f"(notebooks set 1), torch {m['torch_version']}")  # fmt: skip
    if step is None:
        write(f"reference step: unavailable ({REFSTEP} not found); times in seconds only")
    else:
        when = " and ".join(f"{t:.2f} ms {w}" for t, w in zip((before, after), ("before", "after"))
                            if t is not None)  # fmt: skip
        write(f"reference step: {step:.2f} ms (timed {when} the tests; the budgets use the mean; "
              f"python {REFSTEP.relative_to(REFSTEP.parents[1])})")  # fmt: skip
    write(f"{'seconds':>8}  {'ref steps':>9}  notebook (budget {NOTEBOOK_BUDGET_STEPS:,} steps each, "
          f"{REAL_MODEL_BUDGET_STEPS:,} for the real models' 10 and 11)")  # fmt: skip
    for path, seconds in sorted(_notebook_seconds.items()):
        steps = seconds * 1e3 / step if step else float("nan")
        flag = "  OVER BUDGET" if step and steps > budget_steps(path) else ""
        write(f"{seconds:8.1f}  {steps:9,.0f}  {path}{flag}")
    total = sum(_notebook_seconds.values())
    steps = total * 1e3 / step if step else float("nan")
    flag = "  OVER BUDGET" if step and steps > TOTAL_BUDGET_STEPS else ""
    write(f"{total:8.1f}  {steps:9,.0f}  total over {len(_notebook_seconds)} notebooks "
          f"(budget {TOTAL_BUDGET_STEPS:,}){flag}")  # fmt: skip
