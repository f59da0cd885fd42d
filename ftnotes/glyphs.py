"""Synthetic printed characters in the UCI handwritten-digits format: the pretraining source task.

Every (font, character) pair is rendered once from the TrueType fonts that ship with matplotlib
(``FT2Font``), cropped to its bounding box and cached as a template. :func:`render_glyphs` then
draws a batch in torch, deterministically from a seed:

1. a random affine warp (rotation, scale, shear, aspect) plus an elastic distortion, a smooth
   random displacement field (Simard et al. 2003, "Best practices for CNNs applied to visual
   document analysis"), all in one ``F.grid_sample``;
2. a random stroke width: a random binarisation threshold, then dilation (``max_pool2d``) or
   erosion (``-max_pool2d(-x)``), because pens are thicker than most fonts' strokes;
3. the preprocessing of the UCI "optdigits" set (Alpaydin & Kaynak 1998, the source of
   scikit-learn's ``load_digits``): a binary 32x32 bitmap with the character's bounding box
   scaled (aspect kept) so that its longer side fills the box, centred (the NIST normalisation),
   then the number of "on" pixels in each non-overlapping 4x4 block, giving 8x8 values 0-16.
   We divide by 16, so images are (N, 1, 8, 8) float32 in [0, 1], multiples of 1/16.

Shifts are applied after the normalisation (by up to ``shift`` pixels of the 32x32 bitmap),
since a shift before it would be undone by the bounding-box fit.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ft2font import FT2Font

from ftnotes.checks import check_int

#: Digits first (indices 0-9 are "0"-"9"), then the letters that survive at 8x8.
#: "O" and "I" are left out: at 8x8 they are nearly the same bitmaps as "0" and "1". Measured
#: with all 36 classes (a short pretraining run, 84% test accuracy): 1->I 29%, 0->O 20%,
#: O->0 18%, I->1 14%; a pretrained digit "0" or "1" would otherwise be taught that half its
#: examples are letters. S, B and Z stay: they are confused with 5, 8 and 2 less often (5->S 9%,
#: 8->B 8%, Z->2 5% in the first shipped model), and telling them apart is a useful skill; the
#: shipped model's confusions above 1% are listed in ``data/tinyvit_glyphs.json``.
GLYPH_CLASSES: tuple[str, ...] = tuple("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")

#: Text faces among matplotlib's bundled fonts (symbol and display fonts are skipped).
FONT_FILES: tuple[str, ...] = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf",
)  # fmt: skip

CANVAS = 32  # template side in pixels; the glyph's longer side is GLYPH_SIZE
GLYPH_SIZE = 20  # leaves a margin so rotations and dilation stay inside the canvas

#: Default augmentation strengths (see :func:`render_glyphs`).
AUGMENT = {
    "rotate": 10.0,  # degrees, uniform in [-rotate, rotate]
    "shear": 0.25,  # uniform in [-shear, shear]
    "aspect": 0.25,  # log-uniform width/height factor in [1 - aspect, 1 + aspect]
    "scale": 0.15,  # uniform in [1 - scale, 1 + scale]; changes stroke width relative to size
    "elastic": 0.05,  # displacement amplitude, fraction of the canvas half-width
    "stroke_radius": 1,  # blur radius (canvas pixels) before the stroke-width threshold
    "threshold": (0.15, 0.5),  # fraction of the blurred peak; low = thick pen, high = thin
    "shift": 1.5,  # pixels of the 32x32 bitmap, uniform in [-shift, shift]
}


def _font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _render_char(font: FT2Font, char: str) -> np.ndarray:
    """One antialiased glyph cropped to its ink, as a float array in [0, 1]."""
    font.set_size(96, 72)
    font.set_text(char)
    font.draw_glyphs_to_bitmap(antialiased=True)
    img = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    rows, cols = np.nonzero(img > 0.05)
    return img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _fit_canvas(img: np.ndarray) -> torch.Tensor:
    """Scale a cropped glyph (aspect kept) so its longer side is GLYPH_SIZE; centre on the canvas."""
    h, w = img.shape
    s = GLYPH_SIZE / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    t = torch.from_numpy(img)[None, None]
    t = F.interpolate(t, size=(nh, nw), mode="area")[0, 0]
    out = torch.zeros(CANVAS, CANVAS)
    top, left = (CANVAS - nh) // 2, (CANVAS - nw) // 2
    out[top : top + nh, left : left + nw] = t
    return out


@functools.lru_cache(maxsize=4)
def glyph_templates(classes: tuple[str, ...] = GLYPH_CLASSES) -> torch.Tensor:
    """Rendered templates, shape (F, C, CANVAS, CANVAS) float32 in [0, 1] (fonts x classes).

    Fonts missing any of ``classes`` are skipped (checked with ``get_char_index``).
    """
    _check_classes(classes)
    faces = []
    for name in FONT_FILES:
        path = _font_dir() / name
        if not path.is_file():
            continue
        font = FT2Font(str(path))
        if any(font.get_char_index(ord(c)) == 0 for c in classes):
            continue
        faces.append(torch.stack([_fit_canvas(_render_char(font, c)) for c in classes]))
    if not faces:
        raise RuntimeError(f"no font in {_font_dir()} has all of {''.join(classes)!r}")
    return torch.stack(faces)


def _check_classes(classes) -> None:
    if not isinstance(classes, tuple) or not classes or len(set(classes)) != len(classes):
        raise ValueError(
            f"classes must be a non-empty tuple of distinct characters, got {classes!r}"
        )
    bad = [c for c in classes if not (isinstance(c, str) and len(c) == 1 and c.isalnum())]
    if bad:
        raise ValueError(f"classes must be single letters or digits, got {bad!r}")


def _uniform(n: int, half: float, gen: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * 2 - 1) * half


@functools.lru_cache(maxsize=2)
def _upsample_matrix(size: int) -> torch.Tensor:
    """(16, size*size) matrix: bicubic upsampling of a 4x4 grid, as one matmul (it is linear)."""
    eye = torch.eye(16).view(16, 1, 4, 4)
    up = F.interpolate(eye, size=(size, size), mode="bicubic", align_corners=True)
    return up.view(16, size * size)


def _warp(img: torch.Tensor, aug: dict, gen: torch.Generator) -> torch.Tensor:
    """Random affine + elastic warp of (B, 1, S, S) templates, in one grid_sample."""
    B, S = img.shape[0], img.shape[-1]
    rot = _uniform(B, math.radians(aug["rotate"]), gen)
    shear = _uniform(B, aug["shear"], gen)
    aspect = torch.exp(_uniform(B, math.log1p(aug["aspect"]), gen))
    scale = 1 + _uniform(B, aug["scale"], gen)
    cos, sin = torch.cos(rot), torch.sin(rot)
    # theta maps output coordinates to input coordinates, so it is the inverse transform:
    # x_in = R^-1 Sh^-1 diag(1/(scale*aspect), aspect/scale) x_out
    sx, sy = 1 / (scale * aspect), aspect / scale
    a = torch.stack([cos, sin, -sin, cos], 1).view(B, 2, 2)
    sh = torch.stack([torch.ones(B), -shear, torch.zeros(B), torch.ones(B)], 1).view(B, 2, 2)
    d = torch.diag_embed(torch.stack([sx, sy], 1))
    theta = torch.cat([a @ sh @ d, torch.zeros(B, 2, 1)], 2)
    grid = F.affine_grid(theta, (B, 1, S, S), align_corners=False)
    # elastic: coarse 4x4 random displacements, smoothly upsampled to the canvas
    coarse = torch.randn(B * 2, 16, generator=gen) * aug["elastic"]
    field = (coarse @ _upsample_matrix(S)).view(B, 2, S, S)
    grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _stroke(img: torch.Tensor, aug: dict, gen: torch.Generator) -> torch.Tensor:
    """Random stroke width: blur, then binarise at a random fraction of each image's peak.

    (B, 1, S, S) in [0, 1] -> binary (B, 1, S, S). A box blur of radius r spreads ink up to r
    pixels, so a low threshold dilates the stroke by up to r and a high one thins it; one blur
    and one comparison per image is much cheaper than per-image morphology.
    """
    B = img.shape[0]
    r = int(aug["stroke_radius"])
    blur = F.avg_pool2d(img, 2 * r + 1, 1, r, count_include_pad=True) if r > 0 else img
    lo, hi = aug["threshold"]
    thr = lo + (hi - lo) * torch.rand(B, 1, 1, 1, generator=gen)
    peak = blur.amax((2, 3), keepdim=True).clamp_min(1e-6)
    return (blur > thr * peak).float()


def to_uci(ink: torch.Tensor, shift: float = 0.0, gen: torch.Generator | None = None):
    """Binary canvases (B, 1, S, S) -> UCI 8x8 images (B, 1, 8, 8) in [0, 1], multiples of 1/16.

    The ink's bounding box is scaled (aspect kept) so that its longer side fills a 32x32 bitmap,
    centred, optionally shifted by up to ``shift`` bitmap pixels; then 4x4 blocks are counted.
    Blank canvases give blank images.
    """
    B, S = ink.shape[0], ink.shape[-1]
    rows, cols = ink[:, 0].amax(2) > 0, ink[:, 0].amax(1) > 0  # (B, S) each
    idx = torch.arange(S, dtype=torch.float32)
    big = float(S)
    r0 = torch.where(rows, idx, big).amin(1)
    r1 = torch.where(rows, idx, -1.0).amax(1)
    c0 = torch.where(cols, idx, big).amin(1)
    c1 = torch.where(cols, idx, -1.0).amax(1)
    blank = r1 < 0
    r0, r1, c0, c1 = (
        torch.where(blank, v, t) for t, v in ((r0, 0.0), (r1, S - 1.0), (c0, 0.0), (c1, S - 1.0))
    )
    half = (torch.maximum(r1 - r0, c1 - c0) + 1) / S  # half-side in normalised units
    cy, cx = (r0 + r1 + 1) / S - 1, (c0 + c1 + 1) / S - 1  # pixel centres -> normalised
    if shift and gen is not None:
        cx = cx - _uniform(B, shift, gen) * 2 * half / 32
        cy = cy - _uniform(B, shift, gen) * 2 * half / 32
    zeros = torch.zeros(B)
    theta = torch.stack([half, zeros, cx, zeros, half, cy], 1).view(B, 2, 3)
    grid = F.affine_grid(theta, (B, 1, 32, 32), align_corners=False)
    bitmap = (F.grid_sample(ink, grid, mode="bilinear", align_corners=False) >= 0.5).float()
    return F.avg_pool2d(bitmap, 4)  # mean of a 4x4 block = count / 16


def render_glyphs(
    n: int,
    seed: int = 0,
    classes: tuple[str, ...] = GLYPH_CLASSES,
    augment: dict | None = None,
    batch_size: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` augmented characters: images (n, 1, 8, 8) float32 in [0, 1], labels (n,) int64.

    Classes are balanced (``n // len(classes)`` each, the remainder spread over the first
    classes) and shuffled; the font is uniform over the faces that have every class.
    The same ``seed`` gives the same tensors on one machine; ``augment`` overrides entries of
    :data:`AUGMENT` (``augment={"rotate": 0, ...}`` with every entry 0 renders plain glyphs).
    """
    check_int("n", n, 0)
    check_int("seed", seed, 0)
    aug = dict(AUGMENT)
    unknown = set(augment or {}) - set(aug)
    if unknown:
        raise ValueError(f"augment has unknown keys {sorted(unknown)}; allowed: {sorted(aug)}")
    aug.update(augment or {})
    templates = glyph_templates(classes)
    n_fonts, n_cls = templates.shape[:2]
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % n_cls
    y = y[torch.randperm(n, generator=gen)]
    font = torch.randint(0, n_fonts, (n,), generator=gen)
    chunks = []
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        img = templates[font[sl], y[sl]].unsqueeze(1)  # (B, 1, S, S)
        ink = _stroke(_warp(img, aug, gen), aug, gen)
        chunks.append(to_uci(ink, aug["shift"], gen))
    x = torch.cat(chunks) if chunks else torch.zeros(0, 1, 8, 8)
    return x.contiguous(), y.long()
