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

import importlib
from collections.abc import Iterator, Mapping

from ftnotes.contest.core import BOARDS, ContestData, ContestTask, Secret, SubmissionError
from ftnotes.contest.result import Result

#: the tasks, in the order the course meets them; each is ``ftnotes.contest.tasks.<name>.TASK``
TASK_MODULES = ("keep_glyphs", "new_digits", "far_sprint", "frozen_extend", "mirror_keep",
                "definitions")  # fmt: skip


class _Tasks(Mapping):
    """name -> ContestTask, each task's module imported on first use: a vision starter need not
    import transformers and scikit-learn for the text tasks (about 4 s of its 6 s start)."""

    def __getitem__(self, name: str) -> ContestTask:
        if name not in TASK_MODULES:
            raise KeyError(name)
        return importlib.import_module(f"ftnotes.contest.tasks.{name}").TASK

    def __iter__(self) -> Iterator[str]:
        return iter(TASK_MODULES)

    def __len__(self) -> int:
        return len(TASK_MODULES)


TASKS: Mapping[str, ContestTask] = _Tasks()


def task_names() -> tuple[str, ...]:
    return tuple(TASKS)


def get_task(name: str) -> ContestTask:
    """The task called ``name``; an unknown name raises ``ValueError`` listing the real ones."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {task_names()}, got {name!r}")
    return TASKS[name]


__all__ = ["BOARDS", "TASKS", "ContestData", "ContestTask", "Result", "Secret", "SubmissionError",
           "get_task", "task_names"]  # fmt: skip
