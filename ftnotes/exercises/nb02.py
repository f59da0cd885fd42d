"""Exercises of notebook 02 (adapters): the bottleneck block, its parameter count, the wrapper."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .core import exercise
from .fixtures import (
    allclose,
    as_int,
    images,
    names_list,
    randn,
    require,
    returned,
    tiny_vit,
    trainable_names,
)

# ---------------------------------------------------------------- reference solutions
# What show_solution(id) prints and what the checkers below compare against: short and
# standalone on purpose (torch and the TinyViT conventions only; the package's peft and
# strategies add validation, configs and many-layer plumbing). Kept next to their
# checkers so that one file holds an exercise entirely.


class Adapter(nn.Module):
    """Bottleneck adapter (Houlsby et al. 2019): x + up(act(down(x))). (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, reduction_factor: int = 4):
        super().__init__()
        require(1 <= reduction_factor <= dim, "reduction_factor", reduction_factor, f"in 1..{dim}")
        self.down = nn.Linear(dim, dim // reduction_factor)
        self.non_linearity = nn.GELU()
        self.up = nn.Linear(dim // reduction_factor, dim)
        # up starts at zero so the adapter is the identity and training starts from the
        # pretrained function; down stays random so up still receives a gradient.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.non_linearity(self.down(x)))


def adapter_param_count(dim: int, reduction_factor: int, num_adapters: int = 1) -> int:
    """Parameters of ``num_adapters`` adapters: down (D*m + m) and up (m*D + D), m = D // rf."""
    require(1 <= reduction_factor <= dim, "reduction_factor", reduction_factor, f"in 1..{dim}")
    m = dim // reduction_factor
    return num_adapters * (dim * m + m + m * dim + dim)


class AdapterWrapper(nn.Module):
    """Run a frozen ``sublayer``, then an :class:`Adapter` on its output (Houlsby placement).

    The enclosing block still adds its own residual around the wrapper.
    """

    def __init__(self, sublayer: nn.Module, dim: int, reduction_factor: int = 4):
        super().__init__()
        self.sublayer = sublayer
        for p in self.sublayer.parameters():
            p.requires_grad = False
        self.adapter = Adapter(dim, reduction_factor)

    def forward(self, x, *args, **kwargs):
        # Pass every extra argument on: Block calls attn(x, prefix=...).
        return self.adapter(self.sublayer(x, *args, **kwargs))


ACTIVATIONS = {"GELU": F.gelu, "ReLU": F.relu, "SiLU": F.silu, "tanh": torch.tanh}

# ---------------------------------------------------------------- 02_adapter


@exercise(
    "02_adapter",
    title="A bottleneck adapter block",
    kind="class",
    reference=Adapter,
    stub='''
    class Adapter(nn.Module):
        """Bottleneck adapter (Houlsby et al. 2019): x + up(act(down(x))), (B, T, D) -> (B, T, D).
        down: nn.Linear(dim, dim // reduction_factor); up: nn.Linear(dim // reduction_factor, dim)
        with weight and bias initialised to zero; act: a non-linearity such as nn.GELU()."""

        def __init__(self, dim, reduction_factor=4):
            super().__init__()
            raise NotImplementedError("your code here")

        def forward(self, x):
            raise NotImplementedError("your code here")
    ''',
    hints=[
        "Three layers (self.down, a non-linearity, self.up) and a residual: return x + ...",
        "Zero only `up` (nn.init.zeros_ on its weight and bias): then the adapter starts as the "
        "identity. Leave `down` random, or `up` would get no gradient.",
        "forward: down-project, apply the non-linearity, up-project, then add the result to the input x (the residual).",
    ],
)
def _check_adapter(cls, ctx):
    _check_adapter_shapes(cls, ctx)
    _check_adapter_on(cls, ctx, 16, 4, first=True)
    _check_adapter_on(cls, ctx, 24, 3, first=False)  # another width and factor: nothing fixed
    ctx.ok("the same on a width-24 adapter with reduction_factor=3, on a batch of 2 x 4 tokens")


def _check_adapter_shapes(cls, ctx):
    """down: dim -> dim // reduction_factor (rounded down), the default factor 4, all trainable."""
    for dim, rf in ((16, 4), (24, 3), (20, 3), (16, None)):  # 20 / 3: // differs from round
        torch.manual_seed(0)
        adapter = cls(dim) if rf is None else cls(dim, rf)
        down, up = getattr(adapter, "down", None), getattr(adapter, "up", None)
        ctx.expect(
            isinstance(down, nn.Linear) and isinstance(up, nn.Linear),
            "name the two projections `down` and `up` (nn.Linear each), as in the adapter papers.",
        )
        m, call = dim // (rf or 4), f"Adapter({dim})" if rf is None else f"Adapter({dim}, {rf})"
        got = down.out_features
        if rf is None and got != m:
            ctx.fail(f"{call}: the default reduction_factor is 4, so down is {dim}->{m}; yours "
                     f"is {dim}->{got}.")
        if got != m and got in (round(dim / rf), math.ceil(dim / rf)):
            ctx.fail(f"{call}: down is {dim}->{got}, but the bottleneck is dim // "
                     f"reduction_factor = {m}, rounded down (you rounded {dim}/{rf} "
                     f"= {dim / rf:.3g} up).")
        if got != m and got == dim // 4:
            ctx.fail(f"{call}: down is {dim}->{got}, the size for reduction_factor 4: use the "
                     "reduction_factor argument, not a fixed factor.")
        ctx.expect(
            (down.in_features, got, up.in_features, up.out_features) == (dim, m, m, dim),
            f"{call}: down should be {dim}->{m} and up {m}->{dim}; yours are "
            f"{down.in_features}->{got} and {up.in_features}->{up.out_features}.",
        )
        frozen = [n for n, p in adapter.named_parameters() if not p.requires_grad]
        ctx.expect(not frozen, f"frozen: {names_list(frozen)}; every parameter of the adapter "
                   "trains (only the network around it is frozen).")  # fmt: skip
    ctx.ok("down is dim -> dim // reduction_factor (rounded down: 20 // 3 = 6), up is back to dim")
    ctx.ok("reduction_factor defaults to 4; every adapter parameter is trainable")


def _check_adapter_on(cls, ctx, dim, rf, first):
    torch.manual_seed(0)
    adapter = cls(dim, rf)
    down, up = adapter.down, adapter.up
    ctx.expect(
        not up.weight.any() and (up.bias is None or not up.bias.any()),
        "up is not initialised to zero: zero its weight and bias so the adapter starts as the "
        "identity (training then starts from the pretrained function).",
    )
    ctx.expect(
        bool(down.weight.any()),
        "down is all zeros too: then up's gradient is zero and the adapter never learns.",
    )
    x = randn(3, 5, dim) if first else randn(2, 4, dim, seed=9)
    out = returned(adapter(x), "forward", ctx, "x + up(act(down(x)))")
    ctx.expect(out.shape == x.shape, f"output shape {tuple(out.shape)}, expected {tuple(x.shape)}.")
    ctx.expect(
        not allclose(out, torch.zeros_like(x)),
        "at init your adapter returns zeros: the residual is missing (return x + ...).",
    )
    ctx.expect(allclose(out, x), "at init (up = 0) the adapter should return its input exactly.")
    if first:
        ctx.ok("up starts at zero, down random: the adapter starts as the identity")
    if out.requires_grad:
        out.pow(2).sum().backward()
    ctx.expect(
        up.weight.grad is not None and bool(up.weight.grad.any()),
        "up.weight gets no gradient at init: is down zero, or is up frozen?",
    )
    if first:
        ctx.ok("up receives a non-zero gradient at init")
    m = dim // rf
    with torch.no_grad():
        up.weight.copy_(randn(dim, m, seed=5))  # non-zero, so a lazy identity fails
        if up.bias is not None:
            up.bias.copy_(randn(dim, seed=6))
        out = adapter(x)
        branch = {a: up(f(down(x))) for a, f in ACTIVATIONS.items()}
        if any(allclose(out, b) for b in branch.values()):
            ctx.fail("the residual is missing: return x + up(act(down(x))).")
        if allclose(out, x + up(down(x))):
            ctx.fail("there is no non-linearity between down and up.")
        match = [a for a, b in branch.items() if allclose(out, x + b)]
    ctx.expect(bool(match), "with non-zero `up` your output is not x + up(act(down(x))).")
    if first:
        ctx.ok(f"with non-zero up: output = x + up({match[0]}(down(x)))")


# ---------------------------------------------------------------- 02_adapter_params


@exercise(
    "02_adapter_params",
    title="Count adapter parameters by formula",
    kind="function",
    reference=adapter_param_count,
    stub='''
    def adapter_param_count(dim, reduction_factor, num_adapters=1):
        """Parameters (weights and biases) of `num_adapters` bottleneck adapters with
        bottleneck m = dim // reduction_factor."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "One adapter is two nn.Linear layers: dim -> m and m -> dim. Count weights and biases.",
        "down: dim*m + m; up: m*dim + dim.",
        "return num_adapters * (2 * dim * m + m + dim)",
    ],
)
def _check_adapter_params(fn, ctx):
    # 20 / 3 and 22 / 4 do not divide: the bottleneck rounds down (6 and 5, not 7 and 6)
    for dim, rf, n in ((16, 4, 1), (64, 8, 8), (768, 16, 24), (20, 3, 2), (22, 4, None)):
        got = as_int(fn(dim, rf) if n is None else fn(dim, rf, n), "adapter_param_count", ctx)
        args = f"adapter_param_count({dim}, {rf}{'' if n is None else f', {n}'}) = {got}"
        n = n or 1  # the default: one adapter
        want, m = adapter_param_count(dim, rf, n), dim // rf
        ctx.expect(got != n * 2 * dim * m, f"{args}: you forgot the biases (m + dim per adapter).")
        ctx.expect(got != want // n or n == 1, f"{args}: multiply by num_adapters.")
        ctx.expect(got != n * (2 * dim * dim * rf + dim * rf + dim), f"{args}: m = dim // rf.")
        for other in {round(dim / rf), math.ceil(dim / rf)} - {m}:
            ctx.expect(got != n * (2 * dim * other + other + dim), f"{args}: that uses m = "
                       f"{other}; the bottleneck is dim // reduction_factor = {m}, rounded "
                       "down.")  # fmt: skip
        fixed = 2 * dim * (dim // 4) + dim // 4 + dim
        ctx.expect(rf == 4 or got != n * fixed, f"{args}: that is reduction factor 4; use "
                   "the reduction_factor argument.")  # fmt: skip
        ctx.expect(got == want, f"{args}, expected {want}.")
    ctx.ok("the formula matches for (16, 4, 1), (64, 8, 8), (768, 16, 24)")
    ctx.ok("m rounds down where dim / reduction_factor is not whole (20, 3 and 22, 4)")
    ctx.ok("num_adapters defaults to 1")
    counted = sum(p.numel() for p in Adapter(64, 8).parameters())
    ctx.expect(fn(64, 8, 1) == counted, f"one Adapter(64, 8) has {counted} parameters.")
    ctx.ok(f"agrees with counting an actual Adapter(64, 8): {counted}")


# ---------------------------------------------------------------- 02_insert_adapter


@exercise(
    "02_insert_adapter",
    title="Insert an adapter after a sub-layer (a wrapper module)",
    kind="class",
    reference=AdapterWrapper,
    stub='''
    class AdapterWrapper(nn.Module):
        """Wrap a pretrained sub-layer (e.g. block.mlp or block.attn): freeze it, then apply a
        bottleneck Adapter to its output (Houlsby placement). Attributes: `sublayer`, `adapter`.
        forward(x, *args, **kwargs) must pass extra arguments on to the sub-layer."""

        def __init__(self, sublayer, dim, reduction_factor=4):
            super().__init__()
            raise NotImplementedError("your code here")

        def forward(self, x, *args, **kwargs):
            raise NotImplementedError("your code here")
    ''',
    hints=[
        "Store the sub-layer as self.sublayer, freeze its parameters, build self.adapter = "
        "Adapter(dim, reduction_factor) (yours from the exercise above, or the package's).",
        "The adapter reads the sub-layer's *output*: adapter(sublayer(x)). The block adds its "
        "own residual around the wrapper, so do not add x again.",
        "Block calls attn(x, prefix=...): forward(self, x, *args, **kwargs) and "
        "self.sublayer(x, *args, **kwargs).",
    ],
)
def _check_insert_adapter(cls, ctx):
    _check_insert_adapter_on(cls, ctx, dim=16, rf=None)  # the default reduction_factor, 4
    _check_insert_adapter_on(cls, ctx, dim=24, rf=3)
    ctx.ok("the same on a width-24 TinyViT with reduction_factor=3 (the factor is passed on)")


def _check_insert_adapter_on(cls, ctx, dim, rf):
    model, x = tiny_vit(depth=2, dim=dim), images(4 if rf is None else 5)
    before = model(x).detach()
    wrap = (lambda sub: cls(sub, dim)) if rf is None else (lambda sub: cls(sub, dim, rf))
    alone = wrap(copy.deepcopy(model.blocks[1].mlp))  # outside a block: a missing return shows
    try:
        returned(alone(randn(2, 3, dim, seed=19)), "forward", ctx, "adapter(sublayer(x))")
    except RuntimeError as err:
        if "shape" not in str(err):
            raise
        ctx.fail(f"on a width-{dim} model the adapter does not fit the sub-layer's output "
                 f"({err}): build Adapter(dim, reduction_factor) from the arguments, not a "
                 "fixed width.")
    try:
        model.blocks[0].attn = wrap(model.blocks[0].attn)
        model.blocks[1].mlp = wrap(model.blocks[1].mlp)
        out = returned(model(x), "forward", ctx, "adapter(sublayer(x))")
    except TypeError as err:
        if "prefix" in str(err) or "argument" in str(err):
            ctx.fail(f"wrapping block.attn failed ({err}): Block calls attn(x, prefix=...), so "
                     "forward must accept *args, **kwargs and pass them to the sub-layer.")  # fmt: skip
        raise
    wrapper = model.blocks[1].mlp
    sub, adapter = getattr(wrapper, "sublayer", None), getattr(wrapper, "adapter", None)
    ctx.expect(
        isinstance(sub, nn.Module) and isinstance(adapter, nn.Module),
        "keep the wrapped layer as `self.sublayer` and the adapter as `self.adapter`.",
    )
    first = rf is None
    if first:
        ctx.ok("wraps both block.attn (extra arguments passed on) and block.mlp")
    size, want = sum(p.numel() for p in adapter.parameters()), adapter_param_count(dim, rf or 4)
    ctx.expect(size == want, f"AdapterWrapper(sublayer, {dim}{'' if first else f', {rf}'}) "
               f"holds an adapter of {size} parameters; Adapter({dim}, {rf or 4}) has {want}: "
               "build it with the dim and reduction_factor you were given.")  # fmt: skip
    ctx.expect(allclose(out, before), "at init the wrapped model should equal the original one.")
    if first:
        ctx.ok("at init the wrapped TinyViT gives the original outputs")
    trainable = trainable_names(model)
    sub_trainable = [n for n in trainable if ".sublayer." in n]
    ctx.expect(not sub_trainable, "the wrapped sub-layer is still trainable: freeze it.")
    frozen = [n for n, p in model.named_parameters() if ".adapter." in n and not p.requires_grad]
    ctx.expect(not frozen, f"frozen: {names_list(frozen)}; the adapter's parameters must all "
               "train (freeze the sub-layer only).")  # fmt: skip
    if first:
        ctx.ok("the sub-layer is frozen, every adapter parameter trainable")
    with torch.no_grad():
        for i, p in enumerate(adapter.parameters()):  # non-zero everywhere: no lazy identity
            p.copy_(0.3 * randn(*p.shape, seed=10 + i))
        h = randn(2, 5, dim, seed=20)
        got, sub_out = wrapper(h), sub(h)
        ctx.expect(not allclose(got, sub_out), "the adapter's output is never used.")
        if allclose(got, sub(adapter(h))):
            ctx.fail("the adapter runs before the sub-layer: apply it to the sub-layer's output.")
        if allclose(got, h + adapter(sub_out)):
            ctx.fail("you added x again: the block already adds the residual around the wrapper.")
        ctx.expect(allclose(got, adapter(sub_out)), "with a non-zero adapter, output should be "
                   "adapter(sublayer(x)).")  # fmt: skip
    if first:
        ctx.ok("with a non-zero adapter: output = adapter(sublayer(x))")
