"""Data shared by the "old + new classes" tasks: the 34 printed glyph classes the shipped
model knows (labels 0-33) and the 10 handwritten digits as 10 *new* classes (labels 34-43).
``new_digits`` and ``frozen_extend`` load the backbone pretrained on printed glyphs only
(:data:`ftnotes.checkpoints.PRINTED_WEIGHTS`): their story is a model that has never seen
handwriting; ``keep_glyphs`` (notebook 06) the shipped one, which has seen pen-drawn digits.

A handwritten "3" and a printed "3" are different classes here: in one softmax over all 44
classes the model must tell the printed glyphs from the handwriting, so a new class can steal
old images; a task-aware task tells which group each test item belongs to instead.
"""

from __future__ import annotations

import functools

import torch

from ftnotes.checkpoints import PRINTED_WEIGHTS, load_pretrained
from ftnotes.contest.core import (
    DIGITS_SEED,
    ContestData,
    check_split,
    conceal,
    digits_contest_split,
)
from ftnotes.data import GLYPH_CLASSES, _digits_arrays, glyph_split, subset_per_class
from ftnotes.glyphs import render_glyphs
from ftnotes.utils import check_int

NUM_OLD, NUM_NEW = len(GLYPH_CLASSES), 10  # 34 glyph classes, 10 digit classes
CLASSES = GLYPH_CLASSES + tuple(f"hand-{d}" for d in range(10))
PUBLIC_GLYPHS = (1_000, 4)  # (size, render seed) of the public test; seeds 1-3 are glyph_split's
BOARD_GLYPHS = 2_000  # a board's glyphs, rendered from the grading run's secret


def backbone(printed_only: bool = True):
    """A fresh copy of the model a task starts from: the TinyViT pretrained on printed glyphs
    only (``load_pretrained(PRINTED_WEIGHTS)``, what the statements tell students to call), or
    with ``printed_only=False`` the shipped one (``load_pretrained()``)."""
    return load_pretrained(PRINTED_WEIGHTS) if printed_only else load_pretrained()


@functools.lru_cache(maxsize=1)
def _public_glyphs() -> tuple[torch.Tensor, torch.Tensor]:
    return render_glyphs(PUBLIC_GLYPHS[0], seed=PUBLIC_GLYPHS[1])


def glyph_test(split: str, secret=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The printed glyphs of a test split: the public ones, or a board's, rendered from a seed
    that only the grading run's secret gives (so no seed in this source regenerates them)."""
    check_split(split, secret)
    if split == "public":
        return _public_glyphs()
    return render_glyphs(BOARD_GLYPHS, seed=secret.seed(f"glyphs:{split}"))


def digits(part: str, secret=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One part of the contest digits split as (X (N,1,8,8), y (N,) digit 0-9): "train",
    "val", "public", or a board with the grading run's secret."""
    if part not in ("train", "val"):
        check_split(part, secret)
    x, y = _digits_arrays()
    idx = digits_contest_split()[part]
    return torch.as_tensor(x[idx]).reshape(-1, 1, 8, 8), torch.as_tensor(y[idx])


def build(task: str, split: str, seed: int, per_class: int, val_per_class=None,
          task_aware: bool = False, secret=None):  # fmt: skip
    """(ContestData, test labels). ``train``: ``per_class`` digits of every class (labels
    34-43, a seeded choice); ``val``: validation digits; ``extra``: ``old_train`` (6,000 glyphs,
    for replay) and ``old_val`` (1,000 glyphs), with ``task_aware`` also ``test_is_old`` (N,)
    bool, which test items are old-class ones. Test: the split's glyphs (:func:`glyph_test`)
    and digits, shuffled (and on a board jittered: :func:`~ftnotes.contest.core.conceal`)."""
    check_int("seed", seed, 0)
    check_split(split, secret)
    x, y = digits("train")
    keep = torch.as_tensor(subset_per_class(y.numpy(), per_class, seed, task))
    vx, vy = digits("val")
    if val_per_class is not None:
        vkeep = torch.as_tensor(subset_per_class(vy.numpy(), val_per_class, seed, task))
        vx, vy = vx[vkeep], vy[vkeep]
    gx, gy = glyph_test(split, secret)
    dx, dy = digits(split, secret)
    ids, tx, ty = conceal(torch.cat([gx, dx]), torch.cat([gy, dy + NUM_OLD]), split, secret,
                          f"{task}:{split}", seed=DIGITS_SEED)  # fmt: skip
    extra = {"old_train": glyph_split("train"), "old_val": glyph_split("val")}
    if task_aware:
        extra["test_is_old"] = ty < NUM_OLD
    data = ContestData(task, (x[keep], y[keep] + NUM_OLD), (vx, vy + NUM_OLD), ids, tx, split,
                       extra)  # fmt: skip
    return data, ty


def validation(data) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation digits and glyphs together, (X, y), scored the way the test is."""
    return (torch.cat([data.val[0], data.extra["old_val"][0]]),
            torch.cat([data.val[1], data.extra["old_val"][1]]))  # fmt: skip
