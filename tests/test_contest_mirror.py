"""The language-model task ``mirror_keep``: prompts in, JSONL text answers out, ½ · new + ½ · old
by exact match with per-item credit; boards drawn from the grading run's secret, none of their
prompts public. Cheap checks only: the baseline's and reference's numbers are in the slow tests
of test_contest.py, and test_grade.py grades the starter once in the sandbox."""

import json

import pytest

from ftnotes import contest
from ftnotes.contest.core import ID_OFFSET, Secret
from ftnotes.contest.tasks import mirror_keep as mk
from ftnotes.lm import corpus

TASK = contest.get_task("mirror_keep")


def test_public_split_has_the_stated_parts_and_no_answers():
    data, y = TASK.build(0, "public")
    assert len(data.train[0]) == mk.N_TRAIN and len(data.val[1]) == mk.N_VAL
    assert len(data.extra["source_train"][0]) == mk.N_REPLAY
    assert all(isinstance(x, str) for x in data.test_x) and len(y) == len(data.test_x)
    skills = [e.skill for e in y]
    assert skills.count("mirror") == mk.N_MIRROR_TEST
    assert all(skills.count(s) == mk.N_SKILL_TEST for s in corpus.SOURCE_SKILLS)
    assert [e.prompt for e in y] == list(data.test_x)  # the answers are in the order of the ids
    assert all(r.skill != "mirror" and not corpus.is_target_like(r)
               for r in mk.examples(data.extra["source_train"]))  # fmt: skip
    assert data.extra["source_val"][1] and not set(data.train[0]) & set(data.test_x)


def test_a_board_comes_from_the_secret_and_shares_no_prompt_with_public_sets():
    secret = Secret.new()
    public, _ = TASK.build(0, "public")
    board, y = TASK.build(0, "live", secret)
    again, y2 = TASK.build(0, "live", Secret(secret.key))
    assert list(board.test_x) == list(again.test_x) and y == y2
    other, _ = TASK.build(0, "live", Secret.new())
    assert set(other.test_x) != set(board.test_x)
    assert board.test_ids.min() == ID_OFFSET["live"]
    shown = set(public.test_x) | set(public.val[0]) | set(public.extra["source_val"][0])
    assert not set(board.test_x) & (shown | set(public.train[0]))
    final, _ = TASK.build(0, "final", secret)
    assert set(final.test_x) != set(board.test_x)


@pytest.mark.parametrize("bad, message", [
    ({"seed": -1}, "seed must be an int >= 0, got -1"),
    ({"split": "hidden"}, "exists only in the grader's process"),
    ({"split": "live"}, "built only with the grading run's Secret"),
])  # fmt: skip
def test_bad_builds_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        TASK.build(**{"seed": 0, "split": "public", **bad})


def test_score_is_half_new_half_old_with_per_item_credit():
    _, y = TASK.build(0, "public")
    right = [e.answer for e in y]
    assert TASK.score(right, y) == {"score": 1.0, "new": 1.0, "old": 1.0}
    only_new = [e.answer if e.skill == "mirror" else "?" for e in y]
    assert TASK.score(only_new, y)["score"] == pytest.approx(0.5)
    padded = [f"  {a} " for a in right]  # surrounding spaces do not count
    assert TASK.score(padded, y)["score"] == 1.0
    first_old = next(i for i, e in enumerate(y) if e.skill != "mirror")
    missing = right[:first_old] + [None] + right[first_old + 1 :]
    assert TASK.score(missing, y)["old"] == pytest.approx(1 - 1 / (5 * mk.N_SKILL_TEST))


def test_a_jsonl_submission_is_read_item_by_item(tmp_path):
    ids, y = TASK.answers("public")
    answers = [e.answer for e in y]
    path = TASK.write_submission(ids, answers, tmp_path / TASK.submission)
    assert path.name == "submission_mirror_keep.jsonl"
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"id": int(ids[0]), "answer": answers[0]}
    lines[1] = json.dumps({"id": int(ids[1]), "answer": 7})  # the wrong type: that item scores 0
    lines[2] = "not json"
    path.write_text("\n".join(lines) + "\n")
    result = TASK.grade_file(path)
    assert result["score"] < 1.0 and "2 of 200 items scored 0" in result["note"]
    with pytest.raises(ValueError, match="answers must be strings"):
        TASK.write_submission(ids, [1] * len(ids), tmp_path / "x.jsonl")


def test_the_statement_names_the_file_the_limit_and_the_rule():
    text = TASK.statement
    assert "submission_mirror_keep.jsonl" in text and f"{mk.TIME_LIMIT_S:.0f} s" in text
    assert "against the rules" in text and "½ · exact match" in text
