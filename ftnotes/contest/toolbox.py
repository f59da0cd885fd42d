"""The toolbox of the old + new classes tasks: head expansion, training the expanded model
(replay, distillation, per-module rates), solutions built from it, and a timed, scored run.

IOAI 2026 at-home task 1 gave a model that knew 16 classes, asked it to learn 13 more and scored
½·(accuracy on the old classes) + ½·(accuracy on the new ones); head expansion, replay,
distillation, freezing, LoRA and per-module learning rates were the hinted tools. Here the old
classes are the 34 printed glyphs (labels 0-33, output rows 0-33) and the new ones the 10
handwritten digits (labels 34-43, output rows 34-43) of :mod:`ftnotes.contest.oldnew`.

A solution is ``solve(model, data) -> model``: it gets a fresh copy of the pretrained model (34
outputs) and the task's :class:`~ftnotes.contest.core.ContestData` and returns a model with
34 + 10 outputs (:func:`expand_head`). :func:`run_solution` times it and scores it with the
task's scorer (:func:`ftnotes.contest.metrics.old_new_score`).
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from ftnotes import peft
from ftnotes.checks import check_number
from ftnotes.contest.metrics import task_aware_labels
from ftnotes.contest.oldnew import NUM_NEW, NUM_OLD
from ftnotes.contest.result import Result
from ftnotes.data import subset_per_class
from ftnotes.evaluate import logits
from ftnotes.ledger import state_dict_bytes, trainable_state_dict
from ftnotes.strategies import apply_strategy, check_head_rows
from ftnotes.train import fit
from ftnotes.utils import check_int, count_params, model_device, pinned_threads, set_seed

STRATEGIES = ("full_ft", "linear_probe", "partial_ft", "lora")


def expand_head(model, num_new: int = NUM_NEW, init_from_rows=None):
    """Head expansion, in place: ``model.head`` (D -> S) becomes (D -> S + num_new).

    Rows 0..S-1 are copies of the old head, so the old classes' logits do not change; the new
    rows start from the old rows ``init_from_rows`` (e.g. ``range(10)``: glyphs "0"-"9" start
    the digit rows) or small random weights. Returns ``model``.
    """
    old = getattr(model, "head", None)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"model needs an nn.Linear `head`, got {type(old).__name__}")
    check_int("num_new", num_new)
    rows = check_head_rows(init_from_rows, num_new, old)
    new = nn.Linear(old.in_features, old.out_features + num_new)
    new = new.to(old.weight.device, old.weight.dtype)
    nn.init.trunc_normal_(new.weight, std=0.02)
    nn.init.zeros_(new.bias)
    with torch.no_grad():
        new.weight[: old.out_features] = old.weight
        new.bias[: old.out_features] = old.bias
        if rows is not None:
            new.weight[old.out_features :] = old.weight[rows]
            new.bias[old.out_features :] = old.bias[rows]
    model.head = new
    return model


def replay_set(data, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` old-class training examples of every class from ``data.extra["old_train"]``
    (a fixed, seeded choice): X (34 * per_class, 1, 8, 8), y (34 * per_class,) in 0-33."""
    check_int("per_class", per_class)
    x, y = data.extra["old_train"]
    keep = torch.as_tensor(subset_per_class(y.numpy(), per_class, seed, "glyphs"))
    return x[keep], y[keep]


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0):
    """KL(teacher ‖ student) on softened outputs, times T² (Hinton et al. 2015); (B, C) each."""
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    t = temperature
    return F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1),
                    log_target=True, reduction="batchmean") * t * t  # fmt: skip


def _groups(model, lr, head_lr):
    """Per-module rates: the head at ``head_lr``, every other trainable tensor at ``lr``."""
    head = [p for n, p in model.named_parameters() if p.requires_grad and ".head." in f".{n}"]
    body = [p for n, p in model.named_parameters() if p.requires_grad and ".head." not in f".{n}"]
    # weight_decay 0: decoupled decay would shrink the old rows of the head even where
    # they get no gradient, and change the old predictions a linear probe must keep.
    return [{"params": g, "lr": r, "weight_decay": 0.0}
            for g, r in ((body, lr), (head, head_lr or lr)) if g]  # fmt: skip


