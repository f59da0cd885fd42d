"""Learning-rate schedules, built from ``torch.optim.lr_scheduler`` pieces.

A schedule is stepped once per optimizer step (not per epoch). Every schedule scales each
parameter group's own starting rate, so layer-wise rates (``strategies.layerwise_lr_groups``)
keep their ratios all the way through.

* ``warmup_cosine``: linear warmup, then cosine decay to 0 (Loshchilov & Hutter 2017, SGDR;
  the warmup of Goyal et al. 2017). The usual default for fine-tuning transformers.
* ``warmup_linear``: linear warmup, then linear decay to 0 (BERT, Devlin et al. 2019).
* ``constant``: the same rate at every step; no warmup (``warmup`` is ignored).
* ``one_cycle``: Smith & Topin 2019, torch's ``OneCycleLR``; ``warmup`` is its rising phase.
* ``slanted_triangular``: ULMFiT (Howard & Ruder 2018, Eq. 3): a short linear rise over
  ``cut_frac`` of the steps, then a long linear fall, from ``lr/ratio`` up to ``lr`` and back.
  torch has no such scheduler, so it is a ``LambdaLR`` with the paper's formula.

Warmup starts near 0, not at the peak: step ``s`` of ``w`` warmup steps runs at
``(s + 1) / (w + 1)`` of the rate, so the peak is reached exactly at step ``w``.

The reproduction scripts (``python -m ftnotes.pretrain``, and the LM's loop
:func:`ftnotes.lm.sft.train_sft` that ``pretrain_lm`` and notebook 08 use) take their
warmup-cosine from here too, as the closed form :func:`warmup_cosine` (a ``LambdaLR``,
:func:`warmup_cosine_scheduler`). It counts the warmup one step differently (the peak at step
``w - 1``, the cosine over ``total - w`` steps from step ``w``) and is computed in closed form,
where torch's ``CosineAnnealingLR`` is recursive (equal to the last bits or so). Both stay as
they are, bit for bit: the shipped TinyViT and tiny LM were trained with the closed form, and
every number ``fit`` gave the notebooks with torch's pieces.
"""

from __future__ import annotations

import math

import torch
from torch.optim import lr_scheduler as sched

from .checks import check_choice, check_int, check_number

SCHEDULES = ("warmup_cosine", "warmup_linear", "constant", "one_cycle", "slanted_triangular")


