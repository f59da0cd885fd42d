"""Synthetic handwritten digits drawn with a pen: the shipped backbone's second pretraining source.

Why: a backbone that learns from printed fonts only (:mod:`ftnotes.glyphs`) makes zero-shot
errors on the real digits are handwriting forms: printed fonts don't look like handwriting, and
warping a printed glyph does not turn it into a handwritten one. So the skeletons draw forms
that fonts lack, such as a "1" with a long flag, an open-topped "4", a "7" with a crossbar, a
"2" with a loop at its foot and a "9" with a straight tail.

How: every digit has a few hand-designed skeletons (:data:`SKELETONS`: control points in a unit
box and strokes through them, from general knowledge of how people write digits; no real
handwriting was used). A stroke is a Catmull-Rom spline through its control points (Catmull &
Rom 1974, "A class of local interpolating splines"), so the sampled curve is a fixed linear map
of the control points, (P, K) @ (B, K, 2) -> (B, P, 2): one matmul per skeleton and batch.
Per sample :func:`render_strokes` draws Gaussian control-point jitter, a slant and a width
(:data:`HW_AUGMENT`), splats the curve on the 32x32 canvas of :mod:`ftnotes.glyphs`, thickens
it (a thin or thick pen), then sends it through the same affine + elastic warp (Simard et al.
2003, "Best practices for CNNs applied to visual document analysis"), stroke-width threshold
and UCI preprocessing as the fonts. Images are (n, 1, 8, 8) float32 in [0, 1], multiples of
1/16, like :func:`ftnotes.glyphs.render_glyphs`; labels are the digits 0-9.

Measured (``python -m ftnotes.pretrain --handwriting N``: N stroke digits per epoch next to the
40k glyphs, 8 epochs, one thread; then ``python -m ftnotes.bench --labels-per-class K --methods
scratch_cnn,full_ft --seeds 3 --epochs 300``; digits test accuracy of full fine-tuning, mean +- sd):

=======  ===========  ==============  ==============  ==============
N        glyph test   K = 1           K = 2           K = 5
=======  ===========  ==============  ==============  ==============
0        95.70%       75.9 +- 1.4     81.4 +- 1.4     88.1 +- 0.6
16,000   95.75%                                       91.7 +- 1.4
32,000   95.70%       88.8 +- 1.7     90.6 +- 2.5     93.9 +- 1.9
48,000   95.85%       91.7 +- 1.2     92.0 +- 1.7     95.8 +- 1.5
=======  ===========  ==============  ==============  ==============

``SmallCNN`` from scratch, same command: 45.5 +- 4.9 / 67.0 +- 1.1 / 85.2 +- 4.3. The shipped
backbone is the 48,000 run (``SHIPPED_HANDWRITING`` in :mod:`ftnotes.pretrain`): the first to beat
``SmallCNN`` by 10 points at 5 labels per class; its training took 344 s on a 2-core machine
(reference step 18.3 ms), inside the 10-minute budget that more stroke digits would break.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ftnotes import glyphs
from ftnotes.checks import check_int, is_int, require

# (points, strokes): points (x, y) in a unit box, y down; strokes are lists of point indices;
# a stroke whose first and last index agree is a closed loop.
SKELETONS: dict[int, list[tuple[list, list]]] = {
    0: [
        ([(0.5, 0), (0.2, 0.25), (0.15, 0.6), (0.45, 1), (0.8, 0.75), (0.8, 0.3)],
         [[0, 1, 2, 3, 4, 5, 0]]),
        ([(0.5, 0), (0.12, 0.2), (0.0, 0.5), (0.12, 0.82), (0.5, 1), (0.88, 0.82), (1, 0.5),
          (0.88, 0.18)], [[0, 1, 2, 3, 4, 5, 6, 7, 0]]),
        ([(0.6, 0.02), (0.2, 0.12), (0.02, 0.5), (0.2, 0.9), (0.55, 1), (0.9, 0.8), (0.95, 0.4),
          (0.75, 0.05), (0.4, 0.05)], [[0, 1, 2, 3, 4, 5, 6, 7, 8]]),
    ],
    1: [
        ([(0.0, 0.45), (0.6, 0), (0.55, 1)], [[0, 1], [1, 2]]),
        ([(0.25, 0.15), (0.5, 0), (0.45, 0.5), (0.5, 1)], [[0, 1], [1, 2, 3]]),
        ([(0.5, 0), (0.5, 1)], [[0, 1]]),
        ([(0.1, 0.28), (0.55, 0), (0.5, 1)], [[0, 1], [1, 2]]),
        ([(0.1, 0.28), (0.55, 0), (0.5, 1), (0.1, 1), (0.9, 1)], [[0, 1], [1, 2], [3, 4]]),
    ],
    2: [
        ([(0.05, 0.25), (0.35, 0.0), (0.8, 0.05), (0.9, 0.3), (0.6, 0.65), (0.0, 1.0), (1.0, 1.0)],
         [[0, 1, 2, 3, 4, 5], [5, 6]]),
        ([(0.05, 0.25), (0.35, 0), (0.8, 0.05), (0.9, 0.3), (0.55, 0.65), (0.1, 0.95),
          (0.22, 0.8), (0.35, 0.95), (1.0, 1.0)], [[0, 1, 2, 3, 4, 5, 6, 7, 8]]),
        ([(0.05, 0.2), (0.45, 0), (0.9, 0.2), (0.7, 0.55), (0.1, 0.95), (0.5, 0.9), (1.0, 1.0)],
         [[0, 1, 2, 3, 4, 5, 6]]),
    ],
    3: [
        ([(0.1, 0.1), (0.5, 0), (0.9, 0.2), (0.55, 0.45), (0.3, 0.47), (0.9, 0.65),
          (0.5, 1), (0.0, 0.85)], [[0, 1, 2, 3, 4], [4, 5, 6, 7]]),
        ([(0.05, 0.15), (0.45, 0), (0.85, 0.15), (0.8, 0.35), (0.4, 0.47), (0.85, 0.6),
          (0.95, 0.8), (0.55, 1), (0.05, 0.88)], [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]]),
        ([(0.05, 0), (0.9, 0), (0.4, 0.4), (0.85, 0.55), (0.95, 0.78), (0.55, 1), (0.05, 0.88)],
         [[0, 1], [1, 2], [2, 3, 4, 5, 6]]),
    ],
    4: [
        ([(0.1, 0), (0.05, 0.55), (0.3, 0.62), (0.95, 0.55), (0.8, 0.0), (0.8, 1)],
         [[0, 1, 2, 3], [4, 5]]),
        ([(0.65, 0), (0.0, 0.7), (1.0, 0.7), (0.65, 1)], [[0, 1], [1, 2], [0, 3]]),
        ([(0.2, 0), (0.05, 0.6), (0.95, 0.6), (0.7, 0.05), (0.7, 1)], [[0, 1], [1, 2], [3, 4]]),
        ([(0.4, 0), (0.0, 0.6), (1, 0.55), (0.75, 0.15), (0.72, 1)], [[0, 1], [1, 2], [3, 4]]),
    ],
    5: [
        ([(0.9, 0.02), (0.3, 0.0), (0.2, 0.45), (0.15, 0.5), (0.6, 0.42), (0.9, 0.7),
          (0.5, 1), (0.0, 0.85)], [[0, 1], [1, 2], [3, 4, 5, 6, 7]]),
        ([(0.9, 0), (0.2, 0), (0.12, 0.45), (0.55, 0.35), (0.92, 0.6), (0.75, 0.92), (0.35, 1),
          (0.02, 0.85)], [[1, 0], [1, 2], [2, 3, 4, 5, 6, 7]]),
        ([(0.85, 0), (0.25, 0.02), (0.18, 0.4), (0.6, 0.38), (0.95, 0.65), (0.6, 1), (0.05, 0.9)],
         [[0, 1], [1, 2], [2, 3, 4, 5, 6]]),
    ],
    6: [
        ([(0.85, 0), (0.4, 0.3), (0.2, 0.7), (0.4, 1), (0.7, 0.9), (0.65, 0.65), (0.3, 0.7)],
         [[0, 1, 2, 3, 4, 5, 6]]),
        ([(0.8, 0), (0.35, 0.2), (0.08, 0.6), (0.25, 0.95), (0.65, 0.98), (0.9, 0.72),
          (0.6, 0.5), (0.25, 0.55), (0.1, 0.7)], [[0, 1, 2, 3, 4, 5, 6, 7, 8]]),
        ([(0.7, 0), (0.15, 0.55), (0.2, 0.9), (0.55, 1), (0.9, 0.8), (0.7, 0.5), (0.3, 0.55),
          (0.15, 0.75)], [[0, 1, 2, 3, 4, 5, 6, 7]]),
    ],
    7: [
        ([(0.1, 0.0), (0.9, 0.05), (0.5, 0.6), (0.3, 1)], [[0, 1], [1, 2, 3]]),
        ([(0.0, 0.05), (1.0, 0.0), (0.55, 1.0), (0.4, 0.5), (0.95, 0.5)],
         [[0, 1], [1, 2], [3, 4]]),
        ([(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)], [[0, 1], [1, 2]]),
        ([(0.0, 0.0), (1.0, 0.0), (0.35, 1.0), (0.35, 0.52), (0.95, 0.48)],
         [[0, 1], [1, 2], [3, 4]]),
        ([(0.0, 0.2), (0.05, 0.0), (1.0, 0.0), (0.4, 1)], [[0, 1], [1, 2], [2, 3]]),
        ([(0, 0), (1, 0), (0.6, 0.5), (0.45, 1)], [[0, 1], [1, 2, 3]]),
    ],
    8: [
        ([(0.8, 0.1), (0.5, 0), (0.2, 0.15), (0.8, 0.75), (0.5, 1), (0.2, 0.75), (0.8, 0.2)],
         [[0, 1, 2, 3, 4, 5, 6]]),
        ([(0.8, 0.08), (0.5, 0), (0.2, 0.2), (0.5, 0.48), (0.85, 0.75), (0.5, 1), (0.15, 0.75),
          (0.8, 0.2)], [[0, 1, 2, 3, 4, 5, 6, 3, 7, 0]]),
        ([(0.5, 0), (0.2, 0.22), (0.5, 0.45), (0.8, 0.22), (0.08, 0.72), (0.5, 1), (0.92, 0.72)],
         [[0, 1, 2, 3, 0], [2, 4, 5, 6, 2]]),
    ],
    9: [
        ([(0.95, 0.1), (0.5, 0), (0.1, 0.15), (0.2, 0.35), (0.6, 0.35), (0.95, 0.1), (0.9, 1)],
         [[0, 1, 2, 3, 4, 5], [5, 6]]),
        ([(0.85, 0.25), (0.5, 0), (0.05, 0.25), (0.3, 0.5), (0.85, 0.3), (0.7, 1)],
         [[0, 1, 2, 3, 4], [4, 5]]),
        ([(0.9, 0.2), (0.5, 0), (0.1, 0.2), (0.25, 0.45), (0.65, 0.45), (0.85, 1)],
         [[0, 1, 2, 3, 4, 0], [0, 5]]),
        ([(0.9, 0.2), (0.5, 0), (0.1, 0.2), (0.25, 0.45), (0.65, 0.45), (0.85, 0.7), (0.4, 1.0)],
         [[0, 1, 2, 3, 4, 0], [0, 5, 6]]),
        ([(0.9, 0.2), (0.5, 0), (0.1, 0.2), (0.25, 0.45), (0.65, 0.45), (0.55, 1)],
         [[0, 1, 2, 3, 4, 0], [0, 5]]),
    ],
}  # fmt: skip

#: Default per-sample variation of the handwriting (see :func:`render_strokes`).
HW_AUGMENT = {
    "jitter": 0.06,  # control-point noise, std in unit-box units
    "slant": (-0.15, 0.35),  # uniform; x += slant * (0.5 - y), positive leans right
    "width": (0.55, 0.85),  # uniform box width / height: digits are taller than wide
    "dilate": (1, 3),  # max-pool kernel choices (odd) before the warp: thin or thick pen
}

SAMPLES_PER_SEGMENT = 24  # curve samples between two control points; dense enough for no gaps
INK_THRESHOLD = 0.15  # splatted weight that counts as ink


def _catmull_rom_matrix(n_points: int, strokes: list[list[int]]) -> torch.Tensor:
    """(P, n_points): the sampled curves of ``strokes`` as a linear map of the control points.

    A closed stroke (first index == last) wraps its neighbours around so the loop has no kink;
    an open one repeats its end points. Each stroke ends on its last control point exactly.
    """
    t = torch.linspace(0, 1, SAMPLES_PER_SEGMENT + 1)[:-1]
    basis = torch.stack([-t**3 + 2 * t**2 - t, 3 * t**3 - 5 * t**2 + 2,
                         -3 * t**3 + 4 * t**2 + t, t**3 - t**2], 1) * 0.5  # fmt: skip
    rows = []
    for s in strokes:
        closed, k = s[0] == s[-1] and len(s) > 2, len(s)
        for i in range(k - 1):
            if closed:
                prev, nxt = s[i - 1] if i > 0 else s[-2], s[i + 2] if i + 2 < k else s[1]
            else:
                prev, nxt = s[max(i - 1, 0)], s[min(i + 2, k - 1)]
            m = torch.zeros(len(t), n_points)
            for j, p in enumerate((prev, s[i], s[i + 1], nxt)):
                m[:, p] += basis[:, j]
            rows.append(m)
        end = torch.zeros(1, n_points)
        end[0, s[-1]] = 1
        rows.append(end)
    return torch.cat(rows)


@functools.lru_cache(maxsize=1)
def _variants() -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """Every skeleton as (digit, control points (K, 2), curve matrix (P, K))."""
    return [
        (digit, torch.tensor(pts, dtype=torch.float32), _catmull_rom_matrix(len(pts), strokes))
        for digit, skeletons in SKELETONS.items() for pts, strokes in skeletons
    ]  # fmt: skip


def _splat(pts: torch.Tensor, S: int) -> torch.Tensor:
    """Bilinear splat of (B, P, 2) pixel coordinates (x, y) onto canvases (B, 1, S, S)."""
    B = pts.shape[0]
    x, y = pts[..., 0].clamp(0, S - 1.001), pts[..., 1].clamp(0, S - 1.001)
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    canvas = torch.zeros(B, S * S)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        canvas.scatter_add_(1, (y0 + dy) * S + (x0 + dx), w)
    return canvas.view(B, 1, S, S)


def _pick_variants(y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Index into :func:`_variants` for each label in ``y`` (n,), uniform within the digit."""
    variants = _variants()
    u = torch.rand(len(y), generator=gen)
    var = torch.empty(len(y), dtype=torch.long)
    for d in range(10):
        ids = torch.tensor([i for i, v in enumerate(variants) if v[0] == d])
        m = y == d
        var[m] = ids[(u[m] * len(ids)).long().clamp(max=len(ids) - 1)]
    return var


