"""Quizzes: every question has exactly one right option; answers explain; bad ids are clear;
the bank cannot be gamed (right answers spread over the letters, not the longest option) and
every question is asked in its notebook."""

import collections
import json
import pathlib

import pytest

from ftnotes.exercises import answer, list_quizzes, quiz, show_answer
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


def test_the_right_option_is_not_given_away_by_its_length():
    # "pick the longest" must not pass: wrong options are as long as the right one
    longest = 0
    for qid, (_, options) in QUIZZES.items():
        right = next(len(t) for t, ok, _ in options if ok)
        wrong = max(len(t) for t, ok, _ in options if not ok)
        assert right <= 1.25 * wrong, f"{qid}: right option {right} chars, longest wrong {wrong}"
        longest += right > wrong
    assert longest <= len(QUIZZES) / 2, f"the right option is the longest in {longest} quizzes"


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
