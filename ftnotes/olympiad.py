"""The IOAI-style task of notebook 06: learn the handwritten digits without forgetting the glyphs.

IOAI 2026 at-home task 1 gave a model that knew 16 classes, asked it to learn 13 more and scored
½·(accuracy on the old classes) + ½·(accuracy on the new ones); head expansion, replay,
distillation, freezing, LoRA and per-module learning rates were the hinted tools. Here the
shipped TinyViT knows the 34 printed glyph classes (the source) and must learn the 10
handwritten digits (the target), within a time budget:

    score = ½ · glyph test accuracy (output rows 0-33) + ½ · digits test accuracy (rows 34-43)

A solution is a function ``solve(model, data) -> model``. It gets a fresh copy of the pretrained
TinyViT (34 outputs) and :class:`OlympiadData` (what it may train on; the test sets stay inside
the scorer) and returns a model whose output has 34 + 10 rows: the head *expanded* by 10 digit
rows (:func:`expand_head`). Each half is scored on its own rows (task-aware, like
``evaluate.source_retention``); the IOAI task scored one softmax over all classes, which is
harder. :func:`run_solution` times ``solve``; a run over ``budget_s`` is flagged and counts 0.

Toolbox: :func:`expand_head`, :func:`train_expanded` (replay, distillation from the frozen
original (Hinton et al. 2015; Li & Hoiem 2016, "Learning without Forgetting"), per-module
learning rates) and :func:`make_solution` (freezing, partial fine-tuning, LoRA, full FT).
"""

from __future__ import annotations

import copy
import inspect
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ftnotes import peft
from ftnotes.checks import check_choice, check_number
from ftnotes.data import DIGIT_CLASSES, GLYPH_CLASSES, glyph_split, load_task, subset_per_class
from ftnotes.evaluate import accuracy, ioai_score
from ftnotes.ledger import state_dict_bytes, trainable_state_dict
from ftnotes.strategies import apply_strategy, check_head_rows
from ftnotes.train import fit
from ftnotes.utils import check_int, count_params, model_device, pinned_threads, set_seed

NUM_SOURCE, NUM_TARGET = len(GLYPH_CLASSES), len(DIGIT_CLASSES)  # 34 glyph rows, 10 digit rows
BUDGET_S = 60.0  # seconds a solution may train; the reference needs a fraction of it
LABELS_PER_CLASS = 50  # 500 labelled digits, as in a typical olympiad task
STRATEGIES = ("full_ft", "linear_probe", "partial_ft", "lora")


@dataclass
class OlympiadData:
    """What a solution may use. X (N, 1, 8, 8) float32 in [0, 1], y (N,) int64.

    ``target_train``/``target_val``: digits (labels 0-9, i.e. output rows 34-43).
    ``source_train``: the glyph training split (labels 0-33), for replay and distillation.
    ``source_val``: glyph validation images, to check retention before submitting.
    """

    target_train: tuple
    target_val: tuple
    source_train: tuple
    source_val: tuple

    def replay(self, per_class: int, seed: int = 0) -> tuple:
        """``per_class`` glyph training examples of every class (a fixed, seeded choice)."""
        check_int("per_class", per_class)
        x, y = self.source_train
        keep = torch.as_tensor(subset_per_class(y.numpy(), per_class, seed, "glyphs"))
        return x[keep], y[keep]


def load_olympiad(labels_per_class: int = LABELS_PER_CLASS, seed: int = 0):
    """``(data, tests)``: the :class:`OlympiadData` a solution sees and the hidden test sets
    ``{"source": (X, y), "target": (X, y)}`` that only the scorer uses."""
    digits = load_task("digits", labels_per_class=labels_per_class, seed=seed)
    data = OlympiadData(digits.train.tensors, digits.val.tensors, glyph_split("train"),
                        glyph_split("val"))  # fmt: skip
    return data, {"source": glyph_split("test"), "target": digits.test.tensors}


