"""What the test files share: a tiny ViT (every test file that needs one), a tiny learnable
image task, and for the PEFT tests a seeded batch and a few training steps."""

import torch
from torch import nn

from ftnotes.models import TinyViT

X = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def tiny_vit(num_classes: int = 5, depth: int = 2, seed: int = 0) -> TinyViT:
    """The tests' TinyViT: width 16, 2 heads, ``depth`` blocks, ``num_classes`` outputs, in eval
    mode, initialised from ``torch.manual_seed(seed)`` (two calls, the same weights)."""
    torch.manual_seed(seed)
    return TinyViT(dim=16, depth=depth, num_heads=2, num_classes=num_classes).eval()


def tiny_data(n=96, num_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    X = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    X[torch.arange(n), 0, y, :] += 0.7  # class c lights up row c: learnable in a few steps
    return X, y


def train_steps(model, y=None, steps=3, lr=1e-2):
    """A few AdamW steps on ``X``; returns the names of the parameters that changed."""
    y = torch.arange(len(X)) % 5 if y is None else y
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
