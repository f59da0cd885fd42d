"""The Hugging Face copy of the backbone: same logits, round trip, integrity errors, peft guard."""

import os
import shutil

import pytest
import torch

from ftnotes import hf  # sets the offline variables before transformers is imported
from ftnotes.checkpoints import WeightsError, load_manifest, load_pretrained, weights_path
from ftnotes.data import GLYPH_CLASSES, load_task
from ftnotes.exercises.fixtures import tiny_vit
from ftnotes.glyphs import render_glyphs


@pytest.fixture(scope="module")
def images():
    """512 real images: 256 rendered glyphs and 256 handwritten digits (UCI test split)."""
    glyphs, _ = render_glyphs(256, seed=3)
    digits = load_task("digits").test.tensors[0][:256]
    return torch.cat([glyphs, digits])


def test_offline_variables_are_set():
    import huggingface_hub

    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE


def test_auto_model_from_the_shipped_folder_equals_load_pretrained(images):
    from transformers import AutoModelForImageClassification

    folder = hf.verify_hf()
    auto = AutoModelForImageClassification.from_pretrained(folder).eval()
    ours = load_pretrained()
    with torch.no_grad():
        diff = (auto(pixel_values=images).logits - ours(images)).abs().max().item()
    assert len(images) == 512 and diff <= 1e-5, diff
    assert [auto.config.id2label[i] for i in range(len(GLYPH_CLASSES))] == list(GLYPH_CLASSES)
    assert auto.config.label2id["A"] == GLYPH_CLASSES.index("A")


def test_round_trip_is_exact(images):
    model = tiny_vit(num_classes=3)
    back, classes = hf.from_hf(hf.to_hf(model, ["a", "b", "c"]))
    assert classes == ["a", "b", "c"] and back.cfg == model.cfg
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    with torch.no_grad():
        assert torch.equal(back(images[:8]), model(images[:8]))


def test_names_map_both_ways():
    assert hf.hf_key("blocks.3.attn.v_proj.weight") == "vit.layers.3.attention.v_proj.weight"
    assert hf.tinyvit_key("vit.layers.0.layernorm_after.bias") == "blocks.0.norm2.bias"
    with pytest.raises(ValueError, match="no mapping"):
        hf.hf_key("nope.weight")


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="classes must be 3 distinct"):
        hf.to_hf(tiny_vit(num_classes=3), ["a", "a", "b"])
    with pytest.raises(ValueError, match="model must be a TinyViT"):
        hf.to_hf(torch.nn.Linear(2, 2), ["a", "b"])
    with pytest.raises(ValueError, match="path must be None"):
        hf.hf_path(3)


def _copy_data(tmp_path):
    src = weights_path()
    pt = tmp_path / src.name
    shutil.copy(src, pt)
    shutil.copy(src.with_suffix(".json"), pt.with_suffix(".json"))
    shutil.copytree(src.parent / hf.HF_DIR_NAME, tmp_path / hf.HF_DIR_NAME)
    return pt, tmp_path / hf.HF_DIR_NAME


def test_missing_folder_names_the_export_command(tmp_path):
    pt, folder = _copy_data(tmp_path)
    shutil.rmtree(folder)
    with pytest.raises(WeightsError, match="missing.*--export-hf-only"):
        hf.load_pretrained_hf(folder, weights=pt)


@pytest.mark.parametrize("name", hf.HF_FILES)
def test_corrupt_or_missing_file_is_refused(tmp_path, name):
    pt, folder = _copy_data(tmp_path)
    data = bytearray((folder / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / name).write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt.*--export-hf-only"):
        hf.load_pretrained_hf(folder, weights=pt)
    (folder / name).unlink()
    with pytest.raises(WeightsError, match=f"{name}: missing.*--export-hf-only"):
        hf.load_pretrained_hf(folder, weights=pt)


def test_export_is_byte_stable_and_keeps_the_pt_manifest(tmp_path):
    pt, folder = _copy_data(tmp_path)
    before = load_manifest(pt)
    hf.export_hf(pt)
    after = load_manifest(pt)
    assert after == before  # same tensors -> same files, same sha256s, nothing else touched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [pt.name, pt.with_suffix(".json").name, hf.HF_DIR_NAME]
    )  # no temp or backup folder left behind
    assert hf.load_pretrained_hf(folder, weights=pt).config.num_labels == len(GLYPH_CLASSES)


def _lora(model):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                     modules_to_save=["classifier"], init_lora_weights=False)  # fmt: skip
    return get_peft_model(model, cfg)


def test_peft_adapter_round_trip_and_other_base_refused(tmp_path, images):
    base = hf.to_hf(tiny_vit(num_classes=3), ["a", "b", "c"])
    fp = hf.base_fingerprint(base)
    peft_model = _lora(hf.to_hf(tiny_vit(num_classes=3), ["a", "b", "c"]))
    assert hf.base_fingerprint(peft_model) == fp  # attaching LoRA leaves the base unchanged
    hf.save_peft_adapter(peft_model, tmp_path / "ad")
    loaded = hf.load_peft_adapter(
        hf.to_hf(tiny_vit(num_classes=3), ["a", "b", "c"]), tmp_path / "ad"
    )
    with torch.no_grad():
        x = images[:8]
        assert torch.equal(loaded(pixel_values=x).logits, peft_model(pixel_values=x).logits)
    other_weights = hf.to_hf(tiny_vit(num_classes=3, seed=1), ["a", "b", "c"])
    with pytest.raises(ValueError, match="trained on another base model"):
        hf.load_peft_adapter(other_weights, tmp_path / "ad")
    other_shape = hf.to_hf(tiny_vit(num_classes=3, depth=3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="num_hidden_layers': 3"):
        hf.load_peft_adapter(other_shape, tmp_path / "ad")


def test_peft_adapter_without_record_or_config_is_refused(tmp_path):
    peft_model = _lora(hf.to_hf(tiny_vit(num_classes=3), ["a", "b", "c"]))
    peft_model.save_pretrained(tmp_path / "plain")
    base = hf.to_hf(tiny_vit(num_classes=3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="no ftnotes_base.json.*check_base=False"):
        hf.load_peft_adapter(base, tmp_path / "plain")
    assert hf.load_peft_adapter(base, tmp_path / "plain", check_base=False) is not None
    with pytest.raises(ValueError, match="holds no peft adapter"):
        hf.load_peft_adapter(base, tmp_path)


def test_pretrain_export_hf_only_cli_reexports_from_the_pt(tmp_path, capsys):
    from ftnotes.pretrain import main

    pt, folder = _copy_data(tmp_path)
    shutil.rmtree(folder)
    assert main(["--export-hf-only", "--out", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert hf.verify_hf(folder, weights=pt) == folder  # same files as the shipped ones
