"""Scoring a model: predictions, accuracy, confusion matrix, source retention, the IOAI score,
and the one latency timer (:func:`latency_ms`).

Every function takes ``data`` as a ``TensorDataset`` of (X, y) or a tuple ``(X, y)``, with X
(N, 1, 8, 8) float32 and y (N,) int64. The model is put in ``eval()`` mode while scoring (no
dropout) and handed back in the mode it came in. ``forward(model, X) -> logits`` replaces
``model(X)`` for wrappers (e.g. prompt tuning, or a body with a different head).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from sklearn.metrics import confusion_matrix

from .checks import check_int, check_number
from .data import as_tensors, check_images, check_labels
from .train import logits, loss_and_accuracy
from .utils import model_device

# as_tensors, check_images, check_labels (ftnotes.data) and logits, loss_and_accuracy (the
# engine's validation pass, ftnotes.train) are re-exported: scoring code imports them from here
__all__ = ["predict", "accuracy", "confusion", "source_retention", "ioai_score", "latency_ms",
           "as_tensors", "check_images", "check_labels", "logits", "loss_and_accuracy"]  # fmt: skip


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
    check_number("old_acc", old_acc, 0.0, 1.0)
    check_number("new_acc", new_acc, 0.0, 1.0)
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
