"""Exercise of notebook 03 (LoRA): DoRA's weight, magnitude times direction (Liu et al. 2024).

Its own module because notebook 03's LoRA exercises fill ``nb03.py``.
"""

from __future__ import annotations

import torch

from .core import exercise
from .fixtures import allclose, randn, returned

# ---------------------------------------------------------------- 03_dora_weight


def dora_weight(W, A, B, magnitude, scaling):
    """DoRA's weight (Liu et al. 2024): m * V / ||V|| with V = W + scaling * B @ A.

    W (out, in), A (r, in), B (out, r), magnitude (out,); the norm is taken over each output
    row (dim=1), so every row of the result has length magnitude[row].
    """
    V = W + scaling * B @ A
    return magnitude[:, None] * V / V.norm(dim=1, keepdim=True)


@exercise(
    "03_dora_weight",
    title="DoRA's weight: magnitude times direction",
    kind="function",
    reference=dora_weight,
    stub='''
    def dora_weight(W, A, B, magnitude, scaling):
        """W (out, in), A (r, in), B (out, r), magnitude (out,) -> DoRA's W' (out, in)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "First the direction before normalising: LoRA's update added to W, V = W + scaling · B·A.",
        "Then normalise each output row of V (one norm per row, so keep that dimension for "
        "broadcasting) and give row i the length magnitude[i].",
    ],
)
def _check_dora_weight(fn, ctx):
    W, A, B = randn(6, 5, seed=1), randn(3, 5, seed=2), randn(6, 3, seed=3)
    m = randn(6, seed=4).abs() + 0.5
    want = dora_weight(W, A, B, m, 2.0)
    got = returned(fn(W, A, B, m, 2.0), "dora_weight", ctx, "W' (out, in)")
    ctx.expect(isinstance(got, torch.Tensor) and got.shape == W.shape,
               f"dora_weight must return a tensor of W's shape {tuple(W.shape)}.")  # fmt: skip
    V = W + 2.0 * B @ A
    if allclose(got, m[:, None] * V / V.norm(dim=0, keepdim=True)):
        ctx.fail("you normalised the columns (dim=0); DoRA's norm is per output row (dim=1).")
    if allclose(got, m[:, None] * V / V.norm()):
        ctx.fail("that divides by one norm of the whole matrix; take one norm per output row.")
    if allclose(got, m[:, None] * (W + B @ A) / (W + B @ A).norm(dim=1, keepdim=True)):
        ctx.fail("the LoRA update is missing its scaling: V = W + scaling · B·A.")
    if allclose(got, m[:, None] * W / W.norm(dim=1, keepdim=True) + 2.0 * B @ A):
        ctx.fail("normalise W + scaling·B·A together, not W alone with the update added after.")
    if allclose(got, V / V.norm(dim=1, keepdim=True)):
        ctx.fail("every row has length 1: multiply row i by magnitude[i].")
    ctx.expect(allclose(got, want), "W' is not magnitude · V / ||V|| (row norms), V = W + s·B·A.")
    ctx.ok("W' = m · V / ||V|| with V = W + s·B·A, rows normalised")
    ctx.expect(allclose(got.norm(dim=1), m), "the rows of W' must have the lengths of magnitude.")
    ctx.ok("each row of W' has length magnitude[row]")
    zero_b = fn(W, A, torch.zeros_like(B), W.norm(dim=1), 2.0)
    ctx.expect(allclose(zero_b, W), "with B = 0 and m = ||W||, W' must equal W (DoRA's start).")
    ctx.ok("with B = 0 and m = ||W|| it is W itself: DoRA starts at the pretrained weight")
    # another shape (4 x 7, r = 2) and scaling: nothing about the first case may be fixed
    W, A, B, m = randn(4, 7, seed=21), randn(2, 7, seed=22), randn(4, 2, seed=23), randn(4, seed=24).abs() + 0.5
    got = fn(W, A, B, m, 0.75)
    ctx.expect(isinstance(got, torch.Tensor) and got.shape == W.shape,
               f"with W of shape {tuple(W.shape)} dora_weight must return that shape.")  # fmt: skip
    if allclose(got, dora_weight(W, A, B, m, 2.0)):
        ctx.fail("with scaling=0.75 you still scale B·A by 2: use the scaling argument.")
    ctx.expect(allclose(got, dora_weight(W, A, B, m, 0.75)), "on a 4 x 7 weight with r=2 and "
               "scaling=0.75, W' is not magnitude · V / ||V||.")  # fmt: skip
    ctx.ok("also for a 4 x 7 weight, rank 2, scaling 0.75")
