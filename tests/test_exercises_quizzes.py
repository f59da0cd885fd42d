"""Quizzes: every question has exactly one right option; answers explain; bad ids are clear;
the bank cannot be gamed (right answers spread over the letters, not the longest or shortest
option, no hedged right option, no straw-man distractor); every notebook asks a quiz and every
question is asked in its notebook."""

import collections
import json
import pathlib
import re

import pytest

from ftnotes.exercises import answer, list_quizzes, quiz, show_answer
from ftnotes.exercises.core import known_notebooks
from ftnotes.exercises.quiz_bank import QUIZZES
from ftnotes.exercises.quizzes import LETTERS, quiz_widget

REQUIRED = [
    "00_strategy_small_near", "01_full_ft_earns_cost", "01_llrd_assumption", "03_why_b_zero",
    "04_prompt_no_merge", "05_no_test_tuning", "05_warmup_protects",
]  # fmt: skip


def test_required_topics_and_olympiad_questions_exist():
    assert set(REQUIRED) <= set(QUIZZES)
    assert len(list_quizzes("06")) >= 3 and len(list_quizzes(6)) == len(list_quizzes("06"))


@pytest.mark.parametrize("qid", sorted(QUIZZES))
def test_one_right_option_and_every_answer_explains(qid):
    question, options = QUIZZES[qid]
    assert sum(correct for _, correct, _ in options) == 1
    for i, (text, correct, why) in enumerate(options):
        result = answer(qid, LETTERS[i])
        assert result.passed == correct
        prefix = "Right: " if correct else "Not quite: "
        assert result.message.startswith(prefix) and why in result.message
        assert answer(qid, LETTERS[i].upper()).passed == correct
        assert answer(qid, text).passed == correct  # the option's text works too


def right_letter(qid):
    return LETTERS[next(i for i, o in enumerate(QUIZZES[qid][1]) if o[1])]


def test_specific_explanations():
    assert "B·A = 0" in answer("03_why_b_zero", right_letter("03_why_b_zero")).message
    wrong = answer("03_why_b_zero", "a")
    assert not wrong and "memory" in wrong.message and "B·A = 0" not in wrong.message
    assert "merged" in answer("04_prompt_no_merge", right_letter("04_prompt_no_merge")).message
    assert "Not quite" in answer("05_warmup_protects", "a").message


def test_right_answers_are_spread_over_the_letters():
    # "always (b)" must not pass: every letter that all quizzes offer is right about equally often
    shared = min(len(options) for _, options in QUIZZES.values())
    counts = collections.Counter(right_letter(q) for q in QUIZZES)
    spread = [counts[LETTERS[i]] for i in range(shared)]
    assert max(spread) - min(spread) <= 2, counts
    assert max(counts.values()) <= len(QUIZZES) / 2, counts


def _lengths(qid):
    options = QUIZZES[qid][1]
    right = next(len(t) for t, ok, _ in options if ok)
    return right, [len(t) for t, ok, _ in options if not ok]


def test_the_right_option_is_not_given_away_by_its_length():
    # "pick the longest" (or "the shortest") must not pass: with 3-4 options a length that
    # told nothing would pick the right one in 25-33% of questions; a tie counts as longest.
    longest = [q for q in QUIZZES if _lengths(q)[0] >= max(_lengths(q)[1])]
    shortest = [q for q in QUIZZES if _lengths(q)[0] <= min(_lengths(q)[1])]
    assert len(longest) <= 0.3 * len(QUIZZES), f"the right option is the longest in {longest}"
    assert len(shortest) <= 0.3 * len(QUIZZES), f"the right option is the shortest in {shortest}"
    for qid in QUIZZES:
        right, wrong = _lengths(qid)
        assert right <= 1.25 * max(wrong), f"{qid}: right {right} chars, longest wrong {max(wrong)}"


#: Words that make an option right by covering every case ("A, or B"; "A, unless B"; "A, then B
#: if A falls short"): a right option makes one claim, like the wrong ones.
HEDGES = re.compile(r"\b(or|unless|either|otherwise|then|if)\b")

#: Distractors that fail on sight, met in earlier versions of the bank: an option must be
#: something a student could believe.
STRAW_MEN = re.compile(r"hard-?code|scored on the test set|copy the (test )?labels", re.I)


@pytest.mark.parametrize("qid", sorted(QUIZZES))
def test_right_options_make_one_claim_and_wrong_ones_are_plausible(qid):
    question, options = QUIZZES[qid]
    right = next(t for t, ok, _ in options if ok)
    assert not HEDGES.search(right), f"{qid}: the right option hedges: {right!r}"
    for text, ok, _ in options:
        assert ok or not STRAW_MEN.search(text), f"{qid}: a straw-man option: {text!r}"


def test_every_notebook_asks_a_quiz():
    notebooks = known_notebooks()  # found in notebooks/, not listed by hand
    assert {"00", "07", "08", "09"} <= set(notebooks), notebooks
    missing = [nb for nb in notebooks if not list_quizzes(nb)]
    assert not missing, f"notebooks without a quiz: {missing}"


def test_every_quiz_is_asked_in_its_notebook():
    root = pathlib.Path(__file__).resolve().parents[1]
    for qid in QUIZZES:
        (path,) = root.glob(f"notebooks/{qid[:2]}_*.ipynb")
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert f'quiz("{qid}")' in code, f"{path.name} never asks quiz {qid!r}"


def test_unknown_ids_and_choices_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown quiz id 'nope'.*Valid ids: \[.*03_why_b_zero"):
        answer("nope", "a")
    with pytest.raises(ValueError, match="Did you mean '03_why_b_zero'"):
        quiz("03_why_b_zer0")
    with pytest.raises(ValueError, match=r"choice must be one of \['a', 'b', 'c', 'd'\]"):
        answer("03_why_b_zero", "e")


def test_plain_text_quiz_and_show_answer(capsys):
    quiz("03_why_b_zero", widget=False)
    out = capsys.readouterr().out
    assert "(a)" in out and "(d)" in out and "answer('03_why_b_zero', 'a')" in out
    show_answer("03_why_b_zero")
    assert capsys.readouterr().out.startswith(f"({right_letter('03_why_b_zero')})")


def test_widget_checks_the_chosen_option():
    box = quiz_widget("05_no_test_tuning")
    box.button.click()
    assert box.result is None and "Pick an option" in box.feedback.value
    box.radio.value = right_letter("05_no_test_tuning")
    box.button.click()
    assert box.result.passed and "Right" in box.feedback.value
    box.radio.value = "a"
    box.button.click()
    assert not box.result.passed and "Not quite" in box.feedback.value
