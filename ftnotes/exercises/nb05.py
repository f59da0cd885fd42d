"""Exercises of notebook 05 (workflow): warmup-cosine, noisy labels, retention, stratified split."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .core import exercise
from .fixtures import as_float, as_int, close, images, randn, require, returned, tiny_vit

# ---------------------------------------------------------------- reference solutions
# What show_solution(id) prints and what the checkers below compare against: short and
# standalone on purpose (torch and the TinyViT conventions only; the package's peft and
# strategies add validation, configs and many-layer plumbing). Kept next to their
# checkers so that one file holds an exercise entirely.


def warmup_cosine(step, total_steps, warmup_steps, peak_lr, min_lr=0.0) -> float:
    """Linear warmup from near 0 to ``peak_lr`` over ``warmup_steps``, then cosine to ``min_lr``.

    Warmup protects the pretrained weights from large early updates while Adam's statistics
    are still noisy (Goyal et al. 2017; Loshchilov & Hutter 2017 for the cosine).
    """
    require(0 <= warmup_steps < total_steps, "warmup_steps", warmup_steps, "in [0, total_steps)")
    require(0 <= step < total_steps, "step", step, f"in [0, {total_steps})")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def flag_noisy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: int):
    """Indices (k,) of the k examples with the highest loss on their *given* label."""
    require(1 <= k <= len(labels), "k", k, f"in 1..{len(labels)}")
    model.eval()
    losses = F.cross_entropy(model(images), labels, reduction="none")  # (N,), one per example
    return losses.topk(k).indices


def noise_precision(flagged, noisy) -> float:
    """Fraction of the flagged examples whose label really was corrupted (precision in [0, 1])."""
    flagged = set(int(i) for i in flagged)
    require(len(flagged) > 0, "flagged", flagged, "non-empty")
    return len(flagged & set(int(i) for i in noisy)) / len(flagged)


@torch.no_grad()
def source_retention(finetuned, source_head, images, labels) -> float:
    """Accuracy on source data of the fine-tuned body with the ORIGINAL source head."""
    finetuned.eval()
    features = finetuned.forward_features(images)  # (N, D): the body, without its new head
    return (source_head(features).argmax(1) == labels).float().mean().item()


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int = 0):
    """(train_idx, val_idx): each class keeps its share in both parts; shuffled with ``seed``."""
    require(0 < val_fraction < 1, "val_fraction", val_fraction, "in (0, 1)")
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = round(len(idx) * val_fraction)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


# ---------------------------------------------------------------- 05_warmup_cosine


@exercise(
    "05_warmup_cosine",
    title="A warmup-cosine learning-rate schedule",
    kind="function",
    reference=warmup_cosine,
    stub='''
    def warmup_cosine(step, total_steps, warmup_steps, peak_lr, min_lr=0.0):
        """The learning rate at `step` (0 .. total_steps - 1): a linear warmup that starts near 0
        and reaches peak_lr at the end of warmup, then a cosine decay to min_lr at the last step."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Two cases: step < warmup_steps (a straight line up) and after (a half cosine down).",
        "Warmup: peak_lr * (step + 1) / warmup_steps. Decay: progress = (step - warmup_steps) / "
        "(total_steps - 1 - warmup_steps) runs from 0 to 1.",
        "Decay: min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))",
    ],
)
def _check_warmup_cosine(fn, ctx):
    total, warm, peak = 1000, 100, 1e-3
    for low in (0.0, 1e-4):
        lrs = [as_float(fn(s, total, warm, peak, low), "warmup_cosine", ctx) for s in range(total)]
        at = f"(total_steps={total}, warmup_steps={warm}, peak_lr={peak}, min_lr={low})"
        ctx.expect(not close(lrs[0], peak, rel=1e-3),
                   f"lr(0) = peak_lr {at}: the warmup starts at the peak; start near 0.")  # fmt: skip
        ctx.expect(lrs[0] <= 2 * peak / warm, f"lr(0) = {lrs[0]:.3g} {at}: start near 0.")
        ctx.expect(all(b > a for a, b in zip(lrs[: warm - 1], lrs[1:warm])),
                   f"the warmup should rise at every step {at}.")  # fmt: skip
        top = max(range(total), key=lrs.__getitem__)
        ctx.expect(close(lrs[top], peak, rel=1e-6), f"the highest lr is {lrs[top]:.4g} {at}; "
                   f"it should be peak_lr = {peak}.")  # fmt: skip
        ctx.expect(top in (warm - 1, warm), f"the peak comes at step {top} {at}; it should "
                   f"come at the end of warmup (step {warm}).")  # fmt: skip
        ctx.expect(all(b <= a + 1e-15 for a, b in zip(lrs[warm:], lrs[warm + 1 :])),
                   f"after warmup the lr should only go down {at}.")  # fmt: skip
        ctx.expect(lrs[-1] >= low - 1e-12, f"the lr goes below min_lr: {lrs[-1]:.3g} {at}.")
        ctx.expect(lrs[-1] <= low + 0.005 * (peak - low), f"the last lr is {lrs[-1]:.3g} {at}: "
                   "it should end near min_lr.")  # fmt: skip
        for frac, shape in ((0.25, 0.8536), (0.5, 0.5), (0.75, 0.1464)):
            s = warm + round(frac * (total - warm))
            want = low + (peak - low) * shape
            if close(lrs[s], low + (peak - low) * (1 - frac), rel=0.01) and frac != 0.5:
                ctx.fail(f"the decay is linear {at}: use a half cosine.")
            ctx.expect(abs(lrs[s] - want) < 0.02 * (peak - low), f"{int(frac * 100)}% into the "
                       f"decay the lr is {lrs[s]:.4g}, a cosine gives {want:.4g} {at}.")  # fmt: skip
    ctx.ok("starts near 0, rises at every warmup step, peaks at peak_lr at the end of warmup")
    ctx.ok("then falls monotonically along a cosine to min_lr (checked for min_lr 0 and 1e-4)")
    short = [as_float(fn(s, 20, 4, peak, 0.0), "warmup_cosine", ctx) for s in range(20)]
    ctx.expect(short[-1] <= 1e-9 * peak, f"with total_steps=20, warmup_steps=4 the last step "
               f"(19) gets lr {short[-1]:.3g}, not min_lr = 0: the cosine is off by one at the end "
               "(its progress must reach 1 at step total_steps - 1).")  # fmt: skip
    ctx.ok("reaches min_lr exactly at the last step (checked on a 20-step schedule)")
    lr0 = as_float(fn(0, 100, 0, peak, 0.0), "warmup_cosine", ctx)
    ctx.expect(close(lr0, peak), f"with warmup_steps=0, lr(0) should be peak_lr, got {lr0}.")
    ctx.ok("warmup_steps = 0 starts at the peak")
    other = [as_float(fn(s, 50, 5, 0.05), "warmup_cosine", ctx) for s in range(50)]  # min_lr default
    at = "(total_steps=50, warmup_steps=5, peak_lr=0.05, min_lr left at its default)"
    ctx.expect(close(max(other), 0.05), f"the highest lr is {max(other):.4g} {at}; it should be "
               "peak_lr = 0.05: use the peak_lr argument.")  # fmt: skip
    ctx.expect(abs(other[-1]) <= 1e-9, f"the last lr is {other[-1]:.3g} {at}; min_lr defaults "
               "to 0.0.")  # fmt: skip
    ctx.ok("another peak_lr (0.05), and min_lr defaults to 0")


