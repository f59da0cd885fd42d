"""Quizzes: every question has exactly one right option; answers explain; bad ids are clear."""

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


def test_specific_explanations():
    assert "B·A = 0" in answer("03_why_b_zero", "b").message
    wrong = answer("03_why_b_zero", "a")
    assert not wrong and "memory" in wrong.message and "B·A = 0" not in wrong.message
    assert "merged" in answer("04_prompt_no_merge", "b").message
    assert "Not quite" in answer("05_warmup_protects", "a").message


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
    assert capsys.readouterr().out.startswith("(b)")


def test_widget_checks_the_chosen_option():
    box = quiz_widget("05_no_test_tuning")
    box.button.click()
    assert box.result is None and "Pick an option" in box.feedback.value
    box.radio.value = "b"
    box.button.click()
    assert box.result.passed and "Right" in box.feedback.value
    box.radio.value = "a"
    box.button.click()
    assert not box.result.passed and "Not quite" in box.feedback.value
