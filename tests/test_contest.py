"""The practice set: registry, disjoint splits, submission checks, baseline vs reference margins."""

import numpy as np
import pytest
import torch

from ftnotes import contest
from ftnotes.contest.core import (
    SPLIT_ENV,
    SubmissionError,
    digits_contest_split,
    read_submission,
    write_submission,
)
from ftnotes.contest.oldnew import _glyph_test

TASKS = contest.task_names()


def test_registry_has_the_three_vision_tasks_and_rejects_unknown_names():
    assert set(TASKS) >= {"new_digits", "far_sprint", "frozen_extend"}
    with pytest.raises(ValueError, match="new_digits.*got 'nope'"):
        contest.get_task("nope")


def test_hidden_digits_are_disjoint_from_every_public_part():
    parts = digits_contest_split()
    hidden = set(parts["hidden"].tolist())
    for name in ("train", "val", "public"):
        assert not hidden & set(parts[name].tolist()), name
    from ftnotes.data import _digits_arrays

    x, _ = _digits_arrays()
    assert sum(len(p) for p in parts.values()) == len(x)
    rows = {x[i].tobytes() for k in ("train", "val", "public") for i in parts[k]}
    # the UCI set has a few pixel-identical images; none of them may cross into the hidden split
    dup = sum(x[i].tobytes() in rows for i in parts["hidden"])
    assert dup <= 2, f"{dup} hidden digits are pixel-identical to a public one"


def test_hidden_glyphs_are_new_renders():
    from ftnotes.data import glyph_split

    hidden = {img.numpy().tobytes() for img in _glyph_test("hidden")[0]}
    for name, x in (("public", _glyph_test("public")[0]), ("train", glyph_split("train")[0]),
                    ("val", glyph_split("val")[0])):  # fmt: skip
        same = sum(img.numpy().tobytes() in hidden for img in x)
        assert same / len(x) < 0.02, f"{same} {name} glyphs equal a hidden one"


@pytest.mark.parametrize("name", TASKS)
def test_load_serves_public_or_hidden_inputs_never_labels(name, monkeypatch):
    task = contest.get_task(name)
    monkeypatch.delenv(SPLIT_ENV, raising=False)
    public = task.load()
    monkeypatch.setenv(SPLIT_ENV, "hidden")
    hidden = task.load()
    assert public.split == "public" and hidden.split == "hidden"
    assert not set(public.test_ids.tolist()) & set(hidden.test_ids.tolist())
    assert len(hidden.test_x) == len(hidden.test_ids)
    # no test labels ride along; a task-aware task tells each item's group, a bool
    assert not any("test" in k for k in hidden.extra if k != "test_is_old")
    assert hidden.extra.get("test_is_old", torch.ones(1, dtype=torch.bool)).dtype == torch.bool
    monkeypatch.setenv(SPLIT_ENV, "secret")
    with pytest.raises(ValueError, match=SPLIT_ENV):
        task.load()


def test_submission_file_checks_name_what_is_wrong(tmp_path):
    ids = torch.arange(10) + 100
    path = tmp_path / "s.csv"
    with pytest.raises(SubmissionError, match="not written"):
        read_submission(path, ids, 5)
    write_submission(path, ids, torch.arange(10) % 5)
    assert torch.equal(read_submission(path, ids.flip(0), 5), (ids.flip(0) - 100) % 5)
    write_submission(path, ids[:7], torch.zeros(7, dtype=torch.long))
    with pytest.raises(SubmissionError, match=r"expected 10 rows, found 7; missing ids 107, 108, 109"):
        read_submission(path, ids, 5)
    write_submission(path, np.arange(20) + 100, np.zeros(20, dtype=int))
    with pytest.raises(SubmissionError, match=r"extra ids 110, 111, 112, 113, 114 and 5 more"):
        read_submission(path, ids, 5)
    write_submission(path, ids, torch.full((10,), 7))
    with pytest.raises(SubmissionError, match=r"labels must be in 0..4, found 7"):
        read_submission(path, ids, 5)
    path.write_text("id,label\n100,0.5\n")
    with pytest.raises(SubmissionError, match="labels must be integers, found '0.5'"):
        read_submission(path, ids, 5)
    path.write_text("image,class\n100,1\n")
    with pytest.raises(SubmissionError, match="header id,label"):
        read_submission(path, ids, 5)
    path.write_text("id,label\n100,1\n100,2\n")
    with pytest.raises(SubmissionError, match="duplicate ids 100"):
        read_submission(path, ids, 5)
    with pytest.raises(ValueError, match="integers"):
        write_submission(path, ids, torch.rand(10))


def test_normalise_puts_baseline_at_0_and_reference_at_100():
    task = contest.get_task("far_sprint")
    assert task.normalise(task.baseline_score) == pytest.approx(0)
    assert task.normalise(task.reference_score) == pytest.approx(100)
    assert task.normalise(0.0) == 0.0


@pytest.mark.parametrize("name", TASKS)
def test_reference_beats_baseline_by_the_stated_margin_on_3_seeds(name):
    torch.set_num_threads(1)
    task = contest.get_task(name)
    for seed in (0, 1, 2):
        data, y = task.build(seed, "hidden")
        base = task.score(task.baseline(data, seed), y)["score"]
        ref = task.score(task.reference(data, seed), y)["score"]
        assert ref > base + task.margin, f"seed {seed}: reference {ref:.3f}, baseline {base:.3f}"
        if seed == 0:  # the numbers the statement prints
            assert base == pytest.approx(task.baseline_score, abs=0.02)
            assert ref == pytest.approx(task.reference_score, abs=0.02)
