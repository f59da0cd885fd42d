"""Exercises of notebook 03 (LoRA): the layer, merge/unmerge, the parameter-count formula
(DoRA's weight is in ``nb03_dora.py``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import check_int
from .core import exercise
from .fixtures import allclose, as_int, names_list, randn, require, returned, sgd_step

# ---------------------------------------------------------------- reference solutions
# What show_solution(id) prints and what the checkers below compare against: short and
# standalone on purpose (torch and the TinyViT conventions only; the package's peft and
# strategies add validation, configs and many-layer plumbing). Kept next to their
# checkers so that one file holds an exercise entirely.


class LoRALinear(nn.Module):
    """LoRA (Hu et al. 2021): y = W x + b + (lora_alpha / r) * B A x, with W and b frozen.

    lora_A (r, in) starts Kaiming-uniform, lora_B (out, r) starts at zero: at init the layer
    equals ``base``. Input (..., in) -> output (..., out).
    """

    def __init__(self, base: nn.Linear, r: int = 4, lora_alpha: float = 8.0):
        super().__init__()
        check_int("r", r)
        self.base = base
        for p in self.base.parameters():
            p.requires_grad = False
        self.r, self.lora_alpha, self.scaling = r, lora_alpha, lora_alpha / r
        like_w = {"device": base.weight.device, "dtype": base.weight.dtype}  # CPU or GPU, as W
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **like_w))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **like_w))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:  # the update already lives in base.weight
            return self.base(x)
        return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)

    def get_delta_weight(self) -> torch.Tensor:
        """The low-rank update scaling * B A, shaped like base.weight (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into base.weight, so inference costs one plain matmul."""
        if not self.merged:  # merging twice would add the update twice
            self.base.weight += self.get_delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of base.weight (restores W up to float rounding)."""
        if self.merged:
            self.base.weight -= self.get_delta_weight()
            self.merged = False


def lora_param_count(in_features: int, out_features: int, r: int, num_layers: int = 1) -> int:
    """Trainable LoRA parameters: A (r x in) plus B (out x r) per adapted layer."""
    require(r >= 1, "r", r, ">= 1")
    return num_layers * r * (in_features + out_features)


# ---------------------------------------------------------------- 03_lora_layer


def _make(cls, in_f, out_f, r, alpha, ctx, defaults=False):
    """``cls(base, r=r, lora_alpha=alpha)`` (or ``cls(base)`` with ``defaults``), checked."""
    torch.manual_seed(0)
    base = nn.Linear(in_f, out_f)
    w_pretrained = base.weight.detach().clone()
    layer = cls(base) if defaults else cls(base, r=r, lora_alpha=alpha)
    ctx.expect(
        torch.equal(base.weight, w_pretrained),
        "building the layer changed the pretrained base weight: LoRA keeps W as it is.",
    )
    a, b = getattr(layer, "lora_A", None), getattr(layer, "lora_B", None)
    ctx.expect(
        isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor),
        "store the factors as nn.Parameter attributes `lora_A` and `lora_B` (peft's names).",
    )
    registered = {id(p) for p in layer.parameters()}
    ctx.expect(
        id(a) in registered and id(b) in registered,
        "lora_A and lora_B are plain tensors: wrap them in nn.Parameter so that the optimizer "
        "(model.parameters()) finds them and state_dict() saves them.",
    )
    ctx.expect(
        tuple(a.shape) == (r, in_f),
        f"lora_A should be r x in = ({r}, {in_f}); yours is {tuple(a.shape)}.",
    )
    ctx.expect(
        tuple(b.shape) == (out_f, r),
        f"lora_B should be out x r = ({out_f}, {r}); yours is {tuple(b.shape)}.",
    )
    return layer, base


def _forward(layer, x, ctx):
    try:
        return returned(layer(x), "forward", ctx, "base(x) + scaling * x A^T B^T")
    except RuntimeError as err:
        if "shape" not in str(err):
            raise
        ctx.fail(f"forward raised a shape error ({err}) on a {layer.lora_A.shape[1]}-in, "
                 f"{layer.lora_B.shape[0]}-out layer: the update is x @ A^T @ B^T; "
                 "is B·A transposed?")  # fmt: skip


def _set_nonzero(layer) -> None:
    """Give lora_A and lora_B seeded non-zero values: an untouched LoRA is the identity."""
    with torch.no_grad():
        layer.lora_A.copy_(randn(*layer.lora_A.shape, seed=7))
        layer.lora_B.copy_(randn(*layer.lora_B.shape, seed=8))


