"""Scoring a model: predictions, accuracy, confusion matrix, source retention, the IOAI score,
the one latency timer (:func:`latency_ms`) and the one training-step timer (:func:`step_times`),
both interleaved.

Every function takes ``data`` as a ``TensorDataset`` of (X, y) or a tuple ``(X, y)``, with X
(N, 1, 8, 8) float32 and y (N,) int64. The model is put in ``eval()`` mode while scoring (no
dropout) and handed back in the mode it came in. ``forward(model, X) -> logits`` replaces
``model(X)`` for wrappers (e.g. prompt tuning, or a body with a different head).
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_int, check_number
from .data import as_tensors, check_images, check_labels
from .optim import decay_param_groups
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
    from sklearn.metrics import confusion_matrix  # here, not above: importing sklearn takes ~1 s

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


@dataclass
class StepTimes:
    """Training-step times of several models measured interleaved by :func:`step_times`.

    ``seconds[name]``: one wall time per timed round, in round order, so that
    ``seconds[a][i]`` and ``seconds[b][i]`` were measured moments apart and share the load of
    that moment. Compare two models by :meth:`ratio`, the ratio of their medians over the same
    rounds (on a busy machine it varied less from run to run than the median of the per-round
    ratios, whose spread :meth:`spread` reports), not by timings taken one run after another.
    """

    seconds: dict

    def __len__(self) -> int:
        """The number of timed rounds."""
        return len(next(iter(self.seconds.values()), []))

    def ms(self, name) -> float:
        """Median step time of ``name`` in ms."""
        return 1e3 * statistics.median(self.seconds[name])

    def ratios(self, name, reference) -> list[float]:
        """Per-round ratios ``name / reference``, sorted."""
        return sorted(a / b for a, b in zip(self.seconds[name], self.seconds[reference]))

    def ratio(self, name, reference) -> float:
        """``name``'s median step time over ``reference``'s (the same rounds)."""
        return self.ms(name) / self.ms(reference)

    def spread(self, name, reference) -> tuple[float, float]:
        """The middle half of the per-round ratios (first and third quartile): how much one
        round's comparison varies on this machine."""
        q1, _, q3 = statistics.quantiles(self.ratios(name, reference), n=4)
        return q1, q3

    def describe(self, name, reference) -> str:
        """``"0.91x (0.85-0.97)"``: the ratio of the medians and the per-round middle half."""
        q1, q3 = self.spread(name, reference)
        return f"{self.ratio(name, reference):.2f}x ({q1:.2f}-{q3:.2f})"


def step_times(models: dict, data, *, batch_size: int = 32, rounds: int = 30, warmup: int = 5,
               lr: float = 1e-3, weight_decay: float = 0.01, clip_grad_norm=1.0,
               forward=None, seed: int = 0) -> StepTimes:  # fmt: skip
    """Time one training step of each model, interleaved: a :class:`StepTimes`.

    ``models``: name -> model (at least two). A step is what ``fit`` times: forward,
    cross-entropy, backward, gradient clipping, an AdamW update of the trainable parameters
    (weight decay by ``fit``'s rule). Each round takes the next batch of ``batch_size`` rows of
    ``data`` (a seeded shuffle, cycled) and steps every model once on that same batch, in a
    rotating order, so load from other processes (a shared laptop) falls on all of them alike;
    ``warmup`` untimed rounds first (first calls pay one-time costs). Every model is copied
    first: the models passed in are not changed. CUDA work is synchronised around each step.
    ``forward(model, X) -> logits`` replaces ``model(X)`` for wrappers.
    """
    check_int("batch_size", batch_size)
    check_int("rounds", rounds, 2)
    check_int("warmup", warmup, 0)
    if not isinstance(models, dict) or len(models) < 2:
        raise ValueError(f"models must be a dict of at least two name -> model, got {models!r:.80}")
    X, y = as_tensors(data)
    forward = forward or (lambda m, b: m(b))
    order = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))
    starts = range(0, max(1, len(X) - batch_size + 1), batch_size)
    copies, optimizers = {}, {}
    for name, model in models.items():
        copies[name] = copy.deepcopy(model).train()
        trainable = [(n, p) for n, p in copies[name].named_parameters() if p.requires_grad]
        if not trainable:
            raise ValueError(f"models[{name!r}] has no trainable parameters")
        optimizers[name] = torch.optim.AdamW(decay_param_groups(trainable, weight_decay), lr=lr)
    names, seconds = list(copies), {name: [] for name in copies}
    for i in range(warmup + rounds):
        idx = order[starts[i % len(starts)]:][:batch_size]
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            model, device = copies[name], model_device(copies[name])
            xb, yb = X[idx].to(device), y[idx].to(device)
            elapsed = _timed_step(model, optimizers[name], xb, yb, forward, clip_grad_norm)
            if i >= warmup:
                seconds[name].append(elapsed)
    return StepTimes(seconds)


def _timed_step(model, optimizer, xb, yb, forward, clip_grad_norm) -> float:
    """Seconds of one optimizer step on the batch (xb, yb)."""
    cuda = xb.is_cuda
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(forward(model, xb), yb)
    loss.backward()
    if clip_grad_norm is not None:
        grads = [p for p in model.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, clip_grad_norm)
    optimizer.step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start
