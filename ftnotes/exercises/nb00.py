"""Exercises of notebook 00 (overview): linear probe, trainable count, accuracy, IOAI score."""

from __future__ import annotations

import torch
from torch import nn

from .core import exercise
from .fixtures import (
    as_float,
    as_int,
    close,
    images,
    names_list,
    require,
    rounded_note,
    sgd_step,
    tiny_vit,
)

# ---------------------------------------------------------------- reference solutions
# What show_solution(id) prints and what the checkers below compare against: short and
# standalone on purpose (torch and the TinyViT conventions only; the package's peft and
# strategies add validation, configs and many-layer plumbing). Kept next to their
# checkers so that one file holds an exercise entirely.


def prepare_linear_probe(model: nn.Module, num_classes: int) -> nn.Module:
    """Freeze every parameter, then give ``model`` a fresh trainable ``head`` for ``num_classes``."""
    for p in model.parameters():
        p.requires_grad = False
    # The new nn.Linear is created after freezing, so its parameters are the only trainable ones;
    # it goes where the old head was (CPU or GPU).
    w = model.head.weight
    model.head = nn.Linear(model.head.in_features, num_classes, device=w.device, dtype=w.dtype)
    return model


def count_trainable(model: nn.Module) -> int:
    """Number of scalar parameters that the optimiser will update (``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction in [0, 1] of rows whose arg-max class equals the label. logits (N, C), labels (N,)."""
    return (logits.argmax(dim=1) == labels).float().mean().item()


def ioai_score(old_acc: float, new_acc: float) -> float:
    """Retention-aware score: half the accuracy kept on the old task, half on the new one."""
    for name, acc in (("old_acc", old_acc), ("new_acc", new_acc)):
        require(0 <= acc <= 1, name, acc, "a fraction in [0, 1]")
    return 0.5 * old_acc + 0.5 * new_acc


# ---------------------------------------------------------------- 00_linear_probe


