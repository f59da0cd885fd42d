"""Exercises of notebook 05 (workflow): warmup-cosine, noisy labels, retention, stratified split."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_int
from .core import exercise
from .fixtures import as_float, as_int, close, images, randn, require, tiny_vit

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
    raw = fn(model, x, labels, k)
    ctx.expect(raw is not None, "return the indices of the flagged examples.")
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
    finetuned = tiny_vit(num_classes=5, dropout=0.9)  # heavy dropout: train mode shows
    head = finetuned.head
    source_head = nn.Linear(16, 10)
    with torch.no_grad():
        source_head.weight.copy_(3 * randn(10, 16, seed=21))
        x = images(60, seed=22)
        labels = source_head(finetuned.eval().forward_features(x)).argmax(1)
        flip = torch.randperm(60, generator=torch.Generator().manual_seed(23))[:20]
        labels[flip] = (labels[flip] + 3) % 10  # a third of the answers wrong
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
    ctx.expect(close(got, want), f"you returned {got:.4f}, expected {want:.4f}. Did you call "
               "finetuned.eval()? Dropout changes the features.")  # fmt: skip
    ctx.ok(f"body features + the source head on 60 source images: {want:.3f}")
    ctx.ok("the fine-tuned model keeps its own head")


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
    counts = [40, 25, 12, 8, 15]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(31))]
    vals = {}
    for frac in (0.2, 0.3):
        for seed in (0, 1, 2):
            train, val = _split(fn, labels, frac, seed, ctx)
            ctx.expect(not set(train) & set(val), f"train and val overlap (seed={seed}).")
            ctx.expect(set(train) | set(val) == set(range(len(labels))),
                       f"some examples are in neither part (seed={seed}).")  # fmt: skip
            for c, n in enumerate(counts):
                v = sum(int(labels[i]) == c for i in val)
                ctx.expect(abs(v - n * frac) <= 1, f"class {c} has {v} of its {n} examples in "
                           f"val; stratified with val_fraction={frac} wants {round(n * frac)}.")  # fmt: skip
            vals[frac, seed] = sorted(val)
    ctx.ok("disjoint, complete, every class in proportion (2 fractions x 3 seeds)")
    torch.manual_seed(99)  # a different global state must not change a seeded split
    ctx.expect(sorted(_split(fn, labels, 0.2, 0, ctx)[1]) == vals[0.2, 0],
               "the same seed gave a different split: use torch.Generator().manual_seed(seed).")  # fmt: skip
    first = sorted(i for c, n in enumerate(counts)
                   for i in (labels == c).nonzero().flatten().tolist()[: round(n * 0.2)])  # fmt: skip
    ctx.expect(vals[0.2, 0] != first, "val is the first examples of each class: shuffle first.")
    ctx.expect(vals[0.2, 0] != vals[0.2, 1], "seeds 0 and 1 give the same split: use the seed.")
    ctx.ok("the same seed gives the same split; another seed another split")
    ctx.ok("validation examples are drawn at random within each class")


def _split(fn, labels, frac, seed, ctx):
    res = fn(labels, frac, seed)
    ctx.expect(isinstance(res, (tuple, list)) and len(res) == 2,
               "return a pair (train_idx, val_idx).")  # fmt: skip
    return [[as_int(i, "each index", ctx) for i in part] for part in res]


# ---------------------------------------------------------------- your own training loop
# Checked by behaviour, not by reading the code: the optimizer, the scheduler and the model are
# watched while the student's loop runs, so any correct loop passes and a loop that forgets a
# step (or takes them in the wrong order) fails with the step named.


def train_loop(model, loader, optimizer, scheduler, epochs):
    """Train ``model`` with cross-entropy for ``epochs`` passes over ``loader``; per-batch losses."""
    check_int("epochs", epochs)
    model.train()  # dropout and normalisation layers behave as in training
    losses = []
    for _ in range(epochs):
        for inputs, labels in loader:
            optimizer.zero_grad()  # gradients add up in .grad: clear last batch's first
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()  # once per batch, after the optimizer step it schedules
            losses.append(loss.item())  # a float: a kept tensor would keep its graph alive
    return losses


def _loop_task():
    """A small model and four well-separated blobs (128 points in 8 dimensions), batches of 16."""
    g = torch.Generator().manual_seed(5)
    centres = 3 * torch.randn(4, 8, generator=g)
    y = torch.arange(4).repeat(32)
    X = centres[y] + 0.5 * torch.randn(128, 8, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(6)
        model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(),
                                    torch.nn.Dropout(0.2), torch.nn.Linear(32, 4))  # fmt: skip
    data = torch.utils.data.TensorDataset(X, y)
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True, generator=g)
    return model, loader, X, y


def _spy(obj, name, tag, events):
    """Replace ``obj.name`` by a wrapper that logs ``tag`` in ``events``, then calls it."""
    original = getattr(obj, name)

    def spy(*args, **kwargs):
        events.append(tag)
        return original(*args, **kwargs)

    setattr(obj, name, spy)


def _watch(model, events):
    """An AdamW and a scheduler on ``model`` that log their calls; backward and forwards too."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    _spy(optimizer, "zero_grad", "zero_grad", events)
    optimizer.register_step_post_hook(lambda *args: events.append("step"))  # torch's own hook
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + 0.01 * step))
    _spy(scheduler, "step", "scheduler", events)
    model[0].weight.register_hook(lambda grad: events.append("backward"))
    model.register_forward_pre_hook(lambda module, args: events.append(("forward", module.training)))
    return optimizer, scheduler


