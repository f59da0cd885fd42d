"""The contest format shared by every practice task: data with a public and a hidden test split,
submission files, scoring and the normalised score.

At IOAI the notebook *is* the submission: the graders re-run it offline, within the statement's
time limit, with a hidden test set swapped in for the public one, and compare the output file it
writes with the hidden answers. Here the swap is one environment variable: when the grader
(:mod:`ftnotes.grade`) sets ``FTNOTES_CONTEST_SPLIT=hidden`` in the notebook's kernel,
:meth:`ContestTask.load` serves the hidden test *inputs* (with their ids) where it normally
serves the public ones. Test labels, public or hidden, are never returned by ``load``: only
:meth:`ContestTask.answers`, which the grader calls in its own process, reads them.

A task is one :class:`ContestTask`; its module under ``ftnotes/contest/tasks/`` says how to
build its data (``build``), score predictions (``score``), and what its baseline and reference
solutions are. Inputs ``X`` are whatever the task works on (images (N, 1, 8, 8) here; a language
task can pass token tensors or strings): the format code below only sees ids and labels.
"""

from __future__ import annotations

import csv
import inspect
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ftnotes.utils import atomic_write

SPLIT_ENV = "FTNOTES_CONTEST_SPLIT"  # "hidden" in the grader's kernel, unset (public) otherwise
SPLITS = ("public", "hidden")
DIGITS_SEED = 2026  # the contest's own split of the UCI digits; never depends on the user's seed
DIGITS_FRACTIONS = (0.5, 0.15, 0.15, 0.2)  # train, val, public test, hidden test (per class)
ID_OFFSET = {"public": 0, "hidden": 100_000}  # public and hidden ids never coincide


class SubmissionError(ValueError):
    """A submission file that cannot be scored (missing, wrong columns, ids or labels)."""


@dataclass
class ContestData:
    """What a solution sees: labelled ``train``/``val`` as (X, y), the test inputs and their ids.

    ``test_ids`` (N,) int64 and ``test_x`` (N, ...) come from the public test split, or from the
    hidden one when the grader runs the notebook (``split`` says which). ``extra`` holds
    task-specific material (e.g. the old task's training images for replay).
    """

    task: str
    train: tuple
    val: tuple
    test_ids: torch.Tensor
    test_x: torch.Tensor
    split: str = "public"
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"ContestData({self.task!r}: train {len(self.train[1])}, val {len(self.val[1])}, "
                f"{self.split} test {len(self.test_ids)} (no labels), extra {sorted(self.extra)})")  # fmt: skip


@dataclass(frozen=True)
class ContestTask:
    """One practice task. ``build(seed, split)`` -> (ContestData, test labels (N,));
    ``score(pred, y) -> dict`` with key ``"score"`` (higher is better) and its parts;
    ``baseline``/``reference``: ``f(data, seed) -> predicted labels (N,)`` for ``data.test_ids``.

    ``baseline_score``/``reference_score``: measured on the hidden split at seed 0 (tests re-measure
    them); ``margin``: by how much the reference beats the baseline on every one of 3 seeds.
    """

    name: str
    title: str
    statement: str
    time_limit_s: float
    submission: str
    num_classes: int
    build: Callable
    score: Callable
    baseline: Callable
    reference: Callable
    baseline_score: float
    reference_score: float
    margin: float
    reference_code: tuple = ()  # what show_reference prints (default: the reference itself)

    def split(self) -> str:
        """"hidden" inside the grader's kernel, else "public"."""
        value = os.environ.get(SPLIT_ENV, "public") or "public"
        if value not in SPLITS:
            raise ValueError(f"${SPLIT_ENV} must be one of {SPLITS} or unset, got {value!r}")
        return value

    def load(self, seed: int = 0) -> ContestData:
        """The data a notebook may use; the test split is public unless the grader says hidden."""
        data, _ = self.build(seed, self.split())
        return data

    def answers(self, split: str = "hidden", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, labels) of a test split: for the grader and the tests, never for a solution."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        data, y = self.build(seed, split)
        return data.test_ids, y

    def normalise(self, score: float) -> float:
        """Points: 0 at the baseline's score, 100 at the reference's, linear in between and
        beyond (more than 100 beats the reference); below the baseline counts 0."""
        span = self.reference_score - self.baseline_score
        return max(0.0, 100.0 * (score - self.baseline_score) / span)

    def write_submission(self, ids, labels, path=None) -> Path:
        """Save predictions as the CSV the statement names (atomically); returns the path."""
        return write_submission(path or self.submission, ids, labels)

    def grade_file(self, path, split: str = "hidden", seed: int = 0) -> dict:
        """Check and score a submission file against a split's answers: the score's parts and
        ``points``. Raises :class:`SubmissionError` saying what is wrong with the file."""
        ids, y = self.answers(split, seed)
        pred = read_submission(path, ids, self.num_classes)
        result = self.score(pred, y)
        result["points"] = self.normalise(result["score"])
        return result

    def show_reference(self) -> None:
        """Print the reference solution's code (best read after your own attempt)."""
        for fn in self.reference_code or (self.reference,):
            print(inspect.getsource(fn))


