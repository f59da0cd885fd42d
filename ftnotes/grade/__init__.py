"""The contest grader: ``python -m ftnotes.grade TASK NOTEBOOK.ipynb`` (or ``TASK FOLDER/`` for
a coach's leaderboard), in a sandbox, on a hidden split whose answers stay in this process.

* :mod:`~ftnotes.grade.grader`: ``grade(task, notebook)``, one run (see its docstring);
* :mod:`~ftnotes.grade.sandbox`: the bubblewrap sandbox the kernel runs in;
* :mod:`~ftnotes.grade.run`: running the cells under one wall clock, the log;
* :mod:`~ftnotes.grade.history`: the grade history, written by the grader only;
* :mod:`~ftnotes.grade.leaderboard`: every notebook of a folder, ranked (CSV and HTML);
* :mod:`~ftnotes.grade.cli`: the command line.
"""

from ftnotes.grade.cli import main
from ftnotes.grade.grader import grade, report_text
from ftnotes.grade.history import HISTORY_ENV, ROOT, append_history, history_path, read_history
from ftnotes.grade.leaderboard import grade_folder
from ftnotes.grade.sandbox import probe as sandbox_probe

__all__ = ["HISTORY_ENV", "ROOT", "append_history", "grade", "grade_folder", "history_path",
           "main", "read_history", "report_text", "sandbox_probe"]  # fmt: skip
