"""The stroke-drawn handwriting generator, pretrain's use of it (the shipped recipe), and the
glyphs-only backbone kept beside the shipped one."""

import inspect

import pytest
import torch

from ftnotes import pretrain as pt
from ftnotes.checkpoints import PRINTED_WEIGHTS, load_manifest, load_pretrained
from ftnotes.glyphs import render_glyphs
from ftnotes.models import ViTConfig
from ftnotes.strokes import SKELETONS, render_strokes


def test_shape_and_uci_values():
    x, y = render_strokes(120, seed=0)
    assert x.shape == (120, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1
    assert torch.allclose(x * 16, (x * 16).round(), atol=1e-5)
    assert (x.flatten(1).sum(1) > 0).all()  # every digit has ink


def test_labels_balanced_over_the_ten_digits():
    _, y = render_strokes(73, seed=1)
    counts = torch.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.sum() == 73 and counts.max() - counts.min() <= 1
    assert sorted(SKELETONS) == list(range(10))


def test_same_seed_same_digits_other_seed_different():
    x1, y1 = render_strokes(60, seed=5)
    x2, y2 = render_strokes(60, seed=5)
    x3, _ = render_strokes(60, seed=6)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)


def test_zero_digits_is_empty():
    x, y = render_strokes(0)
    assert x.shape == (0, 1, 8, 8) and y.shape == (0,)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"n": -1}, "n"), ({"n": 2.5}, "n"), ({"n": True}, "n"), ({"n": 4, "seed": -3}, "seed"),
     ({"n": 4, "augment": {"spin": 1}}, "augment"), ({"n": 4, "hw": {"tilt": 1}}, "hw"),
     ({"n": 4, "hw": {"dilate": (2,)}}, "dilate")],
)  # fmt: skip
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        render_strokes(**kwargs)


def _batches(monkeypatch, **kwargs):
    """pretrain's batch function, without training: _loop is replaced by a recorder."""
    seen = {}

    def record(model, batches_fn, *args, **kw):
        seen["batches"] = batches_fn
        return model

    monkeypatch.setattr(pt, "_loop", record)
    cfg = ViTConfig(num_classes=34)
    pt.pretrain(cfg, seed=0, epochs=1, samples_per_epoch=40, batch_size=16, log=lambda *_: None,
                **kwargs)  # fmt: skip
    return seen["batches"]


def test_pretrain_without_handwriting_draws_only_the_glyph_stream(monkeypatch):
    assert inspect.signature(pt.pretrain).parameters["handwriting"].default == 0
    monkeypatch.setattr(pt, "render_strokes", lambda *a, **k: pytest.fail("drew handwriting"))
    batches = _batches(monkeypatch)
    assert len(list(batches(-1))) == 3
    x, y = render_glyphs(40, seed=pt.STREAM_SEED)
    got = list(batches(0))
    assert torch.equal(torch.cat([b[0] for b in got]), x)
    assert torch.equal(torch.cat([b[1] for b in got]), y)


def test_pretrain_with_handwriting_mixes_in_the_stroke_digits(monkeypatch):
    batches = _batches(monkeypatch, handwriting=24)
    assert len(list(batches(-1))) == 4  # ceil((40 + 24) / 16)
    y = torch.cat([b[1] for b in batches(0)])
    _, yg = render_glyphs(40, seed=pt.STREAM_SEED)
    _, yh = render_strokes(24, seed=pt.HANDWRITING_SEED + pt.STREAM_SEED)
    assert len(y) == 64 and torch.equal(y.sort().values, torch.cat([yg, yh]).sort().values)
    with pytest.raises(ValueError, match="handwriting"):
        pt.pretrain(ViTConfig(num_classes=34), handwriting=-1)


def test_handwriting_is_in_the_help_with_the_shipped_default(capsys):
    with pytest.raises(SystemExit):
        pt.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--handwriting N" in out and f"default {pt.SHIPPED_HANDWRITING}" in out


def test_shipped_backbone_learned_the_strokes_and_the_printed_one_did_not():
    assert load_manifest()["handwriting"] == pt.SHIPPED_HANDWRITING == 48_000
    printed = load_manifest(PRINTED_WEIGHTS)
    assert "handwriting" not in printed and "--handwriting 0" in printed["command"]
    assert min(printed["source_test_accuracy"], load_manifest()["source_test_accuracy"]) >= 0.95
    assert load_pretrained(PRINTED_WEIGHTS).head.out_features == 34  # sha256 checked on load


@pytest.mark.parametrize("handwriting", [0, 24])
def test_manifest_records_handwriting_only_when_used(monkeypatch, handwriting):
    used = {}

    def fake_pretrain(cfg, *args, handwriting):
        used["handwriting"] = handwriting
        return None

    monkeypatch.setattr(pt, "pretrain", fake_pretrain)
    monkeypatch.setattr(pt, "predict", lambda model, x: torch.zeros(len(x), dtype=torch.long))
    argv = ["--no-transfer"] + (["--handwriting", str(handwriting)] if handwriting else [])
    args = pt.argparse.Namespace(seed=0, epochs=1, samples_per_epoch=40, no_transfer=True,
                                 handwriting=handwriting)  # fmt: skip
    _, manifest = pt.build(args, argv)
    assert used["handwriting"] == handwriting
    assert manifest.get("handwriting") == (handwriting or None)
