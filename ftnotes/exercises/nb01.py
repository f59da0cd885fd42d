"""Exercises of notebook 01 (full fine-tuning): LLRD groups, unfreeze last k, gradual unfreezing."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import check_int
from .core import exercise
from .fixtures import as_int, close, names_list, require, returned, tiny_vit, trainable_names

# ---------------------------------------------------------------- reference solutions
# What show_solution(id) prints and what the checkers below compare against: short and
# standalone on purpose (torch and the TinyViT conventions only; the package's peft and
# strategies add validation, configs and many-layer plumbing). Kept next to their
# checkers so that one file holds an exercise entirely.


def layerwise_lr_groups(model: nn.Module, base_lr: float, decay: float) -> list[dict]:
    """Optimizer groups with layer-wise learning-rate decay (LLRD; Clark et al. 2020, ELECTRA).

    Head and final norm: ``base_lr``; block i of L: ``base_lr * decay ** (L - i)``;
    embeddings (patch_embed, cls_token, pos_embed): ``base_lr * decay ** (L + 1)``.
    """
    require(base_lr > 0, "base_lr", base_lr, "> 0")
    require(0 < decay <= 1, "decay", decay, "in (0, 1]")
    depth = len(model.blocks)
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        if name.startswith("blocks."):
            steps_down = depth - int(name.split(".")[1])
        elif name.startswith(("head.", "norm.")):
            steps_down = 0
        else:  # embeddings sit below block 0
            steps_down = depth + 1
        groups.setdefault(base_lr * decay**steps_down, []).append(p)
    return [{"params": ps, "lr": lr} for lr, ps in groups.items()]


def unfreeze_last_k(model: nn.Module, k: int) -> nn.Module:
    """Train only the head, the final norm and the last ``k`` blocks (those nearest the head)."""
    depth = len(model.blocks)
    check_int("k", k, 0, depth)
    for name, p in model.named_parameters():
        in_top_blocks = name.startswith("blocks.") and int(name.split(".")[1]) >= depth - k
        p.requires_grad = in_top_blocks or name.startswith(("head.", "norm."))
    return model


def trainable_blocks(epoch: int, depth: int, epochs_per_stage: int = 1) -> list[int]:
    """Gradual unfreezing (Howard & Ruder 2018, ULMFiT): which blocks train at ``epoch``.

    Stage 0 trains the head alone; every ``epochs_per_stage`` epochs one more block, from the top
    (block ``depth - 1``) downwards, joins. Returns sorted block indices.
    """
    require(epoch >= 0, "epoch", epoch, ">= 0")
    require(epochs_per_stage >= 1, "epochs_per_stage", epochs_per_stage, ">= 1")
    n = min(epoch // epochs_per_stage, depth)
    return list(range(depth - n, depth))


# ---------------------------------------------------------------- 01_llrd_groups


@exercise(
    "01_llrd_groups",
    title="Layer-wise learning-rate decay (LLRD) parameter groups",
    kind="function",
    reference=layerwise_lr_groups,
    stub='''
    def layerwise_lr_groups(model, base_lr, decay):
        """Optimizer parameter groups [{"params": [...], "lr": ...}, ...] for a TinyViT with L blocks:
        head.* and norm.* get base_lr; blocks.i.* get base_lr * decay ** (L - i);
        the embeddings (patch_embed, cls_token, pos_embed) get base_lr * decay ** (L + 1).
        Every parameter appears in exactly one group."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Walk model.named_parameters(); the block number is name.split('.')[1] for 'blocks.i...'.",
        "Count steps down from the head: head 0, top block (i = L-1) 1, block 0 L, embeddings L+1.",
        "Collect params per learning rate in a dict {lr: [params]}, then build one group per lr.",
    ],
)
def _check_llrd(fn, ctx):
    depth, base, decay = 3, 0.1, 0.5
    model = tiny_vit(depth=depth)
    groups = fn(model, base, decay)
    lr_of = _lr_per_parameter(groups, model, ctx)
    ctx.ok("every parameter is in exactly one group with an 'lr'")

    def steps(prefix):  # the decay exponent the student used for names starting with prefix
        lrs = {lr_of[n] for n in lr_of if n.startswith(prefix)}
        ctx.expect(len(lrs) == 1, f"parameters of {prefix} have different rates {sorted(lrs)}.")
        (lr,) = lrs
        return math.log(lr / base) / math.log(decay) if lr > 0 else math.inf

    head = steps("head.")
    ctx.expect(close(head, 0), f"the head gets {base * decay**head:.3g}; it should get base_lr.")
    norm = steps("norm.")  # the final norm sits above the last block, easy to lump in elsewhere
    ctx.expect(close(norm, 0), f"the final norm (norm.*) gets {base * decay**norm:.3g}; it sits "
               "between the last block and the head and gets base_lr like the head.")  # fmt: skip
    ctx.ok("the head and the final norm get base_lr")
    got = [steps(f"blocks.{i}.") for i in range(depth)]
    want = [depth - i for i in range(depth)]
    if all(close(g, w + 1) for g, w in zip(got, want)):
        ctx.fail("decay off by one: the top block should get base_lr * decay, yours decay².")
    if all(close(g, w - 1) for g, w in zip(got, want)):
        ctx.fail("decay off by one: the top block gets base_lr; it is one step below the head.")
    if got[0] < got[-1]:
        ctx.fail(
            "decay applied bottom-up: block 0 (nearest the input) should get the smallest rate."
        )
    for i in range(depth):
        ctx.expect(
            close(got[i], want[i]),
            f"block {i} gets lr {base * decay ** got[i]:.4g}, expected {base * decay ** want[i]:.4g}.",
        )
    ctx.ok("block i gets base_lr * decay ** (L - i), smaller towards the input")
    for name in ("patch_embed.", "cls_token", "pos_embed"):
        e = steps(name)
        ctx.expect(
            close(e, depth + 1),
            f"{name.rstrip('.')} gets {base * decay**e:.4g}; embeddings sit one step below block 0 "
            f"({base * decay ** (depth + 1):.4g}).",
        )
    ctx.ok("the embeddings get base_lr * decay ** (L + 1)")
    # A second shape and other rates: catches a hard-coded depth, base_lr or decay.
    other, base2, decay2 = tiny_vit(depth=5, dim=24), 2e-3, 0.8
    lr_of = _lr_per_parameter(fn(other, base2, decay2), other, ctx)
    want_of = _lr_per_parameter(layerwise_lr_groups(other, base2, decay2), other, ctx)
    old_of = _lr_per_parameter(layerwise_lr_groups(other, base, decay), other, ctx)
    wrong = [n for n in want_of if not close(lr_of[n], want_of[n])]
    if wrong and all(close(lr_of[n], old_of[n]) for n in want_of):
        ctx.fail(f"with base_lr={base2} and decay={decay2} you still give the rates of "
                 f"base_lr={base}, decay={decay}: use the arguments, not fixed numbers.")
    ctx.expect(not wrong, f"on a 5-block model with base_lr={base2}, decay={decay2} these get "
               f"the wrong rate: {names_list(wrong)}. Read the depth from len(model.blocks) and "
               "use base_lr and decay as given.")  # fmt: skip
    ctx.ok(f"right on a second model (5 blocks, width 24) with base_lr={base2}, decay={decay2}")