def expanded_loss(teacher=None, distill_weight: float = 0.0, temperature: float = 2.0):
    """The task-aware objective as a ``fit`` loss hook: ``loss_fn(model, xb, yb[, rx, ry])``.

    Cross-entropy of the new rows (``NUM_OLD:``) on the new-class batch xb (B, 1, 8, 8) with yb
    (B,) counted from the first new row (0-9); with a replay batch rx (R, 1, 8, 8), ry (R,) in
    0-33, cross-entropy of the old rows on it (one forward pass over both); with
    ``distill_weight``, :func:`distill_loss` pulling the old rows towards the frozen ``teacher``
    on every image of the step. Returns ``(loss, new-row logits (B, 10))``, the logits ``fit``
    counts for its training accuracy.
    """

    def loss_fn(model, xb, yb, rx=None, ry=None):
        n, inputs = len(xb), xb if rx is None else torch.cat([xb, rx])
        out = model(inputs)
        loss = F.cross_entropy(out[:n, NUM_OLD:], yb)
        if rx is not None:
            loss = loss + F.cross_entropy(out[n:, :NUM_OLD], ry)
        if distill_weight > 0:
            with torch.no_grad():
                soft = teacher(inputs)
            loss = loss + distill_weight * distill_loss(out[:, :NUM_OLD], soft, temperature)
        return loss, out[:n, NUM_OLD:]

    return loss_fn


def train_expanded(model, data, *, epochs: int = 5, lr: float = 1e-3, head_lr=None,
                   replay_per_class: int = 0, distill_weight: float = 0.0,
                   temperature: float = 2.0, teacher=None, batch_size: int = 32,
                   seed: int = 0) -> list:  # fmt: skip
    """Train an expanded model (34 + 10 outputs) on ``data.train`` (new classes, labels 34-43);
    returns the loss per step.

    Each step: cross-entropy of the new rows on a batch of new-class images; with
    ``replay_per_class``, cross-entropy of the old rows on a batch of replayed old-class images
    (:func:`replay_set`); with ``distill_weight``, :func:`distill_loss` pulling the old rows
    towards the frozen ``teacher`` (the original model) on both batches (:func:`expanded_loss`).
    The loop is :func:`ftnotes.train.fit` with that loss hook and the replayed images as its
    ``replay`` source: AdamW + warmup-cosine, no gradient clipping, no weight decay (see
    ``_groups``), only ``requires_grad`` tensors train, on the model's device. A NaN or exploding
    loss, or a last epoch whose mean loss ends far above the first step's, raises
    :class:`ftnotes.train.TrainingDiverged` (:func:`run_solution` reports it as an error with the
    message, so a notebook panel never crashes).
    """
    check_int("epochs", epochs)
    check_number("lr", lr, 0, strict=True)
    check_number("head_lr", head_lr, 0, strict=True, optional=True)
    check_int("batch_size", batch_size)
    check_int("replay_per_class", replay_per_class, 0)
    check_number("distill_weight", distill_weight, 0)
    if distill_weight > 0 and teacher is None:
        raise ValueError("distill_weight > 0 needs teacher= (the frozen original model)")
    x, y = data.train
    if len(y) and int(y.min()) < NUM_OLD:
        raise ValueError(f"data.train must hold new-class labels {NUM_OLD}-"
                         f"{NUM_OLD + NUM_NEW - 1}, got labels from {int(y.min())}")  # fmt: skip
    set_seed(seed)
    replay = replay_set(data, replay_per_class, seed) if replay_per_class else None
    loss_fn = expanded_loss(teacher, distill_weight, temperature)
    history = fit(model, (x, y - NUM_OLD), epochs=epochs, lr=lr, weight_decay=0.0,
                  batch_size=batch_size, param_groups=_groups(model, lr, head_lr),
                  schedule="warmup_cosine", warmup=0.1, clip_grad_norm=None, seed=seed,
                  device=model_device(model), progress=False, loss_fn=loss_fn, replay=replay,
                  raise_diverged=True)  # fmt: skip
    return history.loss