@exercise(
    "00_linear_probe",
    title="Freeze the backbone and replace its head",
    kind="function",
    reference=prepare_linear_probe,
    stub='''
    def prepare_linear_probe(model, num_classes):
        """Freeze every parameter of `model`, then replace `model.head` (an nn.Linear) by a new
        trainable nn.Linear with `num_classes` outputs. Return the model."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Two steps: set requires_grad = False on every parameter, then assign a new nn.Linear.",
        "The order matters: a head created *after* the freezing loop is trainable by default.",
        "The new nn.Linear takes model.head.in_features inputs (never a fixed number) and "
        "gives num_classes outputs; assign it to model.head and return the model.",
    ],
)
def _check_linear_probe(fn, ctx):
    for dim, depth, classes in ((16, 2, 10), (24, 3, 7)):  # two shapes: no hard-coded sizes
        _check_linear_probe_on(fn, ctx, dim, depth, classes)
    ctx.ok("the same on a second model shape (width 24, 3 blocks, 7 classes)")


def _check_linear_probe_on(fn, ctx, dim, depth, classes):
    model = tiny_vit(num_classes=36, dim=dim, depth=depth)
    body_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head")}
    out = fn(model, classes)
    ctx.expect(isinstance(out, nn.Module), f"return the model (got {type(out).__name__}).")
    head = getattr(out, "head", None)
    ctx.expect(isinstance(head, nn.Linear), "the model should still have a `head` nn.Linear.")
    ctx.expect(
        head.out_features == classes,
        f"the head has {head.out_features} outputs; a new head for {classes} classes needs "
        f"{classes}. Did you forget to replace it (or hard-code the number of classes)?",
    )
    ctx.expect(
        head.in_features == dim,
        f"the new head takes {head.in_features} features, the backbone gives {dim}: use "
        "model.head.in_features, not a fixed number.",
    )
    if dim == 16:
        ctx.ok("the head is a new nn.Linear with num_classes outputs")
    trainable = {n for n, p in out.named_parameters() if p.requires_grad}
    head_params = {f"head.{n}" for n, _ in head.named_parameters()}  # a bias-less head is fine
    ctx.expect(
        head_params <= trainable,
        "the new head is frozen: a linear probe trains the head. Create it after freezing.",
    )
    body = trainable - head_params
    ctx.expect(not body, f"backbone parameters are still trainable: {names_list(body)}.")
    if dim == 16:
        ctx.ok("only the head's parameters are trainable")
    x = images(4)
    shape = tuple(out(x).shape)
    ctx.expect(shape == (4, classes), f"output shape {shape}, expected (4, {classes}).")
    sgd_step(out, x)
    after = {k: v for k, v in out.state_dict().items() if not k.startswith("head")}
    changed = [k for k in body_before if not torch.equal(body_before[k], after[k])]
    ctx.expect(not changed, f"backbone weights changed: {names_list(changed)}. Keep them as-is.")
    if dim == 16:
        ctx.ok("a training step leaves the pretrained backbone unchanged")


# ---------------------------------------------------------------- 00_count_trainable


@exercise(
    "00_count_trainable",
    title="Count the trainable parameters",
    kind="function",
    reference=count_trainable,
    stub='''
    def count_trainable(model):
        """Number of scalar parameters (elements, not tensors) with requires_grad=True."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Loop over model.parameters() and keep those with p.requires_grad.",
        "Count elements with p.numel(), not tensors: a (16, 16) weight is 256 parameters.",
        "Add up p.numel() over the parameters whose requires_grad is True (a generator inside sum() does it in one line).",
    ],
)
def _check_count_trainable(fn, ctx):
    for dim, depth, classes in ((16, 2, 3), (24, 3, 7)):  # two shapes: no number learnt by heart
        model = tiny_vit(num_classes=10, dim=dim, depth=depth)
        total = sum(p.numel() for p in model.parameters())
        got = as_int(fn(model), "count_trainable", ctx)
        ctx.expect(got == total, _count_msg(got, model))
        for p in model.blocks[0].parameters():
            p.requires_grad = False
        got = as_int(fn(model), "count_trainable", ctx)
        ctx.expect(got == count_trainable(model), _count_msg(got, model))
        prepare_linear_probe(model, classes)
        got = as_int(fn(model), "count_trainable", ctx)
        ctx.expect(got == dim * classes + classes, _count_msg(got, model))
    ctx.ok("all parameters counted on fully trainable TinyViTs of width 16 and 24")
    ctx.ok("frozen parameters excluded (block 0 frozen)")
    ctx.ok("51 and 175 counted for linear probes (16 features x 3 classes, 24 x 7)")


def _count_msg(got, model) -> str:
    params = list(model.parameters())
    if got == sum(p.numel() for p in params) and any(not p.requires_grad for p in params):
        return f"you counted {got}, all parameters: leave out those with requires_grad=False."
    if got == sum(p.requires_grad for p in params) or got == len(params):
        return f"you counted {got} tensors: count elements with p.numel()."
    if got == sum(p.numel() for p in params if not p.requires_grad):
        return f"you counted {got}, the frozen parameters: count those with requires_grad=True."
    return f"you counted {got}, expected {count_trainable(model)}."


# ---------------------------------------------------------------- 00_accuracy


@exercise(
    "00_accuracy",
    title="Accuracy from logits",
    kind="function",
    reference=accuracy,
    stub='''
    def accuracy(logits, labels):
        """logits (N, C), labels (N,) int64 -> the fraction in [0, 1] of correct predictions."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "The predicted class of a row is the index of its largest logit.",
        "logits.argmax(dim=1) gives (N,) predictions; compare them with labels.",
        "Compare the arg-max predictions with labels, turn the booleans into floats, average them, and make the 0-d result a Python float.",
    ],
)
def _check_accuracy(fn, ctx):
    # 21 rows: the answer (a multiple of 1/21) has no short decimal form, so rounding shows;
    # then 13 rows of 3 classes, so neither N nor C can be a number learnt from the first call
    for n, classes, seed in ((21, 5, 3), (13, 3, 4)):
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(n, classes, generator=g)
        labels = torch.randint(0, classes, (n,), generator=g)
        labels[: n // 3] = logits[: n // 3].argmax(1)  # make the answer neither 0 nor 1
        want = accuracy(logits, labels)
        got = as_float(fn(logits, labels), "accuracy", ctx)
        on = f"on {n} rows of {classes} classes"
        ctx.expect(not close(got, 100 * want), f"{on} you returned {got}: a percentage. "
                   "Return a fraction.")  # fmt: skip
        ctx.expect(not close(got, want * n), f"{on} you returned {got}, a count: divide by N.")
        ctx.expect(
            close(got, want),
            f"{on} you returned {got:.4f}, expected {want:.6f}."
            + (rounded_note(got, want) or " Take the arg-max over classes (dim=1) and divide by "
               "the number of rows, len(labels), never a fixed number."),
        )  # fmt: skip
    ctx.ok("matches the reference on 21 random rows of 5 classes and 13 rows of 3")
    ones = as_float(fn(logits, logits.argmax(1)), "accuracy", ctx)
    ctx.expect(close(ones, 1.0), f"all predictions right should give 1.0, got {ones}.")
    ctx.ok("all-correct predictions give 1.0")
    wrong = as_float(fn(logits, (logits.argmax(1) + 1) % classes), "accuracy", ctx)
    ctx.expect(close(wrong, 0.0), f"all predictions wrong should give 0.0, got {wrong}.")
    ctx.ok("all-wrong predictions give 0.0")


# ---------------------------------------------------------------- 00_ioai_score


@exercise(
    "00_ioai_score",
    title="The IOAI retention score (half old task, half new task)",
    kind="function",
    reference=ioai_score,
    stub='''
    def ioai_score(old_acc, new_acc):
        """Score a fine-tuned model: half the accuracy kept on the old (source) task plus half
        the accuracy reached on the new (target) task. Both inputs are fractions in [0, 1]."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "It is a weighted average with equal weights.",
        "Multiply each accuracy by one half and add the two halves.",
    ],
)
def _check_ioai_score(fn, ctx):
    # the last pair has long decimals: a rounded score shows there
    for old, new in [(0.9, 0.5), (0.2, 0.8), (1.0, 0.0), (0.0, 0.0), (0.91234567, 0.51234567)]:
        got = as_float(fn(old, new), "ioai_score", ctx)
        want = ioai_score(old, new)
        if close(got, new) and not close(new, want):
            ctx.fail(f"ioai_score({old}, {new}) = {got}: only the new task counts in yours.")
        if close(got, old + new) and not close(old + new, want):
            ctx.fail(f"ioai_score({old}, {new}) = {got}: the sum; halve each part.")
        ctx.expect(
            close(got, want),
            f"ioai_score({old}, {new}) = {got}, expected {want} (½·old + ½·new)."
            + rounded_note(got, want),
        )
    ctx.ok("½·old + ½·new on five pairs, including the extremes 0 and 1, unrounded")
