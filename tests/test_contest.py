"""The practice set: registry, disjoint splits, hidden boards only with the grading run's secret,
the jitter, hidden inputs served to the kernel, baseline vs reference margins per board."""

import functools

import pytest
import torch

from ftnotes import contest
from ftnotes.contest import core
from ftnotes.contest.core import BOARDS, INPUTS_ENV, SPLIT_ENV, Secret, digits_contest_split
from ftnotes.contest.formats import JsonlAnswers
from ftnotes.contest.measure import measure_secret
from ftnotes.contest.oldnew import glyph_test

TASKS = contest.task_names()
# tasks whose test inputs are images (jittered on a board) and whose training fits a unit test;
# a text task's (JSONL) inputs are prompts, and its language-model runs take minutes: slow
TEXT = tuple(n for n in TASKS if isinstance(contest.get_task(n).format, JsonlAnswers))
VISION = tuple(n for n in TASKS if n not in TEXT)
SLOW_FOR_TEXT = [pytest.param(n, marks=pytest.mark.slow) if n in TEXT else n for n in TASKS]


def same(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else list(a) == list(b)


def test_registry_has_the_four_vision_tasks_and_rejects_unknown_names():
    assert set(TASKS) >= {"keep_glyphs", "new_digits", "far_sprint", "frozen_extend"}
    with pytest.raises(ValueError, match="new_digits.*got 'nope'"):
        contest.get_task("nope")


def test_hidden_digits_are_disjoint_from_every_public_part():
    parts = digits_contest_split()
    assert set(parts) == {"train", "val", "public", "live", "final"}
    for board in BOARDS:
        hidden = set(parts[board].tolist())
        for name in set(parts) - {board}:
            assert not hidden & set(parts[name].tolist()), (board, name)
    from ftnotes.data import _digits_arrays

    x, _ = _digits_arrays()
    assert sum(len(p) for p in parts.values()) == len(x)
    assert abs(len(parts["live"]) - len(parts["final"])) <= 10  # two halves of the old 20%
    rows = {x[i].tobytes() for k in ("train", "val", "public") for i in parts[k]}
    # the UCI set has a few pixel-identical images; none of them may cross into a board
    dup = sum(x[i].tobytes() in rows for b in BOARDS for i in parts[b])
    assert dup <= 2, f"{dup} hidden digits are pixel-identical to a public one"


def test_a_secret_makes_new_glyphs_and_never_shows_its_key():
    a, b = Secret.new(), Secret.new()
    assert a.key != b.key and a.key.hex() not in repr(a)
    assert a.seed("glyphs:live") != a.seed("glyphs:final") and a.seed("x") == Secret(a.key).seed("x")
    hidden = {img.numpy().tobytes() for img in glyph_test("live", a)[0]}
    assert torch.equal(glyph_test("live", a)[0], glyph_test("live", Secret(a.key))[0])
    from ftnotes.data import glyph_split

    for name, x in (("public", glyph_test("public")[0]), ("other secret", glyph_test("live", b)[0]),
                    ("train", glyph_split("train")[0])):  # fmt: skip
        same = sum(img.numpy().tobytes() in hidden for img in x)
        assert same / len(x) < 0.02, f"{same} {name} glyphs equal a hidden one"


@pytest.mark.parametrize("name", TASKS)
def test_a_board_needs_the_grading_runs_secret(name):
    task = contest.get_task(name)
    with pytest.raises(ValueError, match="exists only in the grader's process"):
        task.answers("hidden")
    with pytest.raises(ValueError, match="exists only in the grader's process"):
        task.build(0, "hidden")
    for board in BOARDS:
        with pytest.raises(ValueError, match=f"the {board} board is built only with the grading"):
            task.answers(board)
        with pytest.raises(ValueError, match="Secret"):
            task.build(0, board, secret=b"guess")
    ids, y = task.answers("public")
    assert len(ids) == len(y) and ids.min() == 0


@pytest.mark.parametrize("name", VISION)
def test_boards_are_shuffled_and_jittered_by_the_secret(name):
    task, secret = contest.get_task(name), Secret.new()
    public, _ = task.build(0, "public")
    data, y = task.build(0, "live", secret)
    again, y2 = task.build(0, "live", Secret(secret.key))
    assert torch.equal(data.test_x, again.test_x) and torch.equal(y, y2)  # same secret, same split
    other, y3 = task.build(0, "live", Secret.new())
    assert not torch.equal(y, y3)  # another secret, another order (and other glyphs)
    assert data.test_ids.min() == core.ID_OFFSET["live"] and public.test_ids.max() < 100_000
    with torch.no_grad():
        on_grid = (data.test_x * 16).round() / 16
    moved = (data.test_x - on_grid).abs()
    assert 0 < moved.max() <= core.JITTER + 1e-7 and (moved > 0).float().mean() > 0.3
    assert data.test_x.min() >= 0 and data.test_x.max() <= 1


@pytest.mark.parametrize("name", TASKS)
def test_load_serves_public_inputs_or_the_graders_hidden_ones_never_labels(name, monkeypatch,
                                                                           tmp_path):  # fmt: skip
    task = contest.get_task(name)
    monkeypatch.delenv(SPLIT_ENV, raising=False)
    public = task.load()
    assert public.split == "public"
    monkeypatch.setenv(SPLIT_ENV, "hidden")
    with pytest.raises(ValueError, match="only the grader serves the hidden split"):
        task.load()
    served, (ids, y) = task.hidden("live", Secret.new())
    assert set(served) == {"task", "ids", "x", "extra"}  # inputs only
    torch.save(served, tmp_path / "inputs.pt")
    monkeypatch.setenv(INPUTS_ENV, str(tmp_path / "inputs.pt"))
    hidden = task.load()
    assert hidden.split == "hidden" and torch.equal(hidden.test_ids, ids)
    assert same(hidden.test_x, served["x"]) and len(hidden.train[1]) == len(public.train[1])
    # no test labels ride along; a task-aware task tells each item's group, a bool
    assert not any("test" in k for k in hidden.extra if k != "test_is_old")
    if "test_is_old" in hidden.extra:
        assert torch.equal(hidden.extra["test_is_old"], y < 34)
    monkeypatch.setenv(SPLIT_ENV, "secret")
    with pytest.raises(ValueError, match=SPLIT_ENV):
        task.load()


def test_scoring_a_file_normalises_per_board(tmp_path):
    task, secret = contest.get_task("far_sprint"), Secret.new()
    ids, y = task.answers("final", secret=secret)
    path = task.write_submission(ids, y, tmp_path / "s.csv")
    result = task.grade_file(path, "final", secret=secret)
    assert result["score"] == 1.0 and result["note"] == ""
    assert result["points"] == pytest.approx(task.normalise(1.0, "final"))
    assert task.normalise(task.baseline_score["final"], "final") == pytest.approx(0)
    assert task.normalise(task.reference_score["live"]) == pytest.approx(100)
    assert task.normalise(0.0) == 0.0


@functools.cache  # the final board's seed 0 is in both margin tests (a minute for a text task)
def _scores(name, board, seed):
    task = contest.get_task(name)
    data, y = task.build(seed, board, measure_secret(seed))
    return (task.score(task.baseline(data, seed), y)["score"],
            task.score(task.reference(data, seed), y)["score"])  # fmt: skip


@pytest.mark.parametrize("name", SLOW_FOR_TEXT)
def test_reference_beats_baseline_by_the_stated_margin_and_the_numbers_hold(name):
    """Live board: 3 seeds, the statement's mean; final board: seed 0 (all 3: the slow test)."""
    torch.set_num_threads(1)
    task = contest.get_task(name)
    base, ref = zip(*(_scores(name, "live", s) for s in (0, 1, 2)))
    for b, r in zip(base, ref):
        assert r > b + task.margin, f"live: reference {r:.3f}, baseline {b:.3f}"
    assert sum(base) / 3 == pytest.approx(task.baseline_score["live"], abs=0.015)
    assert sum(ref) / 3 == pytest.approx(task.reference_score["live"], abs=0.015)
    b, r = _scores(name, "final", 0)
    assert r > b + task.margin, f"final: reference {r:.3f}, baseline {b:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("name", TASKS)
def test_the_final_boards_numbers_hold(name):
    torch.set_num_threads(1)
    task = contest.get_task(name)
    base, ref = zip(*(_scores(name, "final", s) for s in (0, 1, 2)))
    assert all(r > b + task.margin for b, r in zip(base, ref))
    assert sum(base) / 3 == pytest.approx(task.baseline_score["final"], abs=0.015)
    assert sum(ref) / 3 == pytest.approx(task.reference_score["final"], abs=0.015)


def test_a_text_task_goes_through_the_same_format(tmp_path, monkeypatch):
    """What a JSONL text task (issues 32/33) needs: list inputs and answers, concealed, served,
    read item by item and scored by exact match."""
    from ftnotes.contest.core import ContestData, ContestTask, conceal
    from ftnotes.contest.formats import JsonlAnswers
    from ftnotes.contest.metrics import exact_match

    words = [f"word {i}" for i in range(40)]

    def build(seed=0, split="public", secret=None):
        core.check_split(split, secret)
        part = {"public": words[:20], "live": words[20:30], "final": words[30:]}[split]
        ids, x, y = conceal(part, [w.upper() for w in part], split, secret, "echo", seed=1)
        return ContestData("echo", (words[:5], words[:5]), (words[5:8], words[5:8]), ids, x,
                           split), y  # fmt: skip

    task = ContestTask("echo", "Echo", "Say it louder.", 10.0, "submission_echo.jsonl", None,
                       build, exact_match, None, None, {"live": 0.0, "final": 0.0},
                       {"live": 1.0, "final": 1.0}, 0.5, answers_format=JsonlAnswers("text"))  # fmt: skip
    secret = Secret.new()
    served, (ids, y) = task.hidden("live", secret)
    torch.save(served, tmp_path / "inputs.pt")
    monkeypatch.setenv(SPLIT_ENV, "hidden")
    monkeypatch.setenv(INPUTS_ENV, str(tmp_path / "inputs.pt"))
    data = task.load()
    assert sorted(data.test_x) == words[20:30] and data.split == "hidden"
    answers = [x.upper() for x in data.test_x]
    answers[0] = 7  # one answer of the wrong type: refused by write, so written by hand
    path = tmp_path / "submission_echo.jsonl"
    task.write_submission(data.test_ids[1:], answers[1:], path)
    result = task.score_file(path, ids, y)
    assert result["score"] == pytest.approx(0.9) and result["points"] == pytest.approx(90)
    assert "1 of 10 items scored 0: 1 missing ids" in result["note"]
