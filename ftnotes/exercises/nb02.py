"""Exercises of notebook 02 (adapters): the bottleneck block, its parameter count, the wrapper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .core import exercise
from .fixtures import allclose, as_int, images, randn, require, tiny_vit, trainable_names

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
    dim, rf = 16, 4
    torch.manual_seed(0)
    adapter = cls(dim, rf)
    down, up = getattr(adapter, "down", None), getattr(adapter, "up", None)
    ctx.expect(
        isinstance(down, nn.Linear) and isinstance(up, nn.Linear),
        "name the two projections `down` and `up` (nn.Linear each), as in the adapter papers.",
    )
    ctx.expect(
        (down.in_features, down.out_features, up.in_features, up.out_features)
        == (dim, dim // rf, dim // rf, dim),
        f"with dim={dim}, reduction_factor={rf}: down should be {dim}->{dim // rf} and up "
        f"{dim // rf}->{dim}; yours are {down.in_features}->{down.out_features} and "
        f"{up.in_features}->{up.out_features}.",
    )
    ctx.ok("down is dim -> dim // reduction_factor, up is back to dim")
    ctx.expect(
        not up.weight.any() and (up.bias is None or not up.bias.any()),
        "up is not initialised to zero: zero its weight and bias so the adapter starts as the "
        "identity (training then starts from the pretrained function).",
    )
    ctx.expect(
        bool(down.weight.any()),
        "down is all zeros too: then up's gradient is zero and the adapter never learns.",
    )
    x = randn(3, 5, dim)
    out = adapter(x)
    ctx.expect(out.shape == x.shape, f"output shape {tuple(out.shape)}, expected {tuple(x.shape)}.")
    ctx.expect(
        not allclose(out, torch.zeros_like(x)),
        "at init your adapter returns zeros: the residual is missing (return x + ...).",
    )
    ctx.expect(allclose(out, x), "at init (up = 0) the adapter should return its input exactly.")
    ctx.ok("up starts at zero, down random: the adapter starts as the identity")
    if out.requires_grad:
        out.pow(2).sum().backward()
    ctx.expect(
        up.weight.grad is not None and bool(up.weight.grad.any()),
        "up.weight gets no gradient at init: is down zero, or is up frozen?",
    )
    ctx.ok("up receives a non-zero gradient at init")
    with torch.no_grad():
        up.weight.copy_(randn(dim, dim // rf, seed=5))  # non-zero, so a lazy identity fails
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
    for dim, rf, n in ((16, 4, 1), (64, 8, 8), (768, 16, 24)):
        got = as_int(fn(dim, rf, n), "adapter_param_count", ctx)
        want = adapter_param_count(dim, rf, n)
        m, args = dim // rf, f"adapter_param_count({dim}, {rf}, {n}) = {got}"
        ctx.expect(got != n * 2 * dim * m, f"{args}: you forgot the biases (m + dim per adapter).")
        ctx.expect(got != want // n or n == 1, f"{args}: multiply by num_adapters.")
        ctx.expect(got != n * (2 * dim * dim * rf + dim * rf + dim), f"{args}: m = dim // rf.")
        ctx.expect(got == want, f"{args}, expected {want}.")
    ctx.ok("the formula matches for (16, 4, 1), (64, 8, 8), (768, 16, 24)")
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
    model, x = tiny_vit(depth=2), images(4)
    before = model(x).detach()
    try:
        model.blocks[0].attn = cls(model.blocks[0].attn, 16)
        model.blocks[1].mlp = cls(model.blocks[1].mlp, 16)
        out = model(x)
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
    ctx.ok("wraps both block.attn (extra arguments passed on) and block.mlp")
    ctx.expect(allclose(out, before), "at init the wrapped model should equal the original one.")
    ctx.ok("at init the wrapped TinyViT gives the original outputs")
    trainable = trainable_names(model)
    sub_trainable = [n for n in trainable if ".sublayer." in n]
    ctx.expect(not sub_trainable, "the wrapped sub-layer is still trainable: freeze it.")
    ctx.expect(
        any(".adapter." in n for n in trainable), "the adapter's parameters must be trainable."
    )
    ctx.ok("the sub-layer is frozen, the adapter trainable")
    with torch.no_grad():
        for i, p in enumerate(adapter.parameters()):  # non-zero everywhere: no lazy identity
            p.copy_(0.3 * randn(*p.shape, seed=10 + i))
        h = randn(2, 5, 16, seed=20)
        got, sub_out = wrapper(h), sub(h)
        ctx.expect(not allclose(got, sub_out), "the adapter's output is never used.")
        if allclose(got, sub(adapter(h))):
            ctx.fail("the adapter runs before the sub-layer: apply it to the sub-layer's output.")
        if allclose(got, h + adapter(sub_out)):
            ctx.fail("you added x again: the block already adds the residual around the wrapper.")
        ctx.expect(allclose(got, adapter(sub_out)), "with a non-zero adapter, output should be "
                   "adapter(sublayer(x)).")  # fmt: skip
    ctx.ok("with a non-zero adapter: output = adapter(sublayer(x))")