def make_solution(strategy: str = "lora", *, lr: float = 3e-3, head_lr=1e-2, epochs: int = 5,
                  replay_per_class: int = 0, distill_weight: float = 0.0, r: int = 4, k: int = 1,
                  align_head: bool = True, seed: int = 0):  # fmt: skip
    """A ``solve(model, data)`` function built from the toolbox, for trying choices quickly.

    ``strategy``: what trains besides the head: ``full_ft`` (everything), ``linear_probe``
    (only the head), ``partial_ft`` (the top ``k`` blocks), ``lora`` (rank-``r`` LoRA on
    q_proj/v_proj, Hu et al. 2021). ``align_head``: the new rows start from the old rows
    "0"-"9".
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")

    def solve(model, data):
        set_seed(seed)  # the new head rows and LoRA's A start from random draws
        teacher = copy.deepcopy(model).eval().requires_grad_(False) if distill_weight else None
        expand_head(model, NUM_NEW, range(NUM_NEW) if align_head else None)
        if strategy == "lora":
            peft.add_lora(model, peft.LoraConfig(r=r, lora_alpha=2 * r))  # scaling 2
        else:
            apply_strategy(model, strategy, k)  # full_ft, linear_probe or partial_ft (top k)
        train_expanded(model, data, epochs=epochs, lr=lr, head_lr=head_lr,
                       replay_per_class=replay_per_class, distill_weight=distill_weight,
                       teacher=teacher, seed=seed)  # fmt: skip
        return model

    solve.settings = dict(strategy=strategy, lr=lr, head_lr=head_lr, epochs=epochs,
                          replay_per_class=replay_per_class, distill_weight=distill_weight,
                          r=r, k=k, align_head=align_head)  # fmt: skip
    return solve


def predict_task_aware(model, x: torch.Tensor, is_old: torch.Tensor) -> torch.Tensor:
    """Labels (N,) for images x (N, 1, 8, 8): each item's argmax over its own rows (the old
    rows 0-33 where ``is_old`` (N,) is True, the new rows 34-43 elsewhere)."""
    return task_aware_labels(logits(model, x), is_old, NUM_OLD)


def _scored(task, name, model, out, y, seconds, limit) -> Result:
    parts = task.score(out, y)
    score = parts.pop("score")
    over = seconds > limit
    trainable = count_params(model, trainable_only=True)
    ckpt = trainable_state_dict(model) if trainable < count_params(model) else model.state_dict()
    return Result(task.name, name, "time limit exceeded" if over else "scored", seconds, limit,
                  score, parts=parts,
                  message=f"{seconds:.1f} s > limit {limit:.0f} s: this run would count 0"
                  if over else "",
                  extra={"trainable_params": trainable,
                         "checkpoint_bytes": state_dict_bytes(ckpt)})  # fmt: skip


def run_solution(task, solve, base, data, test, *, time_limit_s=None, name=None) -> Result:
    """Time ``solve(copy of base, data)``, then score what it returns on ``test`` = (X, y) with
    ``task.score`` (the model's outputs (N, C), so a task-aware task takes each item's argmax
    over its own rows). Returns a :class:`~ftnotes.contest.result.Result` with the trainable
    parameter count and checkpoint bytes in ``extra``.

    Runs on one torch thread (:func:`ftnotes.utils.pinned_threads`), restored afterwards.
    Never raises on the student's code: ``NotImplementedError`` gives "not attempted", another
    error "error" with its message; a run longer than ``time_limit_s`` (default: the task's)
    keeps its score for reading but is "time limit exceeded" (it would count 0).
    """
    limit = task.time_limit_s if time_limit_s is None else time_limit_s
    check_number("time_limit_s", limit, 0, strict=True)
    name = name or getattr(solve, "__name__", "solution")
    model = copy.deepcopy(base).requires_grad_(True)
    start = time.perf_counter()
    try:
        with pinned_threads(1):  # graded and timed alike on an idle or a busy machine
            model = solve(model, data)
            seconds = time.perf_counter() - start
            out = logits(model, test[0])
            if out.shape[-1] != task.num_classes:
                raise ValueError(f"the model must output {NUM_OLD} old + {NUM_NEW} new rows = "
                                 f"{task.num_classes} (see expand_head), got {out.shape[-1]}")  # fmt: skip
            return _scored(task, name, model, out, test[1], seconds, limit)
    except NotImplementedError:
        return Result(task.name, name, "not attempted", time_limit_s=limit,
                      message="not attempted yet: write your solve(model, data) and run this "
                      "cell again")  # fmt: skip
    except Exception as err:  # the student's code: report it, keep the notebook running
        return Result(task.name, name, "error", time.perf_counter() - start, limit,
                      message=f"{type(err).__name__}: {err}")  # fmt: skip