@exercise(
    "03_lora_layer",
    title="A LoRALinear layer",
    kind="class",
    reference=LoRALinear,
    stub='''
    class LoRALinear(nn.Module):
        """LoRA (Hu et al. 2021): y = base(x) + (lora_alpha / r) * x A^T B^T.
        Keep `base` (an nn.Linear) frozen; lora_A: nn.Parameter (r, in_features), Kaiming
        uniform; lora_B: nn.Parameter (out_features, r), zeros; self.scaling = lora_alpha / r."""

        def __init__(self, base, r=4, lora_alpha=8.0):
            super().__init__()
            raise NotImplementedError("your code here")

        def forward(self, x):
            raise NotImplementedError("your code here")
    ''',
    hints=[
        "Freeze base with requires_grad = False; create lora_A with torch.empty + "
        "nn.init.kaiming_uniform_(a=math.sqrt(5)), lora_B with torch.zeros.",
        "Why B = 0: then B A = 0, the layer equals base at init, training starts from the "
        "pretrained function. A must be random, or B would get no gradient.",
        "forward: the frozen layer's output plus self.scaling times x multiplied by A transposed, then by B transposed (x: (..., in) -> (..., r) -> (..., out)).",
    ],
)
def _check_lora_layer(cls, ctx):
    in_f, out_f, r, alpha = 12, 6, 4, 8.0
    layer, base = _make(cls, in_f, out_f, r, alpha, ctx)
    ctx.ok("lora_A is r x in, lora_B is out x r")
    ctx.expect(not layer.lora_B.any(), "lora_B is not zero at init: B = 0 makes ΔW = 0.")
    ctx.expect(
        bool(layer.lora_A.any()) and layer.lora_A.std() > 0,
        "lora_A is constant at init: it needs random (Kaiming) values so B gets a gradient.",
    )
    ctx.ok("lora_B starts at zero, lora_A random")
    x = randn(5, in_f, seed=3)
    ctx.expect(
        allclose(_forward(layer, x, ctx), base(x)),
        "at init (B = 0) the layer should equal base(x).",
    )
    ctx.ok("at init the layer equals the base layer")
    w0 = base.weight.detach().clone()
    sgd_step(layer, x)
    ctx.expect(torch.equal(base.weight, w0), "the base weight changed after a training step: "
               "it should be frozen.")  # fmt: skip
    ctx.ok("a training step leaves the base weight unchanged")
    frozen = [n for n, p in base.named_parameters() if p.requires_grad]
    ctx.expect(not frozen, f"base.{frozen[0] if frozen else ''} is trainable: freeze the base.")
    ctx.expect(
        layer.lora_A.requires_grad and layer.lora_B.requires_grad,
        "lora_A and lora_B must be trainable.",
    )
    _check_scaling(layer, r, alpha, ctx)
    ctx.ok("base frozen, lora_A and lora_B trainable, scaling = lora_alpha / r")
    _check_output(layer, base, x, r, alpha, ctx)
    _check_square_not_transposed(cls, ctx)
    ctx.ok("with non-zero B: output = W·x + b + (α/r)·B·A·x (also on a square layer)")
    # α/r not a whole number (1.5, 8/3; an int α too), and the defaults r=4, α=8: catches
    # lora_alpha // r and a scaling or rank typed in as a number
    for in_f, out_f, r, alpha, defaults in ((10, 7, 4, 6, False), (5, 9, 3, 8.0, False),
                                            (6, 4, 4, 8.0, True)):  # fmt: skip
        layer, base = _make(cls, in_f, out_f, r, alpha, ctx, defaults=defaults)
        _check_scaling(layer, r, alpha, ctx, defaults)
        _check_output(layer, base, randn(3, in_f, seed=11), r, alpha, ctx)
    ctx.ok("α/r = 1.5 and 8/3 (not whole numbers) and the defaults r=4, lora_alpha=8.0")