# ---------------------------------------------------------------- 05_flag_noisy


def _noisy_task(n=40, n_noisy=6):
    """A confident model, labels equal to its predictions, then ``n_noisy`` labels flipped."""
    model = tiny_vit(num_classes=5, dropout=0.9)  # heavy dropout: train mode shows
    with torch.no_grad():
        model.head.weight.copy_(3 * randn(5, 16, seed=11))
        model.eval()
        x = images(n, seed=12)
        labels = model(x).argmax(1)
    noisy = torch.randperm(n, generator=torch.Generator().manual_seed(13))[:n_noisy]
    labels[noisy] = (labels[noisy] + 1 + torch.arange(n_noisy) % 4) % 5
    model.train()  # as it comes out of a training loop: dropout on
    return model, x, labels, noisy


@exercise(
    "05_flag_noisy",
    title="Flag likely label noise by per-example loss",
    kind="function",
    reference=flag_noisy,
    stub='''
    def flag_noisy(model, images, labels, k):
        """Indices (k,) of the k examples with the highest cross-entropy loss on their GIVEN
        label: the likeliest mislabelled ones. Evaluate the model without dropout or gradients."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "You need one loss per example: F.cross_entropy(logits, labels, reduction='none').",
        "Dropout would make the losses random: call model.eval() and use torch.no_grad().",
        "torch.topk on the per-example losses gives the k largest; return their indices, not their values.",
    ],
)
def _check_flag_noisy(fn, ctx):
    model, x, labels, noisy = _noisy_task()
    k = len(noisy)
    raw = returned(fn(model, x, labels, k), "flag_noisy", ctx, "the flagged indices")
    got = [as_int(i, "each flagged index", ctx) for i in raw]
    ctx.expect(len(got) == k, f"you flagged {len(got)} examples; flag exactly k = {k}.")
    ctx.expect(len(set(got)) == k, "you flagged the same example twice.")
    model.eval()
    with torch.no_grad():
        logits = model(x)
        losses = F.cross_entropy(logits, labels, reduction="none")
    if set(got) == set(losses.topk(k, largest=False).indices.tolist()):
        ctx.fail("you flagged the lowest-loss examples: flag the k highest losses.")
    low_conf = set(logits.softmax(1).max(1).values.topk(k, largest=False).indices.tolist())
    if set(got) == low_conf:
        ctx.fail("you flagged the least confident predictions; use the loss on the GIVEN label.")
    want = set(flag_noisy(model, x, labels, k).tolist())
    ctx.expect(set(got) == want, "your flags are not the k highest per-example losses "
               "(reduction='none'). Did you evaluate in eval mode?")  # fmt: skip
    found = len(want & set(noisy.tolist()))
    ctx.ok(f"flags the k highest per-example losses ({found}/{k} of the injected noisy labels)")
    _check_flag_by_loss_not_logit(fn, ctx)


class _FixedLogits(nn.Module):
    """A stand-in model that returns the same logits whatever the images."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x):
        return self.logits[: len(x)]


def _check_flag_by_loss_not_logit(fn, ctx):
    # Three examples, label 0 each, where the loss, the raw logit of the label and a loss on
    # softmax outputs (softmax applied twice) each pick a different worst example.
    logits = torch.tensor([[5.0, 10.0, 0.0], [0.0, 0.0, 0.0], [1.0, 10.0, 10.0]])
    got = [as_int(i, "each flagged index", ctx) for i in fn(_FixedLogits(logits), images(3),
                                                              torch.zeros(3, dtype=torch.long), 1)]
    if got == [1]:
        ctx.fail("you ranked by the raw logit of the given label: the loss also depends on the "
                 "other classes' logits (cross-entropy = logsumexp - logit of the label).")
    if got == [0]:
        ctx.fail("you applied softmax before cross_entropy: F.cross_entropy takes raw logits and "
                 "applies log-softmax itself, so a second softmax squashes the losses.")
    ctx.expect(got == [2], f"on three hand-made logit rows you flagged {got}; the highest loss "
               "is example 2.")  # fmt: skip
    ctx.ok("ranks by the loss, not by the raw logit or a double softmax")


# ---------------------------------------------------------------- 05_noise_precision


@exercise(
    "05_noise_precision",
    title="Score a noise detector against the injected noise",
    kind="function",
    reference=noise_precision,
    stub='''
    def noise_precision(flagged, noisy):
        """Precision of a label-noise detector: the fraction of the `flagged` indices that are
        among the `noisy` indices (those whose labels we corrupted on purpose). In [0, 1]."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Turn both into Python sets of ints: set(int(i) for i in flagged).",
        "Precision divides the hits by the number flagged (recall would divide by the noisy).",
        "return len(set_flagged & set_noisy) / len(set_flagged)",
    ],
)
def _check_noise_precision(fn, ctx):
    cases = [([3, 7, 9, 12], [7, 12, 20, 21, 22, 30]), ([1, 2], [1, 2, 5]), ([4, 5, 6], [0, 1])]
    for flagged, noisy in cases:
        for as_tensor in (False, True):
            f, n = (torch.tensor(flagged), torch.tensor(noisy)) if as_tensor else (flagged, noisy)
            got = as_float(fn(f, n), "noise_precision", ctx)
            want = noise_precision(flagged, noisy)
            hits = len(set(flagged) & set(noisy))
            args = f"noise_precision({flagged}, {noisy}) = {got}"
            ctx.expect(not (close(got, hits / len(noisy)) and not close(got, want)),
                       f"{args}: that is recall (hits / noisy); precision is hits / flagged.")  # fmt: skip
            ctx.expect(not (close(got, hits) and hits > 0), f"{args}: a count; divide by the "
                       "number flagged.")  # fmt: skip
            floor = hits // len(set(flagged))  # integer division: 0 for any precision below 1
            ctx.expect(as_tensor or close(want, floor) or not close(got, floor),
                       f"{args}: // rounds the fraction down to a whole number; divide with /.")  # fmt: skip
            ctx.expect(close(got, want), f"{args}, expected {want:.4g}"
                       f"{' (with tensor inputs)' if as_tensor else ''}.")  # fmt: skip
    ctx.ok("hits / flagged on three cases, with lists and with tensors")


# ---------------------------------------------------------------- 05_source_retention


@exercise(
    "05_source_retention",
    title="Source retention: fine-tuned body with the original source head",
    kind="function",
    reference=source_retention,
    stub='''
    def source_retention(finetuned, source_head, images, labels):
        """Accuracy (fraction) on SOURCE test data of the fine-tuned body (a TinyViT, see
        forward_features) followed by the ORIGINAL source head. Leave finetuned.head as it is."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "The fine-tuned head predicts target classes; retention asks what the body still knows "
        "about the source classes, so use the source head on the body's features.",
        "features = finetuned.forward_features(images) (eval mode, no_grad).",
        "Apply source_head to those features, take the arg-max, compare with labels and average into a Python float.",
    ],
)
def _check_source_retention(fn, ctx):
    # two bodies (width 16 and 24), two source heads (10 and 7 classes), 60 and 45 images
    for dim, classes, n, seed in ((16, 10, 60, 21), (24, 7, 45, 31)):
        want = _check_source_retention_on(fn, ctx, dim, classes, n, seed)
        ctx.ok(f"body features + the source head on {n} source images ({classes} source "
               f"classes, width {dim}): {want:.3f}")
    ctx.ok("the fine-tuned model keeps its own head")


