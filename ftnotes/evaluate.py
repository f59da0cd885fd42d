"""Scoring a model: predictions, accuracy, confusion matrix, source retention, the IOAI score,
and the one latency timer (:func:`latency_ms`).

Every function takes ``data`` as a ``TensorDataset`` of (X, y) or a tuple ``(X, y)``, with X
(N, 1, 8, 8) float32 and y (N,) int64. The model is put in ``eval()`` mode while scoring (no
dropout) and handed back in the mode it came in. ``forward(model, X) -> logits`` replaces
``model(X)`` for wrappers (e.g. prompt tuning, or a body with a different head).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix
from torch.utils.data import TensorDataset

from .utils import check_int, model_device


def as_tensors(data, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``TensorDataset`` or ``(X, y)`` -> ``(X, y)`` tensors; X (N, ...) float, y (N,) int64."""
    if isinstance(data, TensorDataset):
        tensors = data.tensors
    elif isinstance(data, (tuple, list)):
        tensors = tuple(data)
    else:
        raise ValueError(
            f"{name} must be a TensorDataset or an (X, y) tuple, got {type(data).__name__}"
        )
    if len(tensors) != 2:
        raise ValueError(f"{name} must hold exactly two tensors (X, y), got {len(tensors)}")
    X, y = (torch.as_tensor(t) for t in tensors)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{name}: X and y need the same non-zero length, got {len(X)}, {len(y)}")
    if y.dtype != torch.long:
        raise ValueError(f"{name}: labels y must be int64 (torch.long), got {y.dtype}")
    X = X.float()
    check_images(X, name)
    if y.min() < 0:
        raise ValueError(f"{name}: labels y must be class indices >= 0, got {int(y.min())}")
    return X, y


def check_images(X: torch.Tensor, name: str = "data") -> None:
    """ValueError unless X is finite and, for images (N, C, H, W) or (N, H, W), in [0, 1].

    NaN pixels would otherwise be predicted silently (or blamed on the learning rate by ``fit``),
    and UCI counts 0-16 that were never divided by 16 train a model on another scale.
    """
    if not torch.isfinite(X).all():
        bad = "NaN" if torch.isnan(X).any() else "inf"
        raise ValueError(f"{name}: input contains {bad} pixel values; images must be finite")
    if X.dim() < 3 or not X.numel():  # (N, F) may be features of a frozen body: any scale
        return
    lo, hi = X.min().item(), X.max().item()
    if lo < -1e-6 or hi > 1 + 1e-6:
        hint = " (UCI counts 0-16? divide by 16)" if hi <= 16 + 1e-6 and hi > 1 else ""
        raise ValueError(
            f"{name}: pixel values must lie in [0, 1], got min {lo:.3g}, max {hi:.3g}{hint}"
        )


def check_labels(y: torch.Tensor, num_classes: int, name: str = "data") -> None:
    """ValueError unless every label is a class index of a ``num_classes``-way model."""
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{name}: labels must lie in 0..{num_classes - 1} (the model has {num_classes} "
            f"outputs), got labels from {int(y.min())} to {int(y.max())}"
        )


@torch.no_grad()
def logits(model, X: torch.Tensor, batch_size: int = 512, forward=None) -> torch.Tensor:
    """Model outputs for images X, in batches: (N, ...) -> (N, num_classes) on the CPU."""
    check_int("batch_size", batch_size)
    forward = forward or (lambda m, x: m(x))
    if isinstance(X, torch.Tensor) and X.is_floating_point() and not torch.isfinite(X).all():
        raise ValueError("X: input contains NaN or inf pixel values; images must be finite")
    device, was_training = model_device(model), model.training
    model.eval()
    try:
        out = [forward(model, X[i : i + batch_size].to(device)).cpu()
               for i in range(0, len(X), batch_size)]  # fmt: skip
    finally:
        model.train(was_training)
    return torch.cat(out)


def predict(model, data, batch_size: int = 512, forward=None) -> torch.Tensor:
    """Predicted class indices (N,) int64. ``data`` may also be the images X alone."""
    X = data if isinstance(data, torch.Tensor) else as_tensors(data)[0]
    return logits(model, X, batch_size, forward).argmax(dim=1)


