"""The one training loop every notebook uses: ``fit(model, train, val) -> History``.

AdamW (Loshchilov & Hutter 2019; weight decay on matrices only, :func:`decays`) + a per-step
learning-rate schedule (``ftnotes.schedules``) + an optional loss hook (``loss_fn``, with a
``replay`` source: notebook 06's objective runs through here too) + gradient clipping + early
stopping with best-weight restore + divergence detection.
It is written to survive a notebook slider at an extreme value: a NaN or exploding loss stops
training and restores the last good weights; a run whose last epoch ends far above where
training started, or at chance accuracy, is flagged too (its weights are kept: they show what the rate did). Each case sets
``History.diverged`` and is *printed* (not ``warnings.warn``, whose once-per-location registry
would hide it on every re-run of a notebook panel).
"""

from __future__ import annotations

import copy
import math
import os
import statistics
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .evaluate import as_tensors, check_labels, loss_and_accuracy
from .schedules import make_scheduler, warmup_steps
from .utils import get_device, set_seed

EXPLODE_FACTOR = 1e4  # one step's loss this many times the first one: diverged, stop at once
# The last epoch's mean loss this many times the first step's (and above chance, ln C): failed.
# Judged at the end, not mid-way: on notebook 01 (digits, 20 labels per class, 40 epochs) lr 3e-2
# spikes to 2.8x and recovers to 0.78 test accuracy; notebook 06's lr 3e-2 ends at 20x.
FAIL_FACTOR = 3.0
CHANCE_FACTOR = 2.0  # train and val accuracy both <= this x 1/C after training: at chance
MONITORS = ("val_loss", "val_acc")


@dataclass
class History:
    """What happened during ``fit``. Epochs are 0-indexed: ``val_acc[best_epoch]`` is the best.

    Per step: ``loss``, ``lr`` (the largest group rate, i.e. the head's under layer-wise decay).
    Per epoch: ``train_loss``/``train_acc`` (averaged over the epoch's batches while the model
    was changing, as Keras reports them), ``val_loss``/``val_acc`` (after the epoch, eval mode).
    ``peak_memory_bytes``: CUDA ``max_memory_allocated`` on a GPU; on CPU an *estimate*, see
    ``memory_note``. ``train_seconds``: wall time of the whole loop including validation.
    ``phase_starts``: first epoch of each phase for multi-phase recipes (LP-FT).
    ``step_seconds``: wall time of each optimizer step (forward, backward, update), see
    :attr:`step_ms`.
    """

    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    diverged: bool = False
    message: str = ""
    train_seconds: float = 0.0
    peak_memory_bytes: int = 0
    optimizer_state_bytes: int = 0
    memory_note: str = ""
    phase_starts: dict = field(default_factory=dict)
    step_seconds: list = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    @property
    def step_ms(self) -> float:
        """Median time of one training step in ms; the first step (which also measures the
        saved activations and pays one-time costs) is left out when there are others. The
        median resists the spikes other processes cause; 0.0 before any step."""
        times = self.step_seconds[1:] or self.step_seconds
        return 1e3 * statistics.median(times) if times else 0.0

    def extend(self, other: History, phase: str) -> History:
        """Append a later phase's history (LP-FT's fine-tuning after its probe), in place."""
        offset = self.epochs_run
        self.phase_starts[phase] = offset
        for name in ("loss", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "step_seconds"):
            getattr(self, name).extend(getattr(other, name))
        if other.best_epoch is not None:
            self.best_epoch = offset + other.best_epoch
        self.stopped_early, self.diverged = other.stopped_early, self.diverged or other.diverged
        self.message = "; ".join(m for m in (self.message, other.message) if m)
        self.train_seconds += other.train_seconds
        self.peak_memory_bytes = max(self.peak_memory_bytes, other.peak_memory_bytes)
        self.optimizer_state_bytes = max(self.optimizer_state_bytes, other.optimizer_state_bytes)
        self.memory_note = other.memory_note or self.memory_note
        return self


