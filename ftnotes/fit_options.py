"""``fit``'s options in three groups, each validated when it is made (a bad value is a
``ValueError`` naming it before any work starts): :class:`Optimization` (how a step updates the
weights), :class:`Stopping` (when training ends) and :class:`Objective` (what a step
minimises). ``fit`` takes the groups as objects or their fields as flat keywords, as the
notebooks write them (``fit(model, data, lr=1e-2, patience=3)``): :func:`grouped`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from .checks import check_bool, check_callable, check_choice, check_int, check_number
from .optim import check_param_groups
from .schedules import SCHEDULES

MONITORS = ("val_loss", "val_acc")


@dataclass(frozen=True)
class Optimization:
    """How each step updates the weights. AdamW at peak rate ``lr``; ``weight_decay`` on the
    matrices only (:func:`ftnotes.optim.decays`), in every group; ``param_groups`` (e.g.
    ``strategies.layerwise_lr_groups``) replaces the single group, ``lr`` and ``weight_decay``
    filling in what a group lacks; ``schedule``/``warmup``: see :mod:`ftnotes.schedules`, stepped
    once per batch; ``clip_grad_norm``: the gradient's global norm cap (None: no clipping)."""

    lr: float = 1e-3
    weight_decay: float = 0.01
    param_groups: list | None = None
    schedule: str = "warmup_cosine"
    warmup: float | int = 0.1
    clip_grad_norm: float | None = 1.0

    def __post_init__(self):
        check_number("lr", self.lr, 0, strict=True)
        check_number("weight_decay", self.weight_decay, 0)
        check_param_groups(self.param_groups)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_number("clip_grad_norm", self.clip_grad_norm, 0, strict=True, optional=True)


@dataclass(frozen=True)
class Stopping:
    """When training ends. ``patience``: after that many epochs without improvement of
    ``monitor`` (needs ``val``). With ``val`` the best epoch's weights are restored at the end,
    also without early stopping. ``raise_diverged``: a divergence or failed run raises
    :class:`TrainingDiverged` instead of being flagged and printed (for loops built on ``fit``
    that report failures themselves, like ``contest.toolbox.train_expanded``)."""

    patience: int | None = None
    monitor: str = "val_loss"
    raise_diverged: bool = False

    def __post_init__(self):
        check_int("patience", self.patience, 1, optional=True)
        check_choice("monitor", self.monitor, MONITORS)
        check_bool("raise_diverged", self.raise_diverged)


@dataclass(frozen=True)
class Objective:
    """What a step minimises. ``forward(model, X) -> logits`` replaces ``model(X)`` (training
    and validation). ``loss_fn(model, xb, yb) -> (loss, logits)`` replaces the default
    ``out = forward(model, xb); return F.cross_entropy(out, yb), out``: xb (B, 1, 8, 8) and yb
    (B,) on the device, ``loss`` the scalar to minimise, ``logits`` (B, C) what ``train_acc``
    counts (and the labels are checked against). ``replay=(X, y)``: a second data source;
    every step draws ``replay_batch_size`` (default: the batch size) of it at random, with
    replacement, from fit's seeded generator and calls ``loss_fn(model, xb, yb, rx, ry)``; how
    the two batches combine is the objective's choice, so ``replay`` needs a ``loss_fn``."""

    forward: Callable | None = None
    loss_fn: Callable | None = None
    replay: tuple | None = None  # (X, y) or a TensorDataset
    replay_batch_size: int | None = None

    def __post_init__(self):
        check_callable("forward", self.forward, optional=True)
        check_callable("loss_fn", self.loss_fn, optional=True)
        if self.replay is not None and self.loss_fn is None:
            raise ValueError("replay=... needs loss_fn=...: it says how the replay batch counts")
        check_int("replay_batch_size", self.replay_batch_size, 1, optional=True)


def grouped(optimization, stopping, objective, flat: dict):
    """The three option groups: each the object given (or its defaults), with the flat keywords
    of its fields applied on top (``fit(model, data, lr=1e-2)`` as the notebooks write it)."""
    groups = []
    for cls, given in ((Optimization, optimization), (Stopping, stopping), (Objective, objective)):
        mine = {f.name: flat.pop(f.name) for f in fields(cls) if f.name in flat}
        if given is not None and not isinstance(given, cls):
            raise ValueError(f"{cls.__name__.lower()} must be None or {cls.__name__}(...), "
                             f"got {given!r}")  # fmt: skip
        groups.append(cls(**mine) if given is None else replace(given, **mine))
    if flat:
        names = sorted(f.name for cls in (Optimization, Stopping, Objective) for f in fields(cls))
        raise TypeError(f"fit() got unexpected keyword arguments {sorted(flat)}; "
                        f"the options are {names}")  # fmt: skip
    return groups
