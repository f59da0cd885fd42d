"""The training loop of the image classifiers: ``fit(model, train, val) -> History``.

Notebooks 00-07, the bench, the recipes and the contest tasks (notebook 06's too) all train
through it: AdamW with the field's weight-decay rule (:mod:`ftnotes.optim`) + a per-step
learning-rate schedule (:mod:`ftnotes.schedules`) + an optional loss hook (``loss_fn``, with a
``replay`` source: notebook 06's objective runs through here too) + gradient clipping + early
stopping with best-weight restore + divergence detection (:mod:`ftnotes.divergence`) + the
memory of a step (:mod:`ftnotes.memory`). Notebook 08's language model trains in
:func:`ftnotes.lm.sft.train_sft` (token batches with padding trimmed, a budget of steps, no
classes to count), and ``python -m ftnotes.pretrain`` in plain torch (it must not depend on the
engine it feeds).

Written to survive a notebook slider at an extreme value: a NaN or exploding loss stops training
and restores the last good weights; a run whose last epoch ends far above where training
started, or at chance accuracy, is flagged (its weights are kept: they show what the rate did).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checks import check_int
from .data import as_tensors, check_labels
from .divergence import TrainingDiverged, check_epoch_loss, check_loss, failed_run_message
from .fit_options import MONITORS, Objective, Optimization, Stopping, grouped
from .history import History
from .memory import SavedTensorMeter, adamw_state_bytes, optimizer_state_bytes, training_memory
from .optim import decay_param_groups, decays, make_adamw
from .schedules import make_scheduler, warmup_steps
from .utils import get_device, model_device, progress_disabled, set_seed

__all__ = ["fit", "History", "Optimization", "Stopping", "Objective", "logits",
           "loss_and_accuracy", "MONITORS",
           # re-exported: notebooks and tests import them from here
           "TrainingDiverged", "check_loss", "check_epoch_loss", "adamw_state_bytes",
           "decays", "decay_param_groups"]  # fmt: skip


@torch.no_grad()
def logits(model, X: torch.Tensor, batch_size: int = 512, forward=None) -> torch.Tensor:
    """Model outputs for images X, in batches: (N, ...) -> (N, num_classes) on the CPU."""
    check_int("batch_size", batch_size)
    forward = forward or _call
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


def loss_and_accuracy(model, data, batch_size: int = 512, forward=None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on ``data`` (what ``fit`` reports for validation)."""
    X, y = as_tensors(data)
    out = logits(model, X, batch_size, forward)
    check_labels(y, out.shape[-1])
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def _call(model, x):
    return model(x)


def snapshot(model) -> dict:
    """A copy of ``model.state_dict()`` to load back later: every tensor cloned, detached.
    Taken twice an epoch (the last finite weights, the best ones); ``copy.deepcopy`` of the same
    dict took ~7 ms for TinyViT's 72 tensors, as long as a training step, this ~0.2 ms."""
    return {k: v.detach().clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
            for k, v in model.state_dict().items()}  # fmt: skip


class _Stopper:
    """Tracks the monitored validation metric and a copy of the best weights."""

    def __init__(self, monitor, patience):
        self.monitor, self.patience = monitor, patience
        self.best, self.best_epoch, self.best_state, self.bad = None, None, None, 0

    def update(self, epoch, value, model) -> bool:
        """Record an epoch's metric; True when patience has run out."""
        better = self.best is None or (
            value < self.best if self.monitor == "val_loss" else value > self.best
        )
        if better and math.isfinite(value):
            self.best, self.best_epoch, self.bad = value, epoch, 0
            self.best_state = snapshot(model)
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience


class _Loop:
    """One ``fit`` call's moving parts: the optimizer step, divergence watch, memory meter."""

    def __init__(self, model, optimizer, scheduler, device, opt, obj, replay, batch_size, gen):  # fmt: skip
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.device, self.clip, self.loss_fn = device, opt.clip_grad_norm, obj.loss_fn
        self.forward = obj.forward or _call
        self.replay, self.gen = replay, gen
        self.replay_batch_size = obj.replay_batch_size or batch_size
        self.history, self.meter = History(), SavedTensorMeter(model.parameters())
        # the peak rate the user asked for (OneCycleLR keeps it as max_lr, the others initial_lr);
        # groups that all carry a "name" are blamed by name when their rates differ
        peaks = [(g.get("name"), g.get("max_lr", g.get("initial_lr"))) for g in optimizer.param_groups]
        named = all(name for name, _ in peaks)
        self.blamed_lr = dict(peaks) if named else max(rate for _, rate in peaks)
        self.step, self.first_loss, self.num_classes, self.labels = 0, None, None, None

    def check(self, value: float) -> None:
        self.first_loss = value if self.first_loss is None else self.first_loss
        check_loss(value, self.first_loss, self.blamed_lr, self.step)

    def loss(self, xb, yb):
        """``(loss, logits)`` of a batch; with replay, a replay batch drawn here goes along."""
        if self.loss_fn is None:  # the default: cross-entropy of the outputs
            out = self.forward(self.model, xb)
            if self.step == 0 and out.dim() == 2:  # every label must name an output
                check_labels(self.labels, out.shape[-1], "train")  # (else an IndexError)
            return F.cross_entropy(out, yb), out
        if self.replay is None:
            return self.loss_fn(self.model, xb, yb)
        rx, ry = self.replay
        j = torch.randint(len(rx), (self.replay_batch_size,), generator=self.gen)
        return self.loss_fn(self.model, xb, yb, rx[j].to(self.device), ry[j].to(self.device))

    def train_step(self, xb, yb) -> tuple[float, int]:
        """One optimizer step on a batch; returns (loss, number correct)."""
        start = time.perf_counter()
        if self.step == 0:  # measure one batch's saved activations, then train without hooks
            with self.meter:
                loss, out = self.loss(xb, yb)
                if self.loss_fn is not None and out.dim() == 2:  # a hook's logits fit them too
                    check_labels(self.labels, out.shape[-1], "train")
        else:
            loss, out = self.loss(xb, yb)
        value = loss.item()
        self.num_classes = out.shape[-1] if out.dim() == 2 else None
        self.check(value)  # before backward: never step on a NaN loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip is not None:
            grads = [p for p in self.model.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(grads, self.clip)
        self.history.lr.append(max(g["lr"] for g in self.optimizer.param_groups))
        self.optimizer.step()
        self.scheduler.step()
        self.history.loss.append(value)
        self.step += 1
        correct = (out.argmax(1) == yb).sum().item()  # .item() waits for a GPU's queued work
        self.history.step_seconds.append(time.perf_counter() - start)
        return value, correct

    def train_epoch(self, X, y, perm, batch_size) -> None:
        self.labels = y
        self.model.train()
        sum_loss, correct = 0.0, 0
        for i in range(0, len(X), batch_size):
            idx = perm[i : i + batch_size]
            value, right = self.train_step(X[idx].to(self.device), y[idx].to(self.device))
            sum_loss, correct = sum_loss + value * len(idx), correct + right
        self.history.train_loss.append(sum_loss / len(X))
        self.history.train_acc.append(correct / len(X))

    def validate(self, val, epoch: int, stopper: _Stopper) -> bool:
        """Validation loss and accuracy after an epoch; True when patience has run out."""
        vl, va = loss_and_accuracy(self.model, val, forward=self.forward)
        self.history.val_loss.append(vl)
        self.history.val_acc.append(va)
        self.check(vl)
        return stopper.update(epoch, vl if stopper.monitor == "val_loss" else va, self.model)

    def postfix(self) -> dict:
        h = self.history
        return {"loss": f"{h.train_loss[-1]:.3f}",
                **({"val_acc": f"{h.val_acc[-1]:.3f}"} if h.val_acc else {})}  # fmt: skip

    def finish(self, stopper: _Stopper, raise_diverged: bool, start: float) -> History:
        """Best weights back, time and memory recorded, the finished run judged."""
        h = self.history
        if stopper.best_state is not None:
            self.model.load_state_dict(stopper.best_state)
            h.best_epoch = stopper.best_epoch
        h.train_seconds = time.perf_counter() - start
        h.optimizer_state_bytes = optimizer_state_bytes(self.optimizer)
        h.peak_memory_bytes, h.memory_note = training_memory(
            self.model, self.optimizer, self.meter.bytes, self.device
        )
        if not h.diverged:
            # judged on the last epoch, not stopped mid-way: a loss spike that recovers is no
            # failure, and keeping the weights shows the damage a too-high rate did
            h.message = failed_run_message(h, self.first_loss, self.blamed_lr, self.num_classes)
            h.diverged = bool(h.message)
        if h.diverged and raise_diverged:
            raise TrainingDiverged(h.message)
        if h.diverged:  # printed every time: a student re-running a panel must see it again
            print(f"⚠️ {h.message}")
        return h


def _inputs(train, val, replay, patience):
    """``(X, y)``, ``val`` and ``replay`` as checked tensors (None stays None), before any work."""
    if patience is not None and val is None:
        raise ValueError(f"patience={patience} needs validation data: pass val=...")
    train = as_tensors(train, "train")
    replay = as_tensors(replay, "replay") if replay is not None else None
    return train, as_tensors(val, "val") if val is not None else None, replay


def _quiet(progress) -> bool:
    return not progress or progress_disabled()


def fit(model, train, val=None, *, epochs=10, batch_size=64, seed=0, device=None, progress=True,
        callbacks=(), optimization=None, stopping=None, objective=None, **options) -> History:  # fmt: skip
    """Train ``model`` with cross-entropy on ``train``; returns a :class:`History`.

    ``train``/``val``: ``TensorDataset`` or ``(X, y)``; X (N, 1, 8, 8), y (N,) int64. Only
    parameters with ``requires_grad`` are trained; the model moves to ``device`` (default
    ``utils.get_device()``) and stays there. ``seed`` seeds shuffling (its own generator) and
    dropout (``set_seed``): two runs give identical numbers. ``callbacks``: ``f(epoch, model,
    history)`` after each epoch (after validation). The other options come in three groups,
    passed as objects or, flat, as their fields (``fit(model, data, lr=1e-2, patience=3)``):
    :class:`Optimization` (``lr``, ``weight_decay``, ``param_groups``, ``schedule``,
    ``warmup``, ``clip_grad_norm``), :class:`Stopping` (``patience``, ``monitor``,
    ``raise_diverged``) and :class:`Objective` (``forward``, ``loss_fn``, ``replay``,
    ``replay_batch_size``). A NaN/inf/exploding loss stops training and restores the weights
    from the start of that epoch; a run whose last epoch ends far above the start or, with
    ``val``, at chance (:mod:`ftnotes.divergence`) keeps its weights. Each sets
    ``history.diverged`` and ``.message`` and prints the message.
    """
    opt, stop, obj = grouped(optimization, stopping, objective, options)
    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    (X, y), val, replay = _inputs(train, val, obj.replay, stop.patience)
    device = get_device(device)  # validates the name and that the device exists
    total = epochs * math.ceil(len(X) / batch_size)
    warmup_steps(opt.warmup, total)  # validates warmup before any work
    set_seed(seed)
    model.to(device)
    optimizer = make_adamw(model, opt.lr, opt.weight_decay, opt.param_groups, bool(callbacks))
    scheduler = make_scheduler(opt.schedule, optimizer, total, warmup=opt.warmup)
    stopper, gen = _Stopper(stop.monitor, stop.patience), torch.Generator().manual_seed(seed)
    loop = _Loop(model, optimizer, scheduler, device, opt, obj, replay, batch_size, gen)
    history = loop.history
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bar = tqdm(range(epochs), desc="fit", leave=False, disable=_quiet(progress))
    start = time.perf_counter()
    for epoch in bar:
        good_state = snapshot(model)  # the last weights known to be finite
        try:
            loop.train_epoch(X, y, torch.randperm(len(X), generator=gen), batch_size)
            patience_out = val is not None and loop.validate(val, epoch, stopper)
        except TrainingDiverged as err:
            if stop.raise_diverged:
                raise
            history.diverged, history.message = True, str(err)
            model.load_state_dict(good_state)
            break
        bar.set_postfix(loop.postfix())
        for callback in callbacks:
            callback(epoch, model, history)
        if patience_out and epoch < epochs - 1:
            history.stopped_early = True
            break
    bar.close()
    return loop.finish(stopper, stop.raise_diverged, start)
