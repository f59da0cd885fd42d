"""Self-checking exercises, graded hints, reference solutions and short quizzes.

In a notebook::

    from ftnotes.exercises import check, hint, show_solution, stub, quiz, answer
    stub("03_lora_layer")                  # the starter code the notebook cell shows
    check("03_lora_layer", LoRALinear)     # first specific failure, or what was verified
    hint("03_lora_layer")                  # next hint level on each call
    quiz("03_why_b_zero")                  # radio buttons in Jupyter, text elsewhere
    answer("03_why_b_zero", "b")           # "Right: ..." or "Not quite: ..."

A check never raises on a wrong answer, so notebooks run top to bottom.
"""

from . import nb00, nb01, nb02, nb03, nb04, nb05, nb07, nb09  # noqa: F401  (importing registers the exercises)
from .core import Result, check, hint, list_exercises, show_solution, stub
from .quizzes import answer, list_quizzes, quiz, show_answer

__all__ = [
    "Result",
    "answer",
    "check",
    "hint",
    "list_exercises",
    "list_quizzes",
    "quiz",
    "show_answer",
    "show_solution",
    "stub",
]