def _check_scaling(layer, r, alpha, ctx, defaults=False):
    call = "with the defaults" if defaults else f"with r={r}, lora_alpha={alpha!r}"
    scaling = getattr(layer, "scaling", None)
    ctx.expect(scaling is not None, "store self.scaling = lora_alpha / r.")
    scaling = float(scaling)
    ctx.expect(abs(scaling - r / alpha) > 1e-9, f"{call} your scaling is r/α; it should be α/r.")
    if alpha % r and abs(scaling - alpha // r) < 1e-9:
        ctx.fail(f"{call} your scaling is {scaling:g} = lora_alpha // r, rounded down: the "
                 f"scaling is lora_alpha / r = {alpha / r:.4g} (true division).")
    ctx.expect(abs(scaling - alpha / r) < 1e-9,
               f"{call} self.scaling should be lora_alpha / r = {alpha / r:.4g}, got {scaling:g}"
               + (": use the arguments, not a fixed number." if scaling == 2.0 else "."))  # fmt: skip


def _check_output(layer, base, x, r, alpha, ctx):
    _set_nonzero(layer)
    with torch.no_grad():
        ba, out, y0 = layer.lora_B @ layer.lora_A, _forward(layer, x, ctx), base(x)
        if alpha % r and allclose(out, y0 + (alpha // r) * x @ ba.T):
            ctx.fail(f"with r={r}, lora_alpha={alpha!r} your output uses lora_alpha // r = "
                     f"{alpha // r:g}: the scaling is lora_alpha / r = {alpha / r:.4g}.")
        if allclose(out, y0 + x @ ba.T):
            ctx.fail("your output is W·x + B·A·x: did you forget the scaling α/r?")
        if allclose(out, y0 + (r / alpha) * x @ ba.T):
            ctx.fail("your scaling is r/α; it should be α/r (lora_alpha / r).")
        ctx.expect(
            allclose(out, y0 + (alpha / r) * x @ ba.T),
            f"with r={r}, lora_alpha={alpha!r} your LoRA output differs from W·x + (α/r)·B·A·x "
            "(tested with non-zero B).",
        )


def _check_square_not_transposed(cls, ctx):
    layer, base = _make(cls, 8, 8, 2, 4.0, ctx)
    _set_nonzero(layer)
    x = randn(5, 8, seed=4)
    with torch.no_grad():
        ba = layer.lora_B @ layer.lora_A
        out = layer(x)
        if allclose(out, base(x) + 2.0 * x @ ba):
            ctx.fail("B·A is transposed: the update is x @ (B A)^T = x @ A^T @ B^T.")
        ctx.expect(allclose(out, base(x) + 2.0 * x @ ba.T), "on a square 8x8 layer your output "
                   "differs from W·x + (α/r)·B·A·x.")  # fmt: skip


# ---------------------------------------------------------------- 03_lora_merge


@exercise(
    "03_lora_merge",
    title="Merge and unmerge a LoRA layer",
    kind="class",
    reference=LoRALinear,
    solution=(
        LoRALinear.forward,
        LoRALinear.get_delta_weight,
        LoRALinear.merge,
        LoRALinear.unmerge,
    ),
    stub='''
    class MergeableLoRALinear(LoRALinear):
        """Adds peft's merge API to your LoRALinear. forward must skip the LoRA branch while
        self.merged is True (the update then lives in base.weight)."""

        merged = False

        def forward(self, x):
            """Like LoRALinear.forward, but only base(x) while merged."""
            raise NotImplementedError("your code here")

        def get_delta_weight(self):
            """scaling * B A, shaped like base.weight: (out_features, in_features)."""
            raise NotImplementedError("your code here")

        def merge(self):
            """Add the delta into base.weight (once) and set self.merged = True."""
            raise NotImplementedError("your code here")

        def unmerge(self):
            """Subtract it again and set self.merged = False."""
            raise NotImplementedError("your code here")
    ''',
    hints=[
        "get_delta_weight: self.scaling * (self.lora_B @ self.lora_A) has shape (out, in).",
        "Change weights under torch.no_grad(): self.base.weight += self.get_delta_weight().",
        "Guard with the flag: merge twice must not add the delta twice, unmerge twice must "
        "not subtract it twice. In forward, while merged, the base layer alone already holds "
        "the update.",
    ],
)
def _check_lora_merge(cls, ctx):
    _check_lora_merge_on(cls, ctx, 12, 6, 4, 8.0, first=True)
    _check_lora_merge_on(cls, ctx, 10, 7, 3, 4, first=False)  # scaling 4/3, not a whole number
    ctx.ok("the same on a 10 -> 7 layer with r=3, lora_alpha=4 (scaling 4/3)")


def _check_lora_merge_on(cls, ctx, in_f, out_f, r, alpha, first):
    layer, base = _make(cls, in_f, out_f, r, alpha, ctx)
    _set_nonzero(layer)
    x = randn(5, in_f, seed=3)
    w0, before, w_obj = base.weight.detach().clone(), layer(x).detach(), base.weight
    delta = returned(layer.get_delta_weight(), "get_delta_weight", ctx, "scaling·B·A")
    ctx.expect(tuple(delta.shape) == (out_f, in_f), f"get_delta_weight should be (out, in) = "
               f"({out_f}, {in_f}), got {tuple(delta.shape)}: B·A transposed?")  # fmt: skip
    ba = layer.lora_B.detach() @ layer.lora_A.detach()
    want = (alpha / r) * ba
    if alpha % r and allclose(delta, (alpha // r) * ba):
        ctx.fail(f"with r={r}, lora_alpha={alpha!r} get_delta_weight uses lora_alpha // r = "
                 f"{alpha // r:g}; the scaling is lora_alpha / r = {alpha / r:.4g}.")
    if allclose(delta, ba):
        ctx.fail("get_delta_weight is B·A without the scaling α/r.")
    ctx.expect(allclose(delta, want), f"get_delta_weight should be scaling·B·A (scaling = "
               f"lora_alpha / r = {alpha / r:.4g} here).")  # fmt: skip
    if first:
        ctx.ok("get_delta_weight = scaling·B·A, shape (out, in), with non-zero B")
    layer.merge()
    ctx.expect(getattr(layer, "merged", None) is True, "merge() should set self.merged = True.")
    ctx.expect(not torch.equal(base.weight, w0), "merge() left base.weight unchanged.")
    if allclose(base(x), x @ want.T + base.bias):
        ctx.fail("merge() replaced W by the delta: it should be W + scaling·B·A.")
    ctx.expect(allclose(base(x), before), "after merge(), base(x) should equal the LoRA output.")
    ctx.expect(allclose(layer(x), before), "after merge() the layer's output changed: forward "
               "must skip the LoRA branch while merged.")  # fmt: skip
    if first:
        ctx.ok("after merge(): base(x) and layer(x) equal the unmerged output")
    layer.merge()
    ctx.expect(allclose(base.weight, w0 + want), "merging twice added the delta twice: "
               "check self.merged first.")  # fmt: skip
    if first:
        ctx.ok("merging twice is harmless")
    layer.unmerge()
    ctx.expect(getattr(layer, "merged", None) is False, "unmerge() should set merged = False.")
    ctx.expect(allclose(base.weight, w0, atol=1e-6), "unmerge() did not restore W: subtract "
               "exactly what merge() added.")  # fmt: skip
    ctx.expect(allclose(layer(x), before), "after unmerge() the layer's output changed.")
    if first:
        ctx.ok("unmerge() restores W (to 1e-6) and the original output")
    layer.unmerge()
    ctx.expect(allclose(base.weight, w0, atol=1e-6), "a second unmerge() changed W again: check "
               "self.merged first, as merge() does.")  # fmt: skip
    if first:
        ctx.ok("unmerging twice is harmless")
    layer.merge()
    layer.unmerge()
    trainable = [f"base.{n}" for n, p in layer.base.named_parameters() if p.requires_grad]
    ctx.expect(not trainable, f"after merge() and unmerge() {names_list(trainable)} is trainable "
               "again: change the weight in place under torch.no_grad() instead of assigning a "
               "new nn.Parameter.")  # fmt: skip
    ctx.expect(layer.base.weight is w_obj, "merge() replaced the base weight tensor: "
               "change it in place (base.weight += ...) so the optimizer and any tied reference "
               "keep pointing at it.")  # fmt: skip
    if first:
        ctx.ok("merge/unmerge change W in place and leave it frozen")


# ---------------------------------------------------------------- 03_lora_params


@exercise(
    "03_lora_params",
    title="The LoRA parameter-count formula",
    kind="function",
    reference=lora_param_count,
    stub='''
    def lora_param_count(in_features, out_features, r, num_layers=1):
        """Trainable LoRA parameters (lora_A and lora_B) over `num_layers` adapted layers."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Add up the shapes: lora_A is r x in, lora_B is out x r.",
        "A has r x in_features numbers and B has out_features x r; add them and multiply by the number of layers.",
    ],
)
def _check_lora_params(fn, ctx):
    for in_f, out_f, r, n in ((12, 6, 2, 1), (64, 64, 8, 8), (768, 3072, 16, 12), (10, 6, 3, None)):
        got = as_int(fn(in_f, out_f, r) if n is None else fn(in_f, out_f, r, n),
                     "lora_param_count", ctx)  # fmt: skip
        args = f"lora_param_count({in_f}, {out_f}, {r}{'' if n is None else f', {n}'}) = {got}"
        n = n or 1  # the default: one layer
        want = lora_param_count(in_f, out_f, r, n)
        ctx.expect(got != n * r * in_f * out_f, f"{args}: that is r·in·out; A and B are added.")
        ctx.expect(got != n * in_f * out_f, f"{args}: that is the full weight, not LoRA.")
        ctx.expect(got != want // n or n == 1, f"{args}: multiply by num_layers.")
        ctx.expect(got != want + n * out_f, f"{args}: the base bias is frozen, not LoRA.")
        ctx.expect(got == want, f"{args}, expected r·(in + out) per layer = {want}.")
    ctx.ok("r·(in + out) per layer for four shapes (num_layers defaults to 1)")
    layer = LoRALinear(nn.Linear(64, 32), r=8)
    counted = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    ctx.expect(fn(64, 32, 8, 1) == counted, f"a LoRALinear(64 -> 32, r=8) trains {counted}.")
    ctx.ok(f"agrees with counting a real LoRALinear(64 -> 32, r=8): {counted}")
