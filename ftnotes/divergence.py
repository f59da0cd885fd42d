"""Divergence and failed-run detection for a training loop, with messages that name the cause.

A notebook slider at an extreme learning rate must not crash a lesson or pass silently:

* during training, one step's loss NaN/inf or ``EXPLODE_FACTOR`` x the first step's:
  :func:`check_loss` raises :class:`TrainingDiverged` at once (``fit`` then restores the last
  good weights);
* after training, the last epoch's mean loss far above where training started
  (:func:`check_epoch_loss`), or both accuracies at chance (:func:`at_chance_message`): the run
  failed, though its weights are kept (they show what the rate did).

``fit`` prints each message (not ``warnings.warn``, whose once-per-location registry would hide
it on every re-run of a notebook panel); loops built on ``fit`` may ask for the exception.
"""

from __future__ import annotations

import math

EXPLODE_FACTOR = 1e4  # one step's loss this many times the first one: diverged, stop at once
# The last epoch's mean loss this many times the first step's (and above chance, ln C): failed.
# Judged at the end, not mid-way: on notebook 01 (digits, 20 labels per class, 40 epochs) lr 3e-2
# spikes to 2.8x and recovers to 0.78 test accuracy; notebook 06's lr 3e-2 ends at 20x.
FAIL_FACTOR = 3.0
CHANCE_FACTOR = 2.0  # train and val accuracy both <= this x 1/C after training: at chance


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


def failed_run_message(history, first_loss: float, lr: float, num_classes: int | None) -> str:
    """Why a finished run failed ('' if it did not): its last epoch's mean loss far above the
    start (:func:`check_epoch_loss`), else, with validation, both accuracies at chance
    (:func:`at_chance_message`, on the epoch whose weights were kept). ``history``: a
    ``train.History`` that did not diverge mid-way."""
    if not history.train_loss:
        return ""
    try:
        check_epoch_loss(history.train_loss[-1], first_loss, lr, history.epochs_run - 1,
                         num_classes)  # fmt: skip
    except TrainingDiverged as err:
        return str(err)
    if not (num_classes and history.val_acc):
        return ""
    final = history.best_epoch if history.best_epoch is not None else -1
    return at_chance_message(history.train_acc[-1], history.val_acc[final], num_classes, lr)