def expand_head(model, num_new: int = NUM_TARGET, init_from_rows=None):
    """Head expansion, in place: ``model.head`` (D -> S) becomes (D -> S + num_new).

    Rows 0..S-1 are copies of the old head, so the source predictions do not change; the new
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


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0):
    """KL(teacher ‖ student) on softened outputs, times T² (Hinton et al. 2015); (B, C) each."""
    check_number("temperature", temperature, 0, strict=True)
    t = temperature
    return F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1),
                    log_target=True, reduction="batchmean") * t * t  # fmt: skip


def _groups(model, lr, head_lr):
    """Per-module rates: the head at ``head_lr``, every other trainable tensor at ``lr``."""
    head = [p for n, p in model.named_parameters() if p.requires_grad and ".head." in f".{n}"]
    body = [p for n, p in model.named_parameters() if p.requires_grad and ".head." not in f".{n}"]
    # weight_decay 0: decoupled decay would shrink the glyph rows of the head even where
    # they get no gradient, and change the source predictions a linear probe must keep.
    return [{"params": g, "lr": r, "weight_decay": 0.0}
            for g, r in ((body, lr), (head, head_lr or lr)) if g]  # fmt: skip


def expanded_loss(teacher=None, distill_weight: float = 0.0, temperature: float = 2.0):
    """The olympiad objective as a ``fit`` loss hook: ``loss_fn(model, xb, yb[, rx, ry])``.

    Cross-entropy of the digit rows (``NUM_SOURCE:``) on the digits xb (B, 1, 8, 8), yb (B,);
    with a replay batch rx (R, 1, 8, 8), ry (R,), cross-entropy of the glyph rows on it (one
    forward pass over both); with ``distill_weight``, :func:`distill_loss` pulling the glyph
    rows towards the frozen ``teacher`` on every image of the step. Returns ``(loss, digit
    logits (B, 10))``, the logits ``fit`` counts for its training accuracy.
    """

    def loss_fn(model, xb, yb, rx=None, ry=None):
        n, inputs = len(xb), xb if rx is None else torch.cat([xb, rx])
        out = model(inputs)
        loss = F.cross_entropy(out[:n, NUM_SOURCE:], yb)
        if rx is not None:
            loss = loss + F.cross_entropy(out[n:, :NUM_SOURCE], ry)
        if distill_weight > 0:
            with torch.no_grad():
                soft = teacher(inputs)
            loss = loss + distill_weight * distill_loss(out[:, :NUM_SOURCE], soft, temperature)
        return loss, out[:n, NUM_SOURCE:]

    return loss_fn


def train_expanded(model, data: OlympiadData, *, epochs: int = 5, lr: float = 1e-3,
                   head_lr=None, replay_per_class: int = 0, distill_weight: float = 0.0,
                   temperature: float = 2.0, teacher=None, batch_size: int = 32,
                   seed: int = 0) -> list:  # fmt: skip
    """Train an expanded model (S + 10 outputs) on the digits; returns the loss per step.

    Each step: cross-entropy of the digit rows on a digits batch; with ``replay_per_class``,
    cross-entropy of the glyph rows on a batch of replayed glyphs; with ``distill_weight``,
    :func:`distill_loss` pulling the glyph rows towards the frozen ``teacher`` (the original
    model) on both batches (:func:`expanded_loss`). The loop is :func:`ftnotes.train.fit`
    with that loss hook and the replayed glyphs as its ``replay`` source: AdamW +
    warmup-cosine, no gradient clipping, no weight decay (see ``_groups``), only
    ``requires_grad`` tensors train, on the model's device.
    A NaN or exploding loss, or a last epoch whose mean loss ends far above the first step's
    (:func:`ftnotes.train.check_epoch_loss`), raises :class:`ftnotes.train.TrainingDiverged` (``run_solution``
    reports it as "failed" with the message, so a notebook panel never crashes).
    """
    check_int("epochs", epochs)
    check_number("lr", lr, 0, strict=True)
    check_number("head_lr", head_lr, 0, strict=True, optional=True)
    check_int("batch_size", batch_size)
    check_int("replay_per_class", replay_per_class, 0)
    check_number("distill_weight", distill_weight, 0)
    if distill_weight > 0 and teacher is None:
        raise ValueError("distill_weight > 0 needs teacher= (the frozen original model)")
    set_seed(seed)
    replay = data.replay(replay_per_class, seed) if replay_per_class else None
    loss_fn = expanded_loss(teacher, distill_weight, temperature)
    history = fit(model, data.target_train, epochs=epochs, lr=lr, weight_decay=0.0,
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
    q_proj/v_proj, Hu et al. 2021). ``align_head``: digit rows start from glyph rows "0"-"9".
    """
    check_choice("strategy", strategy, STRATEGIES)

    def solve(model, data):
        set_seed(seed)  # the new head rows and LoRA's A start from random draws
        teacher = copy.deepcopy(model).eval().requires_grad_(False) if distill_weight else None
        expand_head(model, NUM_TARGET, range(NUM_TARGET) if align_head else None)
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


