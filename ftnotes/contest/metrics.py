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


def macro_f1(pred, y: torch.Tensor, num_classes: int) -> dict:
    """Macro-averaged F1 over the ``num_classes`` classes (scikit-learn's ``f1_score``, a class
    without predictions or items counts 0) and plain accuracy beside it. ``pred``: labels (N,)
    (an invalid label, e.g. -1, is a wrong answer: a miss for its item's class) or scores
    (N, C)."""
    from sklearn.metrics import f1_score

    pred = torch.as_tensor(pred)
    pred = pred.argmax(1) if pred.dim() == 2 else pred
    y = torch.as_tensor(y)
    f1 = f1_score(y.numpy(), pred.numpy(), labels=list(range(num_classes)), average="macro",
                  zero_division=0)  # fmt: skip
    return {"score": float(f1), "accuracy": (pred == y).float().mean().item()}


def _is_permutation(pred, n: int) -> bool:
    return (isinstance(pred, (list, tuple)) and all(type(v) is int for v in pred)
            and sorted(pred) == list(range(n)))  # fmt: skip


def _order_score(pred, target) -> float:
    """1 - I/M for one item: I discordant pairs of M = n(n-1)/2; 0 unless ``pred`` is a
    permutation of 0..n-1; 1 for n < 2 (nothing to order)."""
    n = len(target)
    if n < 2:
        return 1.0
    if not _is_permutation(pred, n):
        return 0.0
    discordant = sum((target[i] > target[j]) != (pred[i] > pred[j])
                     for i in range(n) for j in range(i + 1, n))  # fmt: skip
    return 1.0 - discordant / (n * (n - 1) / 2)


def pairwise_order(pred: list, y: list) -> dict:
    """Mean over items of the pairwise order score 1 - I/M (IOAI 2026 "Find the Order"): each
    answer and target lists the position of each of an item's n parts (rank convention); a
    missing answer or one that is not a permutation of 0..n-1 scores 0 for that item."""
    if len(pred) != len(y) or not len(y):
        raise ValueError(f"pred and y need the same non-zero length, got {len(pred)}, {len(y)}")
    scores = [_order_score(p, list(t)) for p, t in zip(pred, y)]
    valid = sum(_is_permutation(p, len(t)) for p, t in zip(pred, y))
    return {"score": sum(scores) / len(scores), "valid": valid / len(y)}


def exact_match(pred: list, y: list) -> dict:
    """Fraction of items whose text answer equals the target after stripping surrounding
    whitespace; a missing or invalid answer (None) scores 0 for its item."""
    if len(pred) != len(y) or not len(y):
        raise ValueError(f"pred and y need the same non-zero length, got {len(pred)}, {len(y)}")
    right = [isinstance(p, str) and p.strip() == t.strip() for p, t in zip(pred, y)]
    return {"score": sum(right) / len(right)}