def _check_source_retention_on(fn, ctx, dim, classes, n, seed):
    finetuned = tiny_vit(num_classes=5, dropout=0.9, dim=dim)  # heavy dropout: train mode shows
    head = finetuned.head
    source_head = nn.Linear(dim, classes)
    with torch.no_grad():
        source_head.weight.copy_(3 * randn(classes, dim, seed=seed))
        x = images(n, seed=seed + 1)
        labels = source_head(finetuned.eval().forward_features(x)).argmax(1)
        flip = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))[: n // 3]
        labels[flip] = (labels[flip] + 3) % classes  # a third of the answers wrong
        want = source_retention(finetuned, source_head, x, labels)
        target_acc = (finetuned(x).argmax(1) == labels).float().mean().item()
    finetuned.train()
    got = as_float(fn(finetuned, source_head, x, labels), "source_retention", ctx)
    ctx.expect(finetuned.head is head, "your function replaced the fine-tuned model's head and "
               "left it there: the model must come back unchanged.")  # fmt: skip
    ctx.expect(not close(got, 100 * want), f"you returned {got}, a percentage: return a fraction.")
    if close(got, target_acc) and not close(target_acc, want):
        ctx.fail("you scored the fine-tuned model's own (target) head; use the source head "
                 "on finetuned.forward_features(images).")  # fmt: skip
    ctx.expect(close(got, want), f"on {n} images of {classes} source classes you returned "
               f"{got:.4f}, expected {want:.4f}. Did you call finetuned.eval()? Dropout changes "
               "the features; and divide by the number of images, len(labels).")  # fmt: skip
    return want


# ---------------------------------------------------------------- 05_stratified_split


@exercise(
    "05_stratified_split",
    title="A seeded stratified train/validation split",
    kind="function",
    reference=stratified_split,
    stub='''
    def stratified_split(labels, val_fraction, seed=0):
        """(train_idx, val_idx): every class puts round(n_c * val_fraction) of its n_c examples,
        chosen at random with `seed` (a torch.Generator), into validation; the rest into train."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Split class by class: idx = (labels == c).nonzero().flatten().",
        "Shuffle idx with torch.randperm(len(idx), generator=g), g = "
        "torch.Generator().manual_seed(seed), so the split is reproducible.",
        "Take the first round(len(idx) * val_fraction) shuffled indices for validation.",
    ],
)
def _check_stratified_split(fn, ctx):
    # No n_c * val_fraction here ends in .5, and many are not whole: round, floor and ceil
    # give different counts (25 * 0.35 = 8.75: round 9, floor 8)
    vals = {}
    for counts, label_seed in (([40, 25, 12, 8, 15], 31), ([9, 14, 6, 21], 32)):
        labels = _split_labels(counts, label_seed)
        for frac in (0.2, 0.35):
            for seed in (0, 1, 2):
                train, val = _split(fn, labels, frac, seed, ctx)
                _check_split_counts(labels, counts, frac, seed, train, val, ctx)
                vals[len(labels), frac, seed] = sorted(val)
    ctx.ok("disjoint, complete, every class in round(n_c * val_fraction) (2 label sets x 2 "
           "fractions x 3 seeds)")
    labels, counts = _split_labels([40, 25, 12, 8, 15], 31), [40, 25, 12, 8, 15]
    vals = {(frac, seed): v for (n, frac, seed), v in vals.items() if n == len(labels)}
    torch.manual_seed(99)  # a different global state must not change a seeded split
    ctx.expect(sorted(_split(fn, labels, 0.2, 0, ctx)[1]) == vals[0.2, 0],
               "the same seed gave a different split: use torch.Generator().manual_seed(seed).")  # fmt: skip
    first = sorted(i for c, n in enumerate(counts)
                   for i in (labels == c).nonzero().flatten().tolist()[: round(n * 0.2)])  # fmt: skip
    ctx.expect(vals[0.2, 0] != first, "val is the first examples of each class: shuffle first.")
    ctx.expect(vals[0.2, 0] != vals[0.2, 1], "seeds 0 and 1 give the same split: use the seed.")
    ctx.ok("the same seed gives the same split; another seed another split")
    ctx.ok("validation examples are drawn at random within each class")


def _split_labels(counts, seed):
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def _check_split_counts(labels, counts, frac, seed, train, val, ctx):
    ctx.expect(not set(train) & set(val), f"train and val overlap (seed={seed}).")
    ctx.expect(set(train) | set(val) == set(range(len(labels))),
               f"some examples are in neither part (seed={seed}).")  # fmt: skip
    in_val = [sum(int(labels[i]) == c for i in val) for c in range(len(counts))]
    want = [round(n * frac) for n in counts]
    if in_val == [n - w for n, w in zip(counts, want)]:
        ctx.fail("the parts are swapped: return (train_idx, val_idx), validation second.")
    for c, (n, v, w) in enumerate(zip(counts, in_val, want)):
        how = ("rounded down" if v == math.floor(n * frac) else
               "rounded up" if v == math.ceil(n * frac) else "")  # fmt: skip
        ctx.expect(v == w, f"class {c} has {v} of its {n} examples in val; stratified with "
                   f"val_fraction={frac}, the docstring asks for round({n} * {frac}) = {w}"
                   + (f" (you {how} {n * frac:.3g})." if how else "."))  # fmt: skip


def _split(fn, labels, frac, seed, ctx):
    res = returned(fn(labels, frac, seed), "stratified_split", ctx, "(train_idx, val_idx)")
    ctx.expect(isinstance(res, (tuple, list)) and len(res) == 2,
               "return a pair (train_idx, val_idx).")  # fmt: skip
    return [[as_int(i, "each index", ctx) for i in part] for part in res]
