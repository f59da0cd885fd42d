"""Small seeded inputs and comparisons that the checkers share."""

from __future__ import annotations

import torch
from torch import nn

from ftnotes.models import TinyViT


def tiny_vit(num_classes: int = 36, depth: int = 2, seed: int = 0, **kw) -> TinyViT:
    """A seeded TinyViT small enough to run a check in milliseconds."""
    torch.manual_seed(seed)
    return TinyViT(dim=16, depth=depth, num_heads=2, num_classes=num_classes, **kw)


def images(n: int = 6, seed: int = 1) -> torch.Tensor:
    """Seeded fake images (n, 1, 8, 8) in [0, 1]."""
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def randn(*shape: int, seed: int = 2) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def as_float(value, what: str, ctx) -> float:
    """``value`` as a Python float, or a failure that says what came back instead."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        ctx.fail(f"{what} should return a number, got {type(value).__name__}: {value!r:.80}")
    return float(value)


def as_int(value, what: str, ctx) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        ctx.fail(f"{what} should return an int, got {type(value).__name__}: {value!r:.80}")
    return value


def close(a, b, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


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


def require(ok: bool, name: str, value, allowed: str) -> None:
    """Bad input gets a ValueError naming the parameter, the value and what is allowed."""
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