def _lr_per_parameter(groups, model, ctx) -> dict:
    ctx.expect(
        isinstance(groups, (list, tuple)) and all(isinstance(g, dict) for g in groups),
        f"return a list of dicts {{'params': [...], 'lr': ...}}, got {type(groups).__name__}.",
    )
    name_of = {id(p): n for n, p in model.named_parameters()}
    lr_of = {}
    for g in groups:
        ctx.expect("params" in g and "lr" in g, "every group needs a 'params' and an 'lr' key.")
        params = [g["params"]] if isinstance(g["params"], torch.Tensor) else list(g["params"])
        for p in params:
            name = name_of.get(id(p), "a tensor that is not a model parameter")
            ctx.expect(name not in lr_of, f"{name} is in two groups: put it in exactly one.")
            lr_of[name] = float(g["lr"])
    missing = set(name_of.values()) - set(lr_of)
    ctx.expect(not missing, f"parameters missing from the groups: {names_list(missing)}.")
    return lr_of


# ---------------------------------------------------------------- 01_unfreeze_last_k


@exercise(
    "01_unfreeze_last_k",
    title="Unfreeze the last k blocks",
    kind="function",
    reference=unfreeze_last_k,
    stub='''
    def unfreeze_last_k(model, k):
        """Make only head.*, norm.* and the last k blocks (those nearest the head) trainable;
        freeze everything else. k = 0 trains the head alone. Return the model."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Set requires_grad for *every* parameter, True or False: the model may come in any state.",
        "With L = len(model.blocks), the last k blocks are those with index i >= L - k.",
        "p.requires_grad = (name starts with 'head.' or 'norm.') or (block index >= L - k)",
    ],
)
def _check_unfreeze(fn, ctx):
    for depth, ks in ((3, (1, 3, 0, 2)), (5, (2, 5, 0, 3))):  # two depths: no fixed L
        _check_unfreeze_on(fn, ctx, depth, ks)
    ctx.ok("k = 1, L, 0, 2 in a row on one model give exactly head + the last k blocks")
    ctx.ok("the same on a 5-block model with k = 2, 5, 0, 3; the model is returned")
    ctx.ok("calling again with a smaller k freezes the blocks unfrozen before")


def _check_unfreeze_on(fn, ctx, depth, ks):
    model = tiny_vit(depth=depth, dim=16 if depth == 3 else 24)
    for k in ks:  # k = 0 after k = depth: blocks unfrozen before must freeze again
        out = returned(fn(model, k), "unfreeze_last_k", ctx, "the model")
        ctx.expect(out is model, f"unfreeze_last_k returned a {type(out).__name__}; return the "
                   "model you were given (changed in place).")  # fmt: skip
        got = trainable_names(model)
        want = trainable_names(unfreeze_last_k(tiny_vit(depth=depth, dim=16 if depth == 3 else 24), k))
        ctx.expect("head.weight" in got, f"with k={k} the head is frozen: it must stay trainable.")
        ctx.expect("norm.weight" in got, f"with k={k} the final norm (norm.*) is frozen: it feeds "
                   "the head and trains with it.")  # fmt: skip
        blocks = sorted({int(n.split(".")[1]) for n in got if n.startswith("blocks.")})
        if k and blocks == list(range(k)) and k < depth:
            ctx.fail(
                f"k={k} unfroze blocks {blocks}, the first ones: unfreeze those nearest the head."
            )
        if len(blocks) == k + 1:
            ctx.fail(f"k={k} left {len(blocks)} blocks trainable: off by one.")
        extra, missing = got - want, want - got
        ctx.expect(
            not extra,
            f"with L={depth}, k={k} these should be frozen: {names_list(extra)}. Set "
            "requires_grad on every parameter: the model may arrive with blocks unfrozen by an "
            "earlier call.",
        )
        ctx.expect(not missing, f"with L={depth}, k={k} these should be trainable: "
                   f"{names_list(missing)}. The last k blocks are those with index >= "
                   "len(model.blocks) - k.")  # fmt: skip


# ---------------------------------------------------------------- 01_gradual_unfreezing


@exercise(
    "01_gradual_unfreezing",
    title="Gradual unfreezing schedule (ULMFiT)",
    kind="function",
    reference=trainable_blocks,
    stub='''
    def trainable_blocks(epoch, depth, epochs_per_stage=1):
        """Sorted list of the block indices trainable at `epoch` (0-based): stage 0 trains the
        head alone; every `epochs_per_stage` epochs one more block joins, from the top
        (block depth - 1) downwards, until all `depth` blocks train."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "First work out how many blocks train: n = epoch // epochs_per_stage, at most depth.",
        "The n blocks nearest the head are depth - n, ..., depth - 1.",
        "return list(range(depth - min(epoch // epochs_per_stage, depth), depth))",
    ],
)
def _check_gradual(fn, ctx):
    for depth, per in ((4, 1), (3, 2)):
        for epoch in range(2 * depth * per + 2):
            raw = fn(epoch, depth) if per == 1 else fn(epoch, depth, per)  # the default too
            returned(raw, "trainable_blocks", ctx, "the list of trainable block indices")
            got = [as_int(i, "each block index", ctx) for i in raw]
            want = trainable_blocks(epoch, depth, per)
            if sorted(got) == want and got != want:
                ctx.fail(f"at epoch {epoch} (depth={depth}) you gave {got}: the right blocks in "
                         f"the wrong order; the docstring asks for a sorted list, {want}.")
            if got == want:
                continue
            where = f"at epoch {epoch} (depth={depth}, epochs_per_stage={per}) you gave {got}"
            ctx.expect(all(0 <= i < depth for i in got), f"{where}: block indices run 0..depth-1.")
            ctx.expect(
                epoch > 0 or not got, f"{where}: epoch 0 must train the head alone (no blocks)."
            )
            if got == list(range(len(want))) and want:
                ctx.fail(f"{where}: unfreeze from the top (block {depth - 1}) downwards.")
            if per > 1 and got == trainable_blocks(epoch, depth, 1):
                ctx.fail(f"{where}: one block per epoch; use epochs_per_stage={per} per block.")
            if len(got) == len(want) + 1:
                ctx.fail(f"{where}, one block too many: off by one (epoch 0 = head only).")
            ctx.fail(f"{where}, expected {want}.")
        ctx.ok(f"depth={depth}, epochs_per_stage={per}: head alone first, then top-down, sorted")


# ---------------------------------------------------------------- debug this run


def buggy_train_head(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
    """The run to debug (notebook 01): its loss stalls far above zero. Do not fix it here."""
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(head.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=g)
        for i in range(0, len(labels), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            probs = torch.softmax(head(features[idx]), dim=1)
            loss = torch.nn.functional.cross_entropy(probs, labels[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def train_head(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
    """The fixed run: ``cross_entropy`` takes logits (it applies log-softmax itself)."""
    check_int("epochs", epochs)
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(head.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=g)
        for i in range(0, len(labels), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            # A softmax before cross_entropy squashed the logits into [0, 1]: the loss could not
            # fall below about 1.46 for 10 classes and its gradients vanished.
            loss = torch.nn.functional.cross_entropy(head(features[idx]), labels[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


def _debug_task(classes=10, dim=24, per_class=12, seed=11):
    """A linear head and well-separated blobs: (head, features (N, dim), labels (N,))."""
    g = torch.Generator().manual_seed(seed)
    centres = 2 * torch.randn(classes, dim, generator=g)
    y = torch.arange(classes).repeat(per_class)
    X = centres[y] + 0.7 * torch.randn(classes * per_class, dim, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(seed + 1)
        head = nn.Linear(dim, classes)
    return head, X, y


@exercise(
    "01_debug_run",
    title="Debug this run: the loss stalls",
    kind="function",
    reference=train_head,
    solution=(train_head,),
    stub='''
    def train_head(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
        """buggy_train_head, fixed: the same loop, seeds and batches, with the one bug removed.
        Return the per-batch losses (floats)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Compare the stalled loss with what a uniform guess over 10 classes scores: "
        "math.log(10) = 2.30. Which line turns the head's outputs into something else?",
        "Read the documentation of torch.nn.functional.cross_entropy: what kind of input does it "
        "expect, logits or probabilities?",
        "The function applies log-softmax itself; applied to probabilities it squashes twice. "
        "Feed it the raw outputs of the head and leave everything else as it is.",
    ],
)
def _check_debug_run(fn, ctx):
    head, X, y = _debug_task()
    want_head, _, _ = _debug_task()
    want = train_head(want_head, X, y)
    got = returned(fn(head, X, y), "train_head", ctx, "the per-batch losses")
    ctx.expect(isinstance(got, (list, tuple)) and len(got) == len(want),
               f"return the {len(want)} per-batch losses, as the buggy version does.")  # fmt: skip
    ctx.expect(all(isinstance(v, float) for v in got), "return the losses as floats (loss.item()).")
    buggy_head, _, _ = _debug_task()
    stalled = buggy_train_head(buggy_head, X, y)
    ctx.expect(got[-1] < 0.5 * stalled[-1], f"your last loss is {got[-1]:.3f}; the buggy run "
               f"ends at {stalled[-1]:.3f}. The bug is still there.")  # fmt: skip
    ctx.ok(f"the loss falls: last batch {got[-1]:.3f} (the buggy run stalls at {stalled[-1]:.3f})")
    same = all(abs(a - b) <= 1e-5 * max(1.0, abs(b)) for a, b in zip(got, want))
    ctx.expect(same, "the loss falls, but not as in the buggy run with only its bug fixed: keep "
               "the optimizer, rate, seed and batches as they are and change only the bug.")  # fmt: skip
    ctx.ok("only the bug changed: same optimizer, rate, seed and batches as the original run")
    _check_debug_run_arguments(fn, ctx)


