"""Predict, then run: None is "not attempted", a guess is compared with its tolerance, every
prediction id is used in its notebook, and bad input is a clear error."""

import json
import pathlib

import pytest

from ftnotes.exercises import compare_prediction, prediction_question
from ftnotes.exercises.predict import PREDICTIONS

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_none_is_not_attempted_and_asks_the_question():
    r = compare_prediction("00_margin_at_5", None, 0.02)
    assert not r.passed and r.status == "not attempted"
    assert prediction_question("00_margin_at_5") in r.message


def test_numbers_within_the_tolerance_pass_and_others_explain():
    assert compare_prediction("00_margin_at_5", 0.05, 0.02).passed
    far = compare_prediction("00_margin_at_5", 0.4, 0.02)
    assert not far.passed and "off by +0.380" in far.message and "Why:" in far.message


def test_choices_must_match():
    assert compare_prediction("01_best_lr", 1e-3, 1e-3).passed
    assert not compare_prediction("01_best_lr", 3e-3, 1e-3).passed


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown prediction id 'nope'"):
        compare_prediction("nope", 1, 1)
    with pytest.raises(ValueError, match="prediction must be a finite number"):
        compare_prediction("06_baseline_kept", "0.5", 0.1)


@pytest.mark.parametrize("pid", sorted(PREDICTIONS))
def test_every_prediction_is_asked_in_its_notebook(pid):
    (path,) = ROOT.glob(f"notebooks/{pid[:2]}_*.ipynb")
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert f'compare_prediction("{pid}"' in code
