"""Predict, then run: the student writes a prediction before a measured cell; the check compares.

A prediction is worth most when it is written down *before* the number is seen. So a notebook
cell holds ``MY_PREDICTION = None`` before a measurement, and after it
``compare_prediction(id, MY_PREDICTION, measured)`` says how close the guess was, and what the
gap teaches. ``None`` (not written yet) is "not attempted", never an error.
"""

from __future__ import annotations

import difflib

from ..checks import check_number
from .core import Result

PREDICTIONS = {
    "00_margin_at_5": (
        "At 5 labels per class and equal steps, by how much will full fine-tuning beat SmallCNN "
        "from scratch (mean test accuracy, a fraction: 0.2 = 20 points, negative if SmallCNN wins)?",
        0.05,
        "a strong architecture from scratch catches up fast once it has a few examples per class.",
    ),
    "01_best_lr": (
        "Which rate of LRS will give the best digits test accuracy?",
        None,
        "too small a rate learns too little in a few epochs; too large destroys the features.",
    ),
    "05_best_schedule": (
        "Which of the four schedules will reach the best validation accuracy?",
        None,
        "a high rate needs a warmup for the random head and a decay to settle.",
    ),
    "06_baseline_kept": (
        "What glyph test accuracy (a fraction) will the naive baseline keep after fine-tuning on "
        "the digits alone?",
        0.1,
        "rows that never see a glyph again sit on a body that moved for the digits.",
    ),
}
"""``id: (question, tolerance, lesson)``; tolerance ``None``: the answer is one of a set of
choices and must match exactly."""


def _get(id: str):
    if id not in PREDICTIONS:
        close = difflib.get_close_matches(str(id), PREDICTIONS, n=1)
        maybe = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown prediction id {id!r}.{maybe} Valid ids: {sorted(PREDICTIONS)}")
    return PREDICTIONS[id]


def prediction_question(id: str) -> str:
    """The question to answer before running the measured cell."""
    return _get(id)[0]


def compare_prediction(id: str, prediction, measured) -> Result:
    """Compare ``prediction`` (``None`` = not written yet) with the ``measured`` value."""
    question, tolerance, lesson = _get(id)
    if prediction is None:
        return Result(id, False, f"not attempted yet: {question} Write your guess in the cell "
                      "above the measurement, then re-run both.", "not attempted")  # fmt: skip
    if tolerance is None:
        right = prediction == measured
        msg = f"you predicted {prediction!r}, measured {measured!r}."
    else:
        check_number("prediction", prediction)
        gap = prediction - measured
        right = abs(gap) <= tolerance
        msg = (f"you predicted {prediction:.3f}, measured {measured:.3f} (off by {gap:+.3f}; "
               f"within {tolerance} counts as right).")  # fmt: skip
    verdict = "Close: " if right else "Surprised? "
    return Result(id, right, f"{verdict}{msg} Why: {lesson}", "passed" if right else "failed")
