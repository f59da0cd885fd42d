"""The contest format shared by every practice task: data with a public test split and two
hidden ones (the live and the final board), submission files, scoring and normalised points.

At IOAI the notebook *is* the submission: the graders re-run it offline, within the statement's
time limit, with a hidden test set swapped in for the public one, and compare the output file it
writes with the hidden answers, which never enter the notebook's reach. Here the grader
(:mod:`ftnotes.grade`) builds a hidden split in its own process, writes its test *inputs* into
the sandboxed notebook's working folder and sets ``FTNOTES_CONTEST_SPLIT=hidden``:
:meth:`ContestTask.load` then serves those inputs where it normally serves the public ones.

What keeps the answers out of reach: a hidden split (``"live"`` or ``"final"``) is built only
with the grading run's :class:`Secret`, 256 random bits that stay in the grader's memory. The
secret draws the split's synthetic part (e.g. its printed glyphs), shuffles the items and jitters
every input by at most :data:`JITTER`, so byte-exact lookup in the public data finds nothing;
without it, :meth:`ContestTask.answers` and ``build(seed, board)`` refuse. The real part of a
board (UCI digits) is public data: matching it against scikit-learn's copy remains possible by
design, as any public-data rule forbids (README).

A task is one :class:`ContestTask`; its module under ``ftnotes/contest/tasks/`` says how to
build its data (``build``), score predictions (``score``, :mod:`ftnotes.contest.metrics`), and
what its baseline and reference solutions are. Inputs ``X`` are whatever the task works on
(images (N, 1, 8, 8) here, strings for a text task).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ftnotes.contest.formats import JsonlAnswers, LabelCSV, SubmissionError

SPLIT_ENV = "FTNOTES_CONTEST_SPLIT"  # "hidden" in the grader's kernel, unset (public) otherwise
INPUTS_ENV = "FTNOTES_CONTEST_INPUTS"  # the hidden test inputs file the grader wrote
BOARDS = ("live", "final")  # the two hidden splits: the live board and the final ranking
SPLITS = ("public",) + BOARDS
DIGITS_SEED = 2026  # the contest's own split of the UCI digits; never depends on the user's seed
DIGITS_FRACTIONS = (0.5, 0.15, 0.15, 0.1, 0.1)  # train, val, public, live, final (per class)
ID_OFFSET = {"public": 0, "live": 100_000, "final": 200_000}  # the splits' ids never coincide
JITTER = 1 / 4096  # a hidden input moves by at most this (a 256th of one UCI count step)
NOTEBOOK_MAX_BYTES = 1 << 20  # 1 MiB, as at IOAI 2026: code, not weights or answers
MEMORY_LIMIT_GB = 8.0  # the data segment of each process in the sandbox

__all__ = ["BOARDS", "ContestData", "ContestTask", "Secret", "SubmissionError", "SPLITS"]


@dataclass(frozen=True, repr=False)
class Secret:
    """A grading run's secret (:meth:`new`: 32 random bytes). Every random choice of a hidden
    split derives from it (:meth:`seed`), so the same secret rebuilds the same split."""

    key: bytes

    @classmethod
    def new(cls) -> Secret:
        return cls(secrets.token_bytes(32))

    def seed(self, purpose: str) -> int:
        """A 63-bit seed for one ``purpose`` (e.g. "glyphs:live"), from the key by BLAKE2b."""
        digest = hashlib.blake2b(purpose.encode(), key=self.key, digest_size=8).digest()
        return int.from_bytes(digest, "little") >> 1

    def __repr__(self) -> str:  # never print the key
        return "Secret(...)"


def numbers_line(baseline: dict, reference: dict, margin: float) -> str:
    """The statements' sentence on the measured numbers (both boards, means of 3 seeds)."""
    return (f"On the live board the baseline scores **{baseline['live']:.2f}** and the reference "
            f"**{reference['live']:.2f}** (means of 3 seeds; the final board: "
            f"{baseline['final']:.2f} and {reference['final']:.2f}); the reference beats the "
            f"baseline by more than {margin} on every seed and board we tried.")


def check_split(split: str, secret) -> None:
    """ValueError unless ``split`` is "public", or a board with the grading run's secret."""
    if split == "hidden":
        raise ValueError("the hidden split exists only in the grader's process: it is built "
                         "from a secret made per grading run (build(seed, board, secret)); a "
                         "notebook sees its inputs only, through task.load()")  # fmt: skip
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split in BOARDS and not isinstance(secret, Secret):
        raise ValueError(f"the {split} board is built only with the grading run's Secret "
                         f"(secret=...), got {secret!r}: its answers never leave the grader")  # fmt: skip