def accuracy(model, data, batch_size: int = 512, forward=None) -> float:
    """Fraction of ``data`` classified correctly, in [0, 1]."""
    X, y = as_tensors(data)
    out = logits(model, X, batch_size, forward)
    check_labels(y, out.shape[-1])
    return (out.argmax(dim=1) == y).float().mean().item()


def loss_and_accuracy(model, data, batch_size: int = 512, forward=None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on ``data`` (what ``fit`` reports for validation)."""
    X, y = as_tensors(data)
    out = logits(model, X, batch_size, forward)
    check_labels(y, out.shape[-1])
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def confusion(model, data, num_classes: int, batch_size: int = 512, forward=None) -> np.ndarray:
    """Confusion matrix (num_classes, num_classes): row = true class, column = predicted."""
    check_int("num_classes", num_classes)
    X, y = as_tensors(data)
    pred = predict(model, X, batch_size, forward)
    return confusion_matrix(y.numpy(), pred.numpy(), labels=list(range(num_classes)))


def source_retention(model, source_head: torch.nn.Module, source_test, batch_size: int = 512):
    """Accuracy of the fine-tuned body with the ORIGINAL source head on the source test set.

    ``model.forward_features`` (B, 1, 8, 8) -> (B, D) is the body after fine-tuning;
    ``source_head`` (D -> source classes) is the head kept by ``strategies.replace_head``.
    An untouched body scores exactly its source accuracy; forgetting shows as a drop.
    """
    if not hasattr(model, "forward_features"):
        raise ValueError(f"model must have forward_features(X), got {type(model).__name__}")
    head = source_head.to(model_device(model))
    return accuracy(
        model, source_test, batch_size, forward=lambda m, x: head(m.forward_features(x))
    )


def ioai_score(old_acc: float, new_acc: float) -> float:
    """IOAI 2026 at-home task 1: 0.5 x accuracy on the old task + 0.5 x on the new one (the
    formula; ``ftnotes.contest.metrics.old_new_score`` scores predictions with it)."""
    for name, v in (("old_acc", old_acc), ("new_acc", new_acc)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"{name} must be an accuracy in [0, 1], got {v!r}")
    return 0.5 * old_acc + 0.5 * new_acc


@torch.no_grad()
def latency_ms(models, x: torch.Tensor, repeats: int = 20, warmup: int = 3, forward=None):
    """Median wall time of one forward pass on the batch ``x``, in ms.

    ``models``: one model -> a float; a dict name -> model -> a dict name -> ms, timed
    *interleaved*: every round runs each model once, in a rotating order, so load from other
    processes (a shared laptop) hits all of them alike. ``warmup`` untimed rounds first (the
    first calls pay one-time costs); eval mode and ``torch.no_grad`` while timing, each model
    handed back in the mode it came in; ``x`` is moved to each model's device, and CUDA work is
    synchronised before and after each pass (it runs asynchronously). The median resists the
    spikes. ``forward(model, x)`` replaces ``model(x)`` for wrappers.
    """
    check_int("repeats", repeats)
    check_int("warmup", warmup, 0)
    single = not isinstance(models, dict)
    models = {None: models} if single else models
    if not models:
        raise ValueError("models must be a model or a non-empty dict of name -> model, got {}")
    forward = forward or (lambda m, b: m(b))
    inputs = {name: x.to(model_device(m)) for name, m in models.items()}
    cuda = any(b.is_cuda for b in inputs.values())
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    modes = {name: m.training for name, m in models.items()}
    names, times = list(models), {name: [] for name in models}
    try:
        for m in models.values():
            m.eval()
        for i in range(warmup + repeats):
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                sync()
                start = time.perf_counter()
                forward(models[name], inputs[name])
                sync()
                if i >= warmup:
                    times[name].append(time.perf_counter() - start)
    finally:
        for name, m in models.items():
            m.train(modes[name])
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    return ms[None] if single else ms