def _draw(var: torch.Tensor, h: dict, gen: torch.Generator) -> torch.Tensor:
    """Jittered, slanted, narrowed pen curves of skeletons ``var`` (n,) -> binary (n, 1, S, S)."""
    S, G = glyphs.CANVAS, glyphs.GLYPH_SIZE
    canvas = torch.zeros(len(var), 1, S, S)
    for vi, (_, p, mat) in enumerate(_variants()):
        idx = (var == vi).nonzero().squeeze(1)
        B = len(idx)
        if B == 0:
            continue
        ctrl = p.expand(B, -1, -1) + torch.randn(B, *p.shape, generator=gen) * h["jitter"]
        lo, hi = h["slant"]
        slant = lo + (hi - lo) * torch.rand(B, 1, generator=gen)
        lo, hi = h["width"]
        width = lo + (hi - lo) * torch.rand(B, 1, generator=gen)
        curve = mat @ ctrl  # (B, P, 2) in the unit box, y down
        cx = (curve[..., 0] - 0.5) * width + slant * (0.5 - curve[..., 1])
        cy = curve[..., 1] - 0.5
        canvas[idx] = _splat(torch.stack([S / 2 + cx * G, S / 2 + cy * G], -1), S)
    return (canvas > INK_THRESHOLD).float()