def digits_contest_split(seed: int = DIGITS_SEED) -> dict[str, np.ndarray]:
    """Indices into ``sklearn.datasets.load_digits()`` for train / val / public / hidden:
    each class split 50/15/15/20 by one fixed permutation, so the four parts are disjoint."""
    from ftnotes.data import _digits_arrays

    _, y = _digits_arrays()
    rng, parts = np.random.default_rng(seed), {k: [] for k in ("train", "val", "public", "hidden")}
    cuts = np.cumsum(DIGITS_FRACTIONS)[:-1]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        for key, piece in zip(parts, np.split(idx, np.round(cuts * len(idx)).astype(int))):
            parts[key].append(piece)
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def shuffled_ids(n: int, split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, order): ids for n test items of a split and a fixed shuffle of the items, so that
    the position or id of an item says nothing about its class or its group."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return torch.arange(n, dtype=torch.int64) + ID_OFFSET[split], order


def write_submission(path, ids, labels) -> Path:
    """CSV with a header ``id,label`` and one row per test id; written atomically."""
    ids, labels = np.asarray(ids).reshape(-1), np.asarray(labels).reshape(-1)
    if len(ids) != len(labels):
        raise ValueError(f"ids and labels need the same length, got {len(ids)} and {len(labels)}")
    if not (np.issubdtype(labels.dtype, np.integer) and np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"ids and labels must be integers, got {ids.dtype} and {labels.dtype}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "label"])
    writer.writerows(zip(ids.tolist(), labels.tolist()))
    return atomic_write(path, buf.getvalue())


def _first(values, k: int = 5) -> str:
    values = sorted(values)
    more = f" and {len(values) - k} more" if len(values) > k else ""
    return ", ".join(map(str, values[:k])) + more


def _parse_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise SubmissionError(f"no submission: {path.name} was not written (expected a CSV file "
                              "with a header id,label)")  # fmt: skip
    rows = list(csv.reader(path.read_text().splitlines()))
    if not rows or [c.strip() for c in rows[0]] != ["id", "label"]:
        found = rows[0] if rows else "an empty file"
        raise SubmissionError(f"{path.name}: expected the header id,label, found {found}")
    bad = [i + 2 for i, r in enumerate(rows[1:]) if len(r) != 2]
    if bad:
        raise SubmissionError(f"{path.name}: expected 2 columns (id,label) in every row, rows "
                              f"{_first(bad)} have a different number")  # fmt: skip
    return rows[1:]


def _as_ints(column: list[str], name: str, path: Path) -> np.ndarray:
    try:
        return np.array([int(v) for v in column], dtype=np.int64)
    except ValueError:
        bad = next(v for v in column if not v.strip().lstrip("-").isdigit())
        raise SubmissionError(f"{path.name}: {name} must be integers, found {bad!r}") from None


def read_submission(path, expected_ids, num_classes: int) -> torch.Tensor:
    """Labels (N,) int64 in the order of ``expected_ids``, read from a submission CSV.

    Raises :class:`SubmissionError` for a missing file, a wrong header or row length, values that
    are not integers, duplicate, missing or extra ids (naming the first few), and labels outside
    ``0..num_classes-1``: the report says what was expected and what was found.
    """
    path = Path(path)
    rows = _parse_rows(path)
    expected = np.asarray(expected_ids).reshape(-1)
    ids = _as_ints([r[0] for r in rows], "ids", path)
    labels = _as_ints([r[1] for r in rows], "labels", path)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise SubmissionError(f"{path.name}: duplicate ids {_first(uniq[counts > 1].tolist())}")
    missing = set(expected.tolist()) - set(ids.tolist())
    extra = set(ids.tolist()) - set(expected.tolist())
    if missing or extra:
        parts = [f"expected {len(expected)} rows, found {len(ids)}"]
        parts += [f"missing ids {_first(missing)}"] if missing else []
        parts += [f"extra ids {_first(extra)}"] if extra else []
        hint = " (were the predictions made on the test split the task's load() served?)"
        raise SubmissionError(f"{path.name}: " + "; ".join(parts) + hint)
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if len(bad):
        raise SubmissionError(f"{path.name}: labels must be in 0..{num_classes - 1}, found "
                              f"{_first(set(bad.tolist()))}")  # fmt: skip
    position = {int(i): k for k, i in enumerate(ids)}
    return torch.as_tensor(labels[[position[int(i)] for i in expected]])
