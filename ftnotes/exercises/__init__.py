"""Self-checking exercises, graded hints, reference solutions and short quizzes.

In a notebook::

    from ftnotes.exercises import check, hint, show_solution, stub, quiz, answer
    stub("03_lora_layer")                  # the starter code the notebook cell shows
    check("03_lora_layer", LoRALinear)     # first specific failure, or what was verified
    hint("03_lora_layer")                  # next hint level on each call
    quiz("03_why_b_zero")                  # radio buttons in Jupyter, text elsewhere
    answer("03_why_b_zero", "c")           # "Right: ..." or "Not quite: ..."

A check never raises on a wrong answer, so notebooks run top to bottom.

Each notebook's exercises live in its module ``nbNN.py`` (checkers, stubs, hints and the
reference solutions together), plus ``nbNN_<topic>.py`` for an exercise that would push
``nbNN.py`` past 400 lines; they are found by name, so a new module needs no edit here.
"""

import importlib
import pkgutil
import re

from .core import Result, check, hint, list_exercises, show_solution, stub
from .predict import compare_prediction, prediction_question
from .quizzes import answer, list_quizzes, quiz, show_answer

EXERCISE_MODULES = sorted(
    m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"nb\d\d(_[a-z0-9_]+)?", m.name)
)
for _name in EXERCISE_MODULES:  # importing a module registers its exercises
    importlib.import_module(f"{__name__}.{_name}")

__all__ = [
    "Result",
    "answer",
    "check",
    "compare_prediction",
    "hint",
    "list_exercises",
    "list_quizzes",
    "prediction_question",
    "quiz",
    "show_answer",
    "show_solution",
    "stub",
]