def _pen(ink: torch.Tensor, kernels: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Thicken each (n, 1, S, S) canvas by a max-pool with a kernel drawn from ``kernels``."""
    k = torch.tensor(kernels)[torch.randint(0, len(kernels), (len(ink),), generator=gen)]
    for kk in kernels:
        m = k == kk
        if kk > 1 and m.any():
            ink[m] = F.max_pool2d(ink[m], kk, 1, kk // 2)
    return ink


def _check_args(n, seed, augment, hw) -> None:
    check_int("n", n, 0)
    check_int("seed", seed, 0)
    for name, given, allowed in (("augment", augment, glyphs.AUGMENT), ("hw", hw, HW_AUGMENT)):
        unknown = set(given or {}) - set(allowed)
        if unknown:
            raise ValueError(
                f"{name} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
    kernels = (hw or {}).get("dilate", HW_AUGMENT["dilate"])
    require(kernels and all(is_int(k) and k >= 1 and k % 2 for k in kernels), "hw['dilate']",
            kernels, "odd ints >= 1")  # fmt: skip


def render_strokes(n: int, seed: int = 0, augment: dict | None = None, hw: dict | None = None,
                   batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Draw ``n`` handwritten digits: images (n, 1, 8, 8) float32 in [0, 1], labels (n,) int64.

    Labels are balanced over 0-9 (``n // 10`` each, the remainder spread over the first digits)
    and shuffled; the skeleton is uniform among its digit's. The same ``seed`` gives the same
    tensors on one machine. ``augment`` overrides entries of :data:`ftnotes.glyphs.AUGMENT` (the
    warp, stroke and shift after drawing), ``hw`` those of :data:`HW_AUGMENT` (the drawing).
    """
    _check_args(n, seed, augment, hw)
    aug, h = {**glyphs.AUGMENT, **(augment or {})}, {**HW_AUGMENT, **(hw or {})}
    gen = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) % 10)[torch.randperm(n, generator=gen)]
    ink = _pen(_draw(_pick_variants(y, gen), h, gen), tuple(h["dilate"]), gen)
    chunks = []
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        out = glyphs._stroke(glyphs._warp(ink[sl], aug, gen), aug, gen)
        chunks.append(glyphs.to_uci(out, aug["shift"], gen))
    x = torch.cat(chunks) if chunks else torch.zeros(0, 1, 8, 8)
    return x.contiguous(), y.long()