def _replay_order(events, ctx):
    """Walk the logged calls like the gradients would, failing at the first misplaced one."""
    clean, fresh, due = True, False, False
    for event in events:
        if event == "zero_grad":
            clean = True
        elif event == "backward":
            ctx.expect(clean, "loss.backward() found last batch's gradients still in .grad: they "
                       "add up. Clear them once per batch, before backward.")  # fmt: skip
            clean, fresh = False, True
        elif event == "step":
            ctx.expect(fresh, "optimizer.step() ran without a fresh loss.backward() before it.")
            fresh, due = False, True
        elif event == "scheduler":
            ctx.expect(due, "scheduler.step() ran before optimizer.step() (or twice for one "
                       "batch): advance it once per batch, after the optimizer's step.")  # fmt: skip
            due = False


@exercise(
    "05_training_loop",
    title="Write the training loop yourself",
    kind="function",
    reference=train_loop,
    stub='''
    def train_loop(model, loader, optimizer, scheduler, epochs):
        """Train `model` with cross-entropy for `epochs` passes over `loader` (batches of
        (inputs, labels)). Per batch: clear the old gradients, compute the loss, backpropagate,
        step the optimizer, then step the scheduler. Return the per-batch losses as floats."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Two nested loops: over epochs, then over `for inputs, labels in loader:`. Put the model "
        "in training mode first.",
        "In each batch, four calls in this order: clear the gradients on the optimizer, the "
        "loss's backward pass, the optimizer's step, the scheduler's step.",
        "The loss is torch.nn.functional.cross_entropy of the model's logits and the labels; "
        "keep its value as a Python float (the tensor's item) in a list you return at the end.",
    ],
)
def _check_training_loop(fn, ctx):
    model, loader, X, y = _loop_task()
    events = []
    optimizer, scheduler = _watch(model, events)
    model.eval()  # the loop must put the model in training mode itself
    losses = fn(model, loader, optimizer, scheduler, 3)
    n = 3 * len(loader)
    calls = [e for e in events if isinstance(e, str)]
    ctx.expect(calls.count("step") == n, f"optimizer.step() ran {calls.count('step')} times in "
               f"3 epochs of {len(loader)} batches; it must run once per batch ({n}).")  # fmt: skip
    ctx.expect(calls.count("backward") == n, "call loss.backward() once per batch.")
    _replay_order(calls, ctx)
    ctx.expect(calls.count("scheduler") == n, "step the scheduler once per batch "
               f"({n} times), not once per epoch; it ran {calls.count('scheduler')} times.")  # fmt: skip
    ctx.ok("zero_grad, backward, optimizer step, scheduler step: once per batch, in that order")
    modes = [training for e, training in (x for x in events if isinstance(x, tuple))]
    ctx.expect(all(modes), "the model was in eval mode during training: call model.train() first "
               "(dropout is off in eval mode).")  # fmt: skip
    ctx.ok("the model trains in training mode")
    ctx.expect(isinstance(losses, (list, tuple)) and len(losses) == n,
               f"return the list of the {n} per-batch losses.")  # fmt: skip
    ctx.expect(all(isinstance(v, float) for v in losses),
               "return the losses as Python floats (loss.item()), not tensors.")  # fmt: skip
    model.eval()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    ctx.expect(acc >= 0.9, f"after 3 epochs the model reaches {acc:.0%} training accuracy; a "
               "correct loop reaches at least 90% here.")  # fmt: skip
    ctx.ok(f"it learns: {acc:.0%} training accuracy after 3 epochs (at least 90% asked)")