def _check_debug_run_arguments(fn, ctx):
    """Other data and every keyword changed: a loop that fixes 32, 20 or 0.1 in place of the
    arguments (or ignores the seed) gives other losses."""
    kw = dict(epochs=3, lr=0.05, batch_size=20, seed=1)
    head, X, y = _debug_task(classes=5, dim=16, per_class=18, seed=21)
    want = train_head(_debug_task(classes=5, dim=16, per_class=18, seed=21)[0], X, y, **kw)
    got = returned(fn(head, X, y, **kw), "train_head", ctx, "the per-batch losses")
    call = f"on 90 examples with {', '.join(f'{k}={v}' for k, v in kw.items())}"
    ctx.expect(isinstance(got, (list, tuple)) and len(got) == len(want),
               f"{call} there are {len(want)} batches (3 epochs of ceil(90 / 20) = 5); you "
               f"returned {len(got) if isinstance(got, (list, tuple)) else got!r} losses: use "
               "the epochs and batch_size arguments, not fixed numbers.")  # fmt: skip
    same = all(abs(a - b) <= 1e-5 * max(1.0, abs(b)) for a, b in zip(got, want))
    ctx.expect(same, f"{call} your losses differ from the fixed run's: use the arguments lr "
               "and seed as given (the generator is seeded with `seed`).")  # fmt: skip
    ctx.ok(f"follows its arguments: {call} (16 features, 5 classes)")