def baseline_solution(model, data):
    """The naive answer: full fine-tuning at a high-ish rate, a fresh random digit head, digits
    only. It learns the digits and forgets the glyphs: the body drifts under the glyph rows."""
    solve = make_solution("full_ft", lr=3e-3, head_lr=3e-3, epochs=5, align_head=False)
    return solve(model, data)


def reference_solution(model, data):
    """Expanded head with aligned digit rows + the top block and the head trained (the lower
    blocks frozen) at per-module rates + replay of 20 glyphs per class + distillation from the
    frozen original: the digits are learned while the glyph rows stay right."""
    solve = make_solution("partial_ft", k=1, lr=1e-3, head_lr=1e-2, epochs=5,
                          replay_per_class=20, distill_weight=1.0)  # fmt: skip
    return solve(model, data)


def show_reference_solution() -> None:
    """Print the reference solution's code (best read after your own attempt)."""
    print(inspect.getsource(reference_solution))
    print(inspect.getsource(make_solution))


@dataclass
class OlympiadResult:
    """One scored run: the score, its halves, the time it took and what it costs to store."""

    name: str
    status: str  # "scored", "over budget", "not attempted", "failed"
    score: float | None = None
    source_acc: float | None = None
    target_acc: float | None = None
    seconds: float = 0.0
    budget_s: float = BUDGET_S
    trainable_params: int = 0
    checkpoint_bytes: int = 0
    message: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def counted_score(self) -> float:
        """What the olympiad would count: the score if on time, else 0."""
        return self.score if self.status == "scored" else 0.0

    def __str__(self) -> str:
        if self.score is None:
            return f"{self.name}: {self.message or self.status}"
        return (f"{self.name}: score {self.score:.3f} = ½·{self.source_acc:.3f} (glyphs kept) + "
                f"½·{self.target_acc:.3f} (digits) | {self.seconds:.1f} s of {self.budget_s:.0f}"
                f" s | {self.trainable_params:,} trainable, checkpoint "
                f"{self.checkpoint_bytes / 1e3:.1f} KB | {self.status}"
                + (f": {self.message}" if self.message else ""))  # fmt: skip

    __repr__ = __str__


def score_model(model, tests: dict) -> tuple[float, float, float]:
    """``(score, source_acc, target_acc)`` of a model with NUM_SOURCE + NUM_TARGET outputs."""
    out = model(tests["source"][0][:2].to(model_device(model))).shape[-1]
    if out != NUM_SOURCE + NUM_TARGET:
        raise ValueError(f"the model must output {NUM_SOURCE} glyph + {NUM_TARGET} digit rows "
                         f"= {NUM_SOURCE + NUM_TARGET} (see expand_head), got {out}")  # fmt: skip
    src = accuracy(model, tests["source"], forward=lambda m, x: m(x)[:, :NUM_SOURCE])
    tgt = accuracy(model, tests["target"], forward=lambda m, x: m(x)[:, NUM_SOURCE:])
    return ioai_score(src, tgt), src, tgt


def run_solution(solve, base, data, tests, *, budget_s: float = BUDGET_S, name=None):
    """Time ``solve(copy of base, data)``, then score what it returns: an :class:`OlympiadResult`.

    Runs on one torch thread (:func:`ftnotes.utils.pinned_threads`), restored afterwards.
    Never raises on the student's code: ``NotImplementedError`` gives "not attempted yet",
    another error "failed" with its message; a run longer than ``budget_s`` is "over budget".
    """
    check_number("budget_s", budget_s, 0, strict=True)
    name = name or getattr(solve, "__name__", "solution")
    model = copy.deepcopy(base).requires_grad_(True)
    start = time.perf_counter()
    try:
        with pinned_threads(1):  # graded and timed alike on an idle or a busy machine
            model = solve(model, data)
            seconds = time.perf_counter() - start
            score, src, tgt = score_model(model, tests)
    except NotImplementedError:
        return OlympiadResult(name, "not attempted", message="not attempted yet: write your "
                              "solve(model, data) and run this cell again")  # fmt: skip
    except Exception as err:  # the student's code: report it, keep the notebook running
        return OlympiadResult(name, "failed", message=f"{type(err).__name__}: {err}")
    over = seconds > budget_s
    trainable = count_params(model, trainable_only=True)
    ckpt = trainable_state_dict(model) if trainable < count_params(model) else model.state_dict()
    return OlympiadResult(
        name, "over budget" if over else "scored", score, src, tgt, seconds, budget_s,
        trainable, state_dict_bytes(ckpt),
        f"{seconds:.1f} s > budget {budget_s:.0f} s: this run would count 0" if over else "",
    )  # fmt: skip
