"""Small seeded inputs and comparisons that the checkers share."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ftnotes.checks import is_int, require  # noqa: F401 (require: the reference solutions import it here)
from ftnotes.models import TinyViT


def tiny_vit(num_classes: int = 36, depth: int = 2, seed: int = 0, dim: int = 16, **kw) -> TinyViT:
    """A seeded TinyViT small enough to run a check in milliseconds.

    Checks run solutions on at least two shapes (e.g. ``dim=16`` and ``dim=24, depth=3``), so
    code that hard-codes the test model's sizes fails instead of passing by luck.
    """
    torch.manual_seed(seed)
    return TinyViT(dim=dim, depth=depth, num_heads=2, num_classes=num_classes, **kw)


def images(n: int = 6, seed: int = 1) -> torch.Tensor:
    """Seeded fake images (n, 1, 8, 8) in [0, 1]."""
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def randn(*shape: int, seed: int = 2) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def returned(value, what: str, ctx, promise: str = "its result"):
    """``value``, or a failure naming the missing ``return`` if it is None.

    A function that computes the right thing and forgets ``return`` gives None: say that,
    instead of a type error three lines later.
    """
    ctx.expect(value is not None, f"{what} returned None: did you forget `return` "
               f"(it should return {promise})?")  # fmt: skip
    return value


def as_float(value, what: str, ctx) -> float:
    """``value`` as a Python float, or a failure that says what came back instead.

    A one-element tensor is refused: it drags autograd and the device along into whatever the
    student does next (``.item()`` makes the float the exercise asks for).
    """
    returned(value, what, ctx, "a float")
    if isinstance(value, torch.Tensor):
        ctx.fail(f"{what} should return a Python float, got a tensor {value!r:.60}: call .item().")
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        ctx.fail(f"{what} should return a number, got {type(value).__name__}: {value!r:.80}")
    return float(value)


def as_int(value, what: str, ctx) -> int:
    """``value`` as an int; 0-d integer tensors and numpy ints are fine (they index like ints).

    A float is refused even when whole: the count is an int, and a float result usually means
    ``/`` where the formula rounds down (``//``).
    """
    returned(value, what, ctx, "an int")
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value)
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, float):
        ctx.fail(f"{what} should return an int, got the float {value!r}: count with integer "
                 "arithmetic (// rounds down; / gives a float).")  # fmt: skip
    if not is_int(value):
        ctx.fail(f"{what} should return an int, got {type(value).__name__}: {value!r:.80}")
    return value


def close(a, b, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def rounded_note(got: float, want: float) -> str:
    """' You rounded ...' if ``got`` is ``want`` rounded to 0-4 decimals (else '')."""
    for digits in range(5):
        if not close(got, want) and close(got, round(want, digits)):
            return f" You rounded to {digits} decimals: return the value unrounded."
    return ""


def allclose(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=1e-4)


def trainable_names(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def sgd_step(module: nn.Module, inputs: torch.Tensor, lr: float = 0.1) -> None:
    """One SGD step on the trainable parameters, with a loss that touches every output."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        return
    out = module(inputs)
    loss = (out * torch.linspace(-1, 1, out.shape[-1])).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
                p.grad = None


def names_list(names, limit: int = 4) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
