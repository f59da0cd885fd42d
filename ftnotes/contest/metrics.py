"""The contest metrics: each ``metric(pred, y, ...) -> dict`` with key ``"score"`` (higher is
better) and its parts.

``pred`` is what a submission holds, one answer per test item in the order of the answers ``y``.
"""

from __future__ import annotations

import torch

from ftnotes.evaluate import ioai_score


def task_aware_labels(scores: torch.Tensor, is_old: torch.Tensor, num_old: int) -> torch.Tensor:
    """Labels (N,) from scores (N, C): each item's argmax over its own rows, rows
    0..num_old-1 for an old item (``is_old`` (N,) bool True), the other rows for a new one."""
    old_rows = torch.arange(scores.shape[1]) < num_old  # (C,)
    own = old_rows.unsqueeze(0) == torch.as_tensor(is_old).unsqueeze(1)  # (N, C)
    return scores.float().masked_fill(~own, float("-inf")).argmax(1)


def _labels(pred, y: torch.Tensor, num_old: int, task_aware: bool) -> torch.Tensor:
    """Predicted labels (N,) from labels (N,) or scores (N, C) (argmax over all C, or with
    ``task_aware`` over the item's own rows)."""
    pred = torch.as_tensor(pred)
    if pred.dim() == 1:
        return pred
    if pred.dim() != 2 or len(pred) != len(y):
        raise ValueError(f"pred must be labels (N,) or scores (N, C) with N = {len(y)}, got "
                         f"shape {tuple(pred.shape)}")  # fmt: skip
    return task_aware_labels(pred, y < num_old, num_old) if task_aware else pred.argmax(1)


def old_new_score(pred, y: torch.Tensor, num_old: int, *, task_aware: bool = False) -> dict:
    """½·(accuracy on the items of the old classes, y < num_old) + ½·(accuracy on the new ones)
    (IOAI 2026 at-home task 1, :func:`ftnotes.evaluate.ioai_score`).

    ``pred``: labels (N,), scored as given (an invalid label, e.g. -1, counts as wrong), or
    scores (N, C), whose argmax is the prediction. ``task_aware=False``: one softmax over all C
    classes, so a new class that takes an old image costs old accuracy (the "Night Watch"
    scoring, task ``new_digits``). ``task_aware=True``: each item's argmax over its own rows only
    (the test tells which task an item belongs to; notebook 06's task ``keep_glyphs``); labels
    are scored as given then (a task-aware solution picked them from the item's own rows).
    """
    y = torch.as_tensor(y)
    old, new = y < num_old, y >= num_old
    if not old.any() or not new.any():
        raise ValueError(f"y must hold items of the old (< {num_old}) and the new classes, got "
                         f"{int(old.sum())} old and {int(new.sum())} new")  # fmt: skip
    right = _labels(pred, y, num_old, task_aware) == y
    acc_old, acc_new = right[old].float().mean().item(), right[new].float().mean().item()
    return {"score": ioai_score(acc_old, acc_new), "acc_old": acc_old, "acc_new": acc_new}


def accuracy_score(pred, y: torch.Tensor) -> dict:
    """Plain accuracy over the test split (scores (N, C) are read by their argmax)."""
    pred = torch.as_tensor(pred)
    pred = pred.argmax(1) if pred.dim() == 2 else pred
    return {"score": (pred == torch.as_tensor(y)).float().mean().item()}
