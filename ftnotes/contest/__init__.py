"""The practice set in contest format: timed tasks graded on a hidden split (``ftnotes.grade``).

Each task is one module in ``ftnotes/contest/tasks/`` with its statement, data (public and
hidden test splits), scorer (:mod:`~ftnotes.contest.metrics`), baseline and reference solution;
adding a task is one more module and one more line in :data:`TASKS`. The old + new classes
tasks share their data (:mod:`~ftnotes.contest.oldnew`) and their tools (head expansion,
replay, distillation, timed runs: :mod:`~ftnotes.contest.toolbox`); ``keep_glyphs`` is
notebook 06's task.

In a notebook::

    from ftnotes import contest
    task = contest.get_task("new_digits")
    print(task.statement)
    data = task.load()                                  # public test inputs, no test labels
    task.write_submission(data.test_ids, predictions)   # the file the grader scores

The grader (:mod:`ftnotes.grade`) runs the notebook in a sandbox on a hidden split (the live or
the final board) that only it can build (:class:`~ftnotes.contest.core.Secret`).
"""

from ftnotes.contest.core import BOARDS, ContestData, ContestTask, Secret, SubmissionError
from ftnotes.contest.result import Result
from ftnotes.contest.tasks import (
    definitions,
    far_sprint,
    frozen_extend,
    keep_glyphs,
    mirror_keep,
    new_digits,
)

TASKS: dict[str, ContestTask] = {t.name: t for t in (keep_glyphs.TASK, new_digits.TASK,
                                                     far_sprint.TASK, frozen_extend.TASK,
                                                     mirror_keep.TASK, definitions.TASK)}  # fmt: skip


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_task(name: str) -> ContestTask:
    """The task called ``name``; an unknown name raises ``ValueError`` listing the real ones."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {task_names()}, got {name!r}")
    return TASKS[name]


__all__ = ["BOARDS", "TASKS", "ContestData", "ContestTask", "Result", "Secret", "SubmissionError",
           "get_task", "task_names"]  # fmt: skip