def warmup_steps(warmup: float | int, total_steps: int) -> int:
    """Number of warmup steps: ``warmup`` is a fraction in [0, 1) (float) or a step count (int)."""
    if isinstance(warmup, bool) or not isinstance(warmup, (int, float)):
        raise ValueError(
            f"warmup must be a fraction in [0, 1) or an int number of steps, got {warmup!r}"
        )
    if isinstance(warmup, int):
        if not 0 <= warmup < total_steps:
            raise ValueError(
                f"warmup={warmup} steps must be in [0, total_steps={total_steps}) "
                "(or pass a fraction in [0, 1))"
            )
        return warmup
    if not (math.isfinite(warmup) and 0.0 <= warmup < 1.0):
        raise ValueError(f"warmup must be a fraction in [0, 1) (or int steps), got {warmup!r}")
    # a warmup asked for (> 0) is never rounded away: at least one step (0.01 of 20 steps -> 1)
    steps = max(1, round(warmup * total_steps)) if warmup > 0 else 0
    return min(steps, total_steps - 1)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear from ~0 to 1 over ``warmup`` steps, then cosine to 0.

    ``(step + 1) / warmup`` for ``step < warmup``; then ``0.5 (1 + cos(pi p))`` with
    ``p = min(1, (step - warmup) / max(1, total - warmup))``. The schedule of the shipped
    weights (see the module's docstring); ``LambdaLR`` multiplies each group's rate by it.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def warmup_cosine_scheduler(optimizer, total: int, warmup: int) -> sched.LambdaLR:
    """:func:`warmup_cosine` over ``total`` steps with ``warmup`` of them rising, as a
    ``LambdaLR`` on ``optimizer``; call ``.step()`` after each optimizer step."""
    return sched.LambdaLR(optimizer, lambda s: warmup_cosine(s, total, warmup))


def _with_warmup(optimizer, w: int, main: sched.LRScheduler) -> sched.LRScheduler:
    if w == 0:
        return main
    # start_factor 1/(w+1): the first step already learns a little, the peak comes at step w.
    ramp = sched.LinearLR(optimizer, start_factor=1.0 / (w + 1), end_factor=1.0, total_iters=w)
    return sched.SequentialLR(optimizer, [ramp, main], milestones=[w])


def _slanted_triangular(total_steps: int, cut_frac: float, ratio: float):
    """ULMFiT Eq. 3 as a multiplier of the peak rate, for step t = 0 .. T-1."""
    cut = max(1, math.floor(total_steps * cut_frac))

    def factor(t: int) -> float:
        if t < cut:
            p = t / cut
        else:
            p = max(0.0, 1.0 - (t - cut) / max(1.0, cut * (1.0 / cut_frac - 1.0)))
        return (1.0 + p * (ratio - 1.0)) / ratio

    return factor


def make_scheduler(
    name: str, optimizer: torch.optim.Optimizer, total_steps: int, warmup=0.1, **kw
) -> sched.LRScheduler:
    """A scheduler for ``total_steps`` optimizer steps; call ``.step()`` after each one.

    ``warmup``: fraction of ``total_steps`` in [0, 1) or an int number of steps.
    Extra keywords: ``slanted_triangular`` takes ``ratio`` (default 32) and ``cut_frac``
    (default: the warmup fraction, 0.1 as in the paper); ``one_cycle`` passes ``kw`` on to
    ``OneCycleLR`` (e.g. ``div_factor``). Unknown names raise ``ValueError``.
    """
    check_choice("schedule", name, SCHEDULES)
    check_int("total_steps", total_steps)
    w = warmup_steps(warmup, total_steps)
    if kw and name not in ("one_cycle", "slanted_triangular"):
        raise ValueError(f"schedule {name!r} takes no extra options, got {sorted(kw)}")
    if name == "constant":
        return sched.ConstantLR(optimizer, factor=1.0, total_iters=total_steps)
    if name == "warmup_cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=total_steps - w, eta_min=0.0)
        return _with_warmup(optimizer, w, main)
    if name == "warmup_linear":
        main = sched.LinearLR(optimizer, 1.0, 0.0, total_iters=total_steps - w)
        return _with_warmup(optimizer, w, main)
    if name == "one_cycle":
        if w == 0:
            raise ValueError(
                f"schedule 'one_cycle' needs warmup > 0 (its rising phase), got {warmup!r}"
            )
        if total_steps < 3:
            raise ValueError(f"schedule 'one_cycle' needs total_steps >= 3, got {total_steps}")
        # OneCycleLR divides by (rising steps - 1): a one-step rise would be a ZeroDivisionError
        w = max(w, 2)
        max_lr = [g["lr"] for g in optimizer.param_groups]
        return sched.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=w / total_steps, **kw
        )
    cut_frac = kw.pop("cut_frac", None)
    cut_frac = max(w, 1) / total_steps if cut_frac is None else cut_frac
    ratio = kw.pop("ratio", 32.0)
    if kw:
        raise ValueError(f"slanted_triangular takes only cut_frac and ratio, got {sorted(kw)}")
    check_number("cut_frac", cut_frac)
    if not 0.0 < cut_frac < 1.0:
        raise ValueError(f"cut_frac must be in (0, 1), got {cut_frac!r}")
    check_number("ratio", ratio, 1.0)
    return sched.LambdaLR(optimizer, _slanted_triangular(total_steps, cut_frac, ratio))


def schedule_values(name: str, total_steps: int, base_lr: float = 1.0, warmup=0.1, **kw):
    """The rate at each of ``total_steps`` steps (list of floats), for plotting a schedule.

    Runs the real scheduler on a throw-away AdamW optimizer, so the plot is what ``fit`` uses.
    """
    check_number("base_lr", base_lr, 0, strict=True)
    dummy = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([dummy], lr=base_lr)
    scheduler = make_scheduler(name, opt, total_steps, warmup=warmup, **kw)
    values = []
    for _ in range(total_steps):
        values.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradient: the parameter is untouched, but torch sees step() then step()
        scheduler.step()
    return values
