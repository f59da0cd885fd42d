"""The shipped backbone: loads, reaches its manifest accuracy, and fails loudly when damaged."""

import json
import shutil

import pytest
import torch
from peft_helpers import tiny_vit

from ftnotes.checkpoints import (
    REGENERATE_COMMAND,
    WeightsError,
    load_manifest,
    load_pretrained,
    weights_path,
)
from ftnotes.data import GLYPH_CLASSES, glyph_split
from ftnotes.models import ViTConfig
from ftnotes.pretrain import confusion_pairs, pretrain, save, warmup_cosine


def test_shipped_weights_load_and_reach_manifest_accuracy():
    manifest = load_manifest()
    model = load_pretrained()
    assert not model.training and model.head.out_features == len(GLYPH_CLASSES)
    assert manifest["classes"] == list(GLYPH_CLASSES)
    assert weights_path().stat().st_size <= 2_000_000
    x, y = glyph_split("test")
    with torch.no_grad():
        acc = (model(x[:1000]).argmax(1) == y[:1000]).float().mean().item()
    # 1,000 of the manifest's test images: the binomial standard error is ~0.7 points
    assert abs(acc - manifest["source_test_accuracy"]) < 0.03


def _copy(tmp_path):
    src = weights_path()
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    return dst


def test_corrupt_file_raises(tmp_path):
    path = _copy(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=REGENERATE_COMMAND):
        load_pretrained(path)


def test_missing_file_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("FTNOTES_WEIGHTS", str(tmp_path / "nothing.pt"))
    with pytest.raises(WeightsError, match=REGENERATE_COMMAND):
        load_pretrained()


def test_wrong_architecture_raises(tmp_path):
    path = _copy(tmp_path)
    manifest = json.loads(path.with_suffix(".json").read_text())
    small = tiny_vit(3, depth=1)
    save(small, tmp_path, manifest, stem=path.stem)  # sha matches, the rest as shipped
    with pytest.raises(WeightsError, match=f"does not fit the TinyViT.*{REGENERATE_COMMAND}"):
        load_pretrained(path)


def test_printed_backbone_names_its_own_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FTNOTES_PRINTED_WEIGHTS", str(tmp_path / "nothing.pt"))
    with pytest.raises(WeightsError, match="--handwriting 0 --out data/printed"):
        load_pretrained(tmp_path / "nothing.pt")


def test_pretraining_is_deterministic_for_a_seed():
    cfg = ViTConfig(dim=16, depth=1, num_heads=2, num_classes=len(GLYPH_CLASSES))
    kw = {"epochs": 1, "samples_per_epoch": 256, "batch_size": 64, "log": lambda *a: None}
    a, b = pretrain(cfg, seed=1, **kw), pretrain(cfg, seed=1, **kw)
    c = pretrain(cfg, seed=2, **kw)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_warmup_cosine_and_confusion_pairs():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0)
    y = torch.tensor([0, 0, 0, 0, 1, 1])
    p = torch.tensor([0, 0, 0, 1, 1, 1])
    assert confusion_pairs(y, p, ("a", "b"), 0.2) == [{"true": "a", "pred": "b", "rate": 0.25}]


def test_save_is_byte_stable_and_atomic(tmp_path):
    model = tiny_vit(3, depth=1)
    a = save(model, tmp_path / "a", {"note": 1}).read_bytes()
    b = save(model, tmp_path / "b", {"note": 1}).read_bytes()
    assert a == b  # same weights -> same sha256, whatever the temp-file name was
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "tinyvit_glyphs.json",
        "tinyvit_glyphs.pt",
    ]  # no temp files left behind


@pytest.mark.parametrize("content", ["[1, 2]", '"weights"', "3", "null"])
def test_manifest_that_is_json_but_not_an_object_raises(tmp_path, content):
    path = _copy(tmp_path)
    path.with_suffix(".json").write_text(content)
    with pytest.raises(WeightsError, match=f"JSON object.*{REGENERATE_COMMAND}"):
        load_pretrained(path)