def conceal(x, y, split: str, secret, purpose: str, seed: int):
    """(ids, x, y) of a test split, shuffled so that an item's position or id says nothing about
    its class or group. Public: a fixed shuffle (``seed``). A board: shuffled by the secret and
    every float input jittered by at most :data:`JITTER` (clamped to [0, 1]). ``x`` and ``y``:
    tensors or lists (e.g. the texts and answers of a text task)."""
    n = len(y)
    gen = torch.Generator().manual_seed(secret.seed(f"{purpose}:order") if split in BOARDS
                                        else seed)  # fmt: skip
    order = torch.randperm(n, generator=gen)
    ids = torch.arange(n, dtype=torch.int64) + ID_OFFSET[split]
    if isinstance(x, torch.Tensor):
        x = x[order]
        if split in BOARDS and x.is_floating_point():
            noise = torch.rand(x.shape, generator=gen) * 2 - 1
            x = (x + JITTER * noise).clamp(0.0, 1.0)
    else:
        x = [x[i] for i in order.tolist()]
    y = y[order] if isinstance(y, torch.Tensor) else [y[i] for i in order.tolist()]
    return ids, x, y


@dataclass
class ContestData:
    """What a solution sees: labelled ``train``/``val`` as (X, y), the test inputs and their ids.

    ``test_ids`` (N,) int64 and ``test_x`` (N, ...) come from the public test split, or from the
    hidden one when the grader runs the notebook (``split`` says which). ``extra`` holds
    task-specific material (e.g. the old task's training images for replay; entries named
    ``test_*`` describe the test items, e.g. ``test_is_old``, and come with the hidden inputs).
    """

    task: str
    train: tuple
    val: tuple
    test_ids: torch.Tensor
    test_x: object
    split: str = "public"
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"ContestData({self.task!r}: train {len(self.train[1])}, val {len(self.val[1])}, "
                f"{self.split} test {len(self.test_ids)} (no labels), extra {sorted(self.extra)})")  # fmt: skip


def _check_inputs(data: ContestData) -> None:
    """What leaves for the kernel must be inputs: tensors or strings, nothing else."""
    def ok(v):
        return isinstance(v, (torch.Tensor, str)) or (
            isinstance(v, list) and all(isinstance(s, str) for s in v))
    bad = [k for k, v in data.extra.items() if k.startswith("test_") and not ok(v)]
    if bad or not ok(data.test_x):
        raise ValueError(f"hidden inputs must be tensors or strings, got {bad or 'test_x'}")