def _check(name, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validate(epochs, lr, weight_decay, batch_size, patience, clip_grad_norm, monitor):
    _check("epochs", epochs, isinstance(epochs, int) and not isinstance(epochs, bool)
           and epochs >= 1, "an int >= 1")  # fmt: skip
    _check("lr", lr, _is_num(lr) and lr > 0, "a finite number > 0")
    _check("weight_decay", weight_decay, _is_num(weight_decay) and weight_decay >= 0, ">= 0")
    _check("batch_size", batch_size, isinstance(batch_size, int) and not isinstance(
        batch_size, bool) and batch_size >= 1, "an int >= 1")  # fmt: skip
    _check("patience", patience, patience is None or (isinstance(patience, int)
           and not isinstance(patience, bool) and patience >= 1), "None or an int >= 1")  # fmt: skip
    _check("clip_grad_norm", clip_grad_norm, clip_grad_norm is None or (
        _is_num(clip_grad_norm) and clip_grad_norm > 0), "None or a number > 0")  # fmt: skip
    _check("monitor", monitor, monitor in MONITORS, f"one of {MONITORS}")


NO_DECAY_NAMES = ("cls_token", "pos_embed")  # TinyViT's learned tokens: no weight decay


def decays(name: str, param: torch.Tensor) -> bool:
    """Whether AdamW's weight decay applies to parameter ``name``: the field's rule.

    Decay only matrices and kernels (``ndim >= 2``), never biases or norms' weights (every
    tensor with ``ndim < 2``), as nanoGPT's ``configure_optimizers`` (Karpathy) does and as
    Hugging Face Trainer's ``get_decay_parameter_names`` does by name (biases, LayerNorm);
    and never the class token or the position embeddings (their last name part is in
    ``NO_DECAY_NAMES``), as timm's ViT does (``no_weight_decay()``: ``pos_embed``,
    ``cls_token``), where nanoGPT and Trainer would decay them. Shrinking a bias, a norm's gain
    or a position embedding towards 0 is no regularisation, it only moves the model's offsets.
    The learned prompts / prefixes of prompt and prefix tuning (``(P, D)`` or more) and LoRA's
    ``A``/``B`` are >= 2-D and keep their decay.
    """
    return param.ndim >= 2 and name.rsplit(".", 1)[-1] not in NO_DECAY_NAMES


def decay_param_groups(model_or_named_params, weight_decay: float = 0.01) -> list[dict]:
    """AdamW parameter groups: ``[{"params": decayed, "weight_decay": weight_decay},
    {"params": not decayed, "weight_decay": 0.0}]`` by :func:`decays`; an empty group is left
    out. ``model_or_named_params``: an ``nn.Module`` (all its parameters, frozen ones too) or
    ``(name, parameter)`` pairs. Splitting a group changes no optimizer state (AdamW keeps its
    moments per tensor), so :func:`adamw_state_bytes` holds either way.
    """
    named = model_or_named_params
    if isinstance(named, nn.Module):
        named = named.named_parameters()
    decay, no_decay = [], []
    for name, p in named:
        (decay if decays(name, p) else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]  # fmt: skip
    return [g for g in groups if g["params"]]


def _split_decay(group: dict, names: dict, weight_decay: float) -> list[dict]:
    """One parameter group -> its decay and no-decay halves (other keys kept: lr, name)."""
    wd = group.get("weight_decay", weight_decay)
    params = group["params"]
    params = [params] if torch.is_tensor(params) else list(params)
    named = [(names.get(id(p), ""), p) for p in params]
    return [{**group, **half} for half in decay_param_groups(named, wd)]


def _make_optimizer(model, lr, weight_decay, param_groups, callbacks):
    names = {id(p): n for n, p in model.named_parameters()}
    if param_groups is None:
        # A callback (gradual unfreezing) may unfreeze parameters later, so then every parameter
        # goes in now: AdamW skips a parameter whose .grad is None, weight decay included.
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("model has no trainable parameters (all requires_grad=False)")
        params = [p for p in model.parameters() if p.requires_grad or callbacks]
        groups = _split_decay({"params": params}, names, weight_decay)
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if not isinstance(param_groups, (list, tuple)) or not all(
        isinstance(g, dict) and "params" in g for g in param_groups
    ):
        raise ValueError(
            "param_groups must be a list of dicts with a 'params' key (as torch takes)"
        )
    if not any(p.requires_grad for g in param_groups for p in g["params"]):
        raise ValueError("param_groups hold no trainable parameters (all requires_grad=False)")
    # New dicts: torch writes the scheduled rate into each group, and the caller may reuse them.
    groups = [half for g in param_groups for half in _split_decay(g, names, weight_decay)]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps (AdamW: exp_avg, exp_avg_sq, step)."""
    return sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if torch.is_tensor(t)
    )


def adamw_bytes(trained: int, tensors: int) -> int:
    """AdamW's state for ``trained`` parameters in ``tensors`` tensors (float32): ``exp_avg``
    and ``exp_avg_sq``, 2 x 4 bytes per parameter, and one float32 ``step`` (4 bytes) per tensor."""
    return 2 * 4 * trained + 4 * tensors


def adamw_state_bytes(model: nn.Module) -> int:
    """The bytes ``torch.optim.AdamW`` will keep for ``model``'s trainable parameters
    (:func:`adamw_bytes`); ``History.optimizer_state_bytes`` is what it did keep.

    The compute of a step shrinks far less than this: the forward is unchanged (prompts make
    it longer) and the backward still runs through every frozen layer, so notebooks 02-05
    show step time next to it."""
    trained = [p for p in model.parameters() if p.requires_grad]
    return adamw_bytes(sum(p.numel() for p in trained), len(trained))


class _SavedTensorMeter:
    """Bytes of activations autograd saves for backward in one step (parameters excluded)."""

    def __init__(self, model):
        self.skip = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.seen: dict[int, int] = {}

    def pack(self, t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in self.skip:
            self.seen[storage.data_ptr()] = storage.nbytes()
        return t

    @property
    def bytes(self) -> int:
        return sum(self.seen.values())


def _memory(model, optimizer, activation_bytes, device) -> tuple[int, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "CUDA max_memory_allocated"
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    total = params + grads + optimizer_state_bytes(optimizer) + activation_bytes
    return total, (
        "estimate: parameters + gradients + optimizer state + activations of one batch "
        "(measured with autograd saved-tensor hooks)"
    )


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
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience


class TrainingDiverged(FloatingPointError):
    """The loss turned NaN/inf or exploded; ``fit`` catches it, other loops let it surface."""


def check_loss(value: float, first_loss: float, lr: float, step: int) -> None:
    """Raise :class:`TrainingDiverged` if ``value`` is NaN/inf or > EXPLODE_FACTOR x the first loss.

    The message names the likely cause, a learning rate ``lr`` too high, and what to try.
    """
    if not math.isfinite(value) or value > EXPLODE_FACTOR * max(first_loss, 1e-3):
        raise TrainingDiverged(
            f"training diverged at step {step} (loss = {value:.4g}): the learning rate "
            f"{lr:g} is probably too high; try 10x smaller ({lr / 10:g})"
        )


def check_epoch_loss(
    mean_loss: float, first_loss: float, lr: float, epoch: int, num_classes: int | None = None
) -> None:
    """Raise :class:`TrainingDiverged` if an epoch's ``mean_loss`` ended far above the start.

    Far above: more than ``FAIL_FACTOR`` x the first step's loss and, for a ``num_classes``-way
    cross-entropy, above ln(num_classes), the loss of guessing uniformly. ``epoch`` is 0-based.
    """
    chance = math.log(num_classes) if num_classes and num_classes > 1 else 0.0
    if mean_loss > max(FAIL_FACTOR * max(first_loss, 1e-3), chance):
        above = f" and above chance level ln({num_classes}) = {chance:.2f}" if chance else ""
        raise TrainingDiverged(
            f"training failed in epoch {epoch + 1}: its mean loss {mean_loss:.3g} is "
            f"{mean_loss / max(first_loss, 1e-3):.1f}x the first step's ({first_loss:.3g}){above}"
            f": the learning rate {lr:g} is probably too high; try 10x smaller ({lr / 10:g})"
        )


def at_chance_message(train_acc: float, val_acc: float, num_classes: int, lr: float) -> str:
    """A failure message if both accuracies are at chance (<= CHANCE_FACTOR / num_classes), else ''."""
    level = CHANCE_FACTOR / num_classes
    # with few classes a short, honest run can sit near 1/C, so only 5+ classes are judged
    if num_classes < 5 or train_acc > level or val_acc > level:
        return ""
    return (
        f"training failed: the model ends at chance level (train accuracy {train_acc:.3f}, "
        f"validation {val_acc:.3f}; guessing gives 1/{num_classes} = {1 / num_classes:.3f}): "
        f"the learning rate {lr:g} is probably too high (try 10x smaller, {lr / 10:g}), "
        "or the labels do not match the images"
    )


class _Loop:
    """One ``fit`` call's moving parts: the optimizer step, divergence watch, memory meter."""

    def __init__(self, model, optimizer, scheduler, forward, device, clip_grad_norm, history,
                 loss_fn=None, replay=None, replay_batch_size=None, generator=None):  # fmt: skip
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.forward, self.device, self.clip = forward, device, clip_grad_norm
        self.loss_fn = loss_fn
        self.replay, self.replay_batch_size, self.gen = replay, replay_batch_size, generator
        self.history, self.meter = history, _SavedTensorMeter(model)
        # the peak rate the user asked for (OneCycleLR keeps it as max_lr, the others initial_lr)
        self.base_lr = max(g.get("max_lr", g.get("initial_lr")) for g in optimizer.param_groups)
        self.step, self.first_loss, self.num_classes = 0, None, None

    def check(self, value: float) -> None:
        self.first_loss = value if self.first_loss is None else self.first_loss
        check_loss(value, self.first_loss, self.base_lr, self.step)

    def check_epoch(self, epoch: int) -> None:
        mean = self.history.train_loss[-1]
        check_epoch_loss(mean, self.first_loss, self.base_lr, epoch, self.num_classes)

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
            with torch.autograd.graph.saved_tensors_hooks(self.meter.pack, lambda t: t):
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


def fit(model, train, val=None, *, epochs=10, lr=1e-3, weight_decay=0.01, batch_size=64,
        param_groups=None, schedule="warmup_cosine", warmup=0.1, clip_grad_norm=1.0,
        patience=None, monitor="val_loss", seed=0, device=None, progress=True, callbacks=(),
        forward=None, loss_fn=None, replay=None, replay_batch_size=None,
        raise_diverged=False) -> History:  # fmt: skip
    """Train ``model`` with cross-entropy on ``train``; returns a :class:`History`.

    ``train``/``val``: ``TensorDataset`` or ``(X, y)``; X (N, 1, 8, 8), y (N,) int64.
    Only parameters with ``requires_grad`` are trained. ``param_groups`` (e.g. from
    ``strategies.layerwise_lr_groups``) replaces the single AdamW group; ``lr`` and
    ``weight_decay`` then fill in groups that lack them. ``schedule``/``warmup``: see
    ``ftnotes.schedules``; the schedule steps once per batch. ``seed`` seeds shuffling (its own
    ``torch.Generator``) and dropout (``set_seed``), so two runs give identical numbers.
    ``patience``: stop after that many epochs without improvement of ``monitor``
    (``"val_loss"`` or ``"val_acc"``). Whenever ``val`` is given, the best epoch's weights are
    restored at the end, also when training did not stop early. ``callbacks``:
    ``f(epoch, model, history)`` after each epoch (after validation). ``forward(model, X) ->
    logits`` replaces ``model(X)``. The model is moved to ``device`` (default
    ``utils.get_device()``) and stays there. A NaN/inf/exploding loss stops training, restores
    the weights from the start of that epoch. A run whose last epoch's mean loss ends far above
    the start (:func:`check_epoch_loss`) or, with ``val``, at chance on both splits
    (:func:`at_chance_message`) is flagged and keeps its weights. Each sets ``history.diverged`` and ``.message`` and
    prints the message; with ``raise_diverged=True`` it raises :class:`TrainingDiverged` instead
    (for loops built on ``fit`` that report failures themselves, like ``olympiad.train_expanded``).

    The loss hook, for objectives beyond one cross-entropy (replay, distillation, ...):
    ``loss_fn(model, xb, yb) -> (loss, logits)`` replaces
    ``out = forward(model, xb); return F.cross_entropy(out, yb), out``, the default.
    xb (B, 1, 8, 8) and yb (B,) are the batch, already on ``device``; ``loss`` is the scalar
    tensor to minimise and ``logits`` (B, C) the outputs whose argmax ``train_acc`` counts
    (and whose C the labels are checked against). ``forward`` still serves validation.
    ``replay=(X, y)``: a second data source (e.g. old-task examples); every step then draws
    ``replay_batch_size`` (default ``batch_size``) of them at random, with replacement, from
    the shuffling generator, and calls ``loss_fn(model, xb, yb, rx, ry)`` with
    rx (R, 1, 8, 8), ry (R,) on ``device``; ``replay`` needs a ``loss_fn`` (how the two
    batches combine is the objective's choice). Weight decay follows :func:`decays` (no
    decay on biases, norms, the class token and the position embeddings), in every group.
    """
    _validate(epochs, lr, weight_decay, batch_size, patience, clip_grad_norm, monitor)
    if patience is not None and val is None:
        raise ValueError(f"patience={patience} needs validation data: pass val=...")
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(f"loss_fn must be None or a callable, got {loss_fn!r}")
    if replay is not None and loss_fn is None:
        raise ValueError("replay=... needs loss_fn=...: it says how the replay batch counts")
    X, y = as_tensors(train, "train")
    replay = as_tensors(replay, "replay") if replay is not None else None
    replay_batch_size = batch_size if replay_batch_size is None else replay_batch_size
    _check("replay_batch_size", replay_batch_size, isinstance(replay_batch_size, int)
           and not isinstance(replay_batch_size, bool) and replay_batch_size >= 1,
           "None or an int >= 1")  # fmt: skip
    val_data = as_tensors(val, "val") if val is not None else None
    device = get_device(device)  # validates the name and that the device exists
    total = epochs * math.ceil(len(X) / batch_size)
    warmup_steps(warmup, total)  # validates warmup before any work
    set_seed(seed)
    model.to(device)
    forward = forward or (lambda m, x: m(x))
    optimizer = _make_optimizer(model, lr, weight_decay, param_groups, callbacks)
    scheduler = make_scheduler(schedule, optimizer, total, warmup=warmup)
    history, stopper = History(), _Stopper(monitor, patience)
    gen = torch.Generator().manual_seed(seed)
    loop = _Loop(model, optimizer, scheduler, forward, device, clip_grad_norm, history,
                 loss_fn, replay, replay_batch_size, gen)  # fmt: skip
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    quiet = not progress or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    bar = tqdm(range(epochs), desc="fit", leave=False, disable=quiet)
    start = time.perf_counter()
    for epoch in bar:
        good_state = copy.deepcopy(model.state_dict())  # the last weights known to be finite
        try:
            loop.train_epoch(X, y, torch.randperm(len(X), generator=gen), batch_size)
            postfix = {"loss": f"{history.train_loss[-1]:.3f}"}
            if val_data is not None:
                vl, va = loss_and_accuracy(model, val_data, forward=forward)
                history.val_loss.append(vl)
                history.val_acc.append(va)
                loop.check(vl)
                stop = stopper.update(epoch, vl if monitor == "val_loss" else va, model)
                postfix["val_acc"] = f"{va:.3f}"
        except TrainingDiverged as err:
            if raise_diverged:
                raise
            history.diverged, history.message = True, str(err)
            model.load_state_dict(good_state)
            break
        bar.set_postfix(postfix)
        for callback in callbacks:
            callback(epoch, model, history)
        if val_data is not None and stop and epoch < epochs - 1:
            history.stopped_early = True
            break
    bar.close()
    if stopper.best_state is not None:
        model.load_state_dict(stopper.best_state)
        history.best_epoch = stopper.best_epoch
    history.train_seconds = time.perf_counter() - start
    history.optimizer_state_bytes = optimizer_state_bytes(optimizer)
    history.peak_memory_bytes, history.memory_note = _memory(
        model, optimizer, loop.meter.bytes, device
    )
    if not history.diverged and history.train_loss:
        # judged on the last epoch, not stopped mid-way: a loss spike that recovers is no
        # failure, and keeping the weights shows the damage a too-high rate did
        try:
            loop.check_epoch(history.epochs_run - 1)
        except TrainingDiverged as err:
            if raise_diverged:
                raise
            history.diverged, history.message = True, str(err)
    if not history.diverged and val_data is not None and loop.num_classes and history.val_acc:
        final = history.best_epoch if history.best_epoch is not None else -1
        history.message = at_chance_message(
            history.train_acc[-1], history.val_acc[final], loop.num_classes, loop.base_lr
        )
        history.diverged = bool(history.message)
    if history.diverged and raise_diverged:
        raise TrainingDiverged(history.message)
    if history.diverged:  # printed every time: a student re-running a panel must see it again
        print(f"⚠️ {history.message}")
    return history
