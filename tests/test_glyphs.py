"""The synthetic glyph generator: deterministic, UCI-valued, balanced, validated."""

import pytest
import torch

from ftnotes.glyphs import GLYPH_CLASSES, glyph_templates, render_glyphs, to_uci


def test_same_seed_same_images_other_seed_different():
    x1, y1 = render_glyphs(200, seed=5)
    x2, y2 = render_glyphs(200, seed=5)
    x3, y3 = render_glyphs(200, seed=6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)


def test_values_are_uci_counts_in_unit_interval():
    x, y = render_glyphs(300, seed=0)
    assert x.shape == (300, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1
    assert torch.allclose(x * 16, (x * 16).round(), atol=1e-5)
    # the NIST normalisation: every character's bounding box fills the bitmap's longer side
    rows, cols = (x[:, 0] > 0).any(2).sum(1), (x[:, 0] > 0).any(1).sum(1)
    assert (torch.maximum(rows, cols) >= 7).float().mean() > 0.95


def test_classes_balanced_and_digits_first():
    n = 3 * len(GLYPH_CLASSES) + 5
    _, y = render_glyphs(n, seed=1)
    counts = torch.bincount(y, minlength=len(GLYPH_CLASSES))
    assert counts.max() - counts.min() <= 1 and counts.sum() == n
    assert GLYPH_CLASSES[:10] == tuple("0123456789")
    assert len(set(GLYPH_CLASSES)) == len(GLYPH_CLASSES)


def test_templates_cover_several_fonts_and_every_class():
    t = glyph_templates()
    assert t.shape[0] >= 15 and t.shape[1] == len(GLYPH_CLASSES)
    assert (t.flatten(2).amax(2) > 0.5).all()  # every (font, class) template has ink


def test_plain_rendering_is_unaugmented_and_readable():
    off = {"rotate": 0, "shear": 0, "aspect": 0, "scale": 0, "elastic": 0, "shift": 0,
           "stroke_radius": 0, "threshold": (0.5, 0.5)}  # fmt: skip
    x1, _ = render_glyphs(50, seed=3, augment=off)
    x2, _ = render_glyphs(50, seed=3)
    assert not torch.equal(x1, x2)


def test_to_uci_fills_box_and_keeps_blank():
    ink = torch.zeros(2, 1, 48, 48)
    ink[0, 0, 10:30, 20:25] = 1  # a tall bar: fills the height, centred
    out = to_uci(ink)
    assert out[1].sum() == 0
    assert (out[0, 0].sum(1) > 0).all()  # every row has ink
    assert torch.allclose(out[0, 0], out[0, 0].flip(1), atol=1 / 16 + 1e-6)


@pytest.mark.parametrize(
    "kwargs", [{"n": -1}, {"n": 2.5}, {"n": 4, "seed": -3}, {"n": 4, "augment": {"spin": 1}},
               {"n": 4, "classes": ("A", "A")}, {"n": 4, "classes": ("AB",)}],
)  # fmt: skip
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        render_glyphs(**kwargs)