@dataclass(frozen=True)
class ContestTask:
    """One practice task. ``build(seed, split, secret=None)`` -> (ContestData, test answers);
    ``score(pred, y) -> dict`` with key ``"score"`` (higher is better) and its parts;
    ``baseline``/``reference``: ``f(data, seed) -> predictions`` for ``data.test_ids``.

    ``baseline_score``/``reference_score``: per board, the mean over seeds 0-2 (each with its own
    secret; tests re-measure them); ``margin``: by how much the reference beats the baseline on
    every seed. ``answers_format``: the submission format (default :class:`LabelCSV`);
    ``notebook_max_bytes``: the notebook size cap; ``memory_limit_gb``: per sandboxed process.
    ``private_files``: files that hold hidden answers (a text task's real hidden rows, which no
    secret can draw): the sandbox makes each that exists unreadable to the graded kernel.
    """

    name: str
    title: str
    statement: str
    time_limit_s: float
    submission: str
    num_classes: int | None
    build: Callable
    score: Callable
    baseline: Callable
    reference: Callable
    baseline_score: dict
    reference_score: dict
    margin: float
    reference_code: tuple = ()  # what show_reference prints (default: the reference itself)
    answers_format: LabelCSV | JsonlAnswers | None = None
    notebook_max_bytes: int = NOTEBOOK_MAX_BYTES
    memory_limit_gb: float = MEMORY_LIMIT_GB
    private_files: tuple = ()

    @property
    def format(self) -> LabelCSV | JsonlAnswers:
        return self.answers_format or LabelCSV(self.num_classes)

    def split(self) -> str:
        """"hidden" inside the grader's kernel, else "public"."""
        value = os.environ.get(SPLIT_ENV, "public") or "public"
        if value not in ("public", "hidden"):
            raise ValueError(f"${SPLIT_ENV} must be 'public', 'hidden' or unset, got {value!r}")
        return value

    def load(self, seed: int = 0) -> ContestData:
        """The data a notebook may use: train and validation, and the test inputs, public
        unless the grader serves hidden ones (from the file ``$FTNOTES_CONTEST_INPUTS``)."""
        data, _ = self.build(seed, "public")
        if self.split() == "public":
            return data
        path = os.environ.get(INPUTS_ENV, "")
        if not path or not Path(path).is_file():
            raise ValueError(f"${SPLIT_ENV}=hidden but no hidden inputs file (${INPUTS_ENV}="
                             f"{path!r}): only the grader serves the hidden split")  # fmt: skip
        served = torch.load(path, weights_only=True)
        if served.get("task") != self.name:
            raise ValueError(f"the hidden inputs are for task {served.get('task')!r}, not "
                             f"{self.name!r}")  # fmt: skip
        extra = {k: v for k, v in data.extra.items() if not k.startswith("test_")}
        return ContestData(self.name, data.train, data.val, served["ids"], served["x"],
                           "hidden", {**extra, **served["extra"]})  # fmt: skip

    def hidden(self, board: str, secret: Secret) -> tuple[dict, tuple]:
        """For the grader: (the inputs it hands the kernel, (ids, answers) it keeps)."""
        data, y = self.build(0, board, secret)
        _check_inputs(data)
        served = {"task": self.name, "ids": data.test_ids, "x": data.test_x,
                  "extra": {k: v for k, v in data.extra.items() if k.startswith("test_")}}  # fmt: skip
        return served, (data.test_ids, y)

    def answers(self, split: str = "public", seed: int = 0, secret=None):
        """(ids, answers) of a test split: "public" for anyone; a board only with the grading
        run's secret (the grader and the tests), never for a solution."""
        check_split(split, secret)
        data, y = self.build(seed, split, secret)
        return data.test_ids, y

    def normalise(self, score: float, board: str = "live") -> float:
        """Points: 0 at the baseline's score on ``board``, 100 at the reference's, linear in
        between and beyond (more than 100 beats the reference); below the baseline counts 0."""
        base, ref = self.baseline_score[board], self.reference_score[board]
        return max(0.0, 100.0 * (score - base) / (ref - base))

    def write_submission(self, ids, answers, path=None) -> Path:
        """Save predictions in the file the statement names (atomically); returns the path."""
        return self.format.write(path or self.submission, ids, answers)

    def score_file(self, path, ids, y, board: str = "live") -> dict:
        """Check and score a submission file against (ids, answers): the score, its parts,
        ``points`` and ``note`` (which items scored 0 and why). Raises :class:`SubmissionError`
        for a file that cannot be scored at all."""
        parsed = self.format.read(path, ids)
        result = self.score(parsed.answers, y)
        result["points"] = self.normalise(result["score"], board)
        result["note"] = parsed.note(len(ids))
        return result

    def grade_file(self, path, split: str = "public", seed: int = 0, secret=None) -> dict:
        """:meth:`score_file` against a split's answers (built here)."""
        ids, y = self.answers(split, seed, secret)
        return self.score_file(path, ids, y, "live" if split == "public" else split)

    def show_reference(self) -> None:
        """Print the reference solution's code (best read after your own attempt)."""
        for fn in self.reference_code or (self.reference,):
            print(inspect.getsource(fn))


def digits_contest_split(seed: int = DIGITS_SEED) -> dict[str, np.ndarray]:
    """Indices into ``sklearn.datasets.load_digits()`` for train / val / public / live / final:
    each class split 50/15/15/10/10 by one fixed permutation, so the five parts are disjoint
    (the live and final boards are the two halves of what was one hidden 20%)."""
    from ftnotes.data import _digits_arrays

    _, y = _digits_arrays()
    keys = ("train", "val", "public", "live", "final")
    rng, parts = np.random.default_rng(seed), {k: [] for k in keys}
    cuts = np.cumsum(DIGITS_FRACTIONS)[:-1]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        for key, piece in zip(parts, np.split(idx, np.round(cuts * len(idx)).astype(int))):
            parts[key].append(piece)
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
