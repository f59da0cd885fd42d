"""Adapter files: the format, atomic saving, damaged and old files, a wrapped head, the
multi-task prompt model. Round trips, fingerprints and refusals for every registered method
are in test_peft_contract.py."""

import copy
import json
import os

import pytest
import safetensors.torch
import torch
from peft_helpers import X, tiny_vit
from torch import nn

from ftnotes.peft import (
    LoraConfig,
    MultiTaskPromptViT,
    PromptTuningConfig,
    adapter_state_dict,
    add_lora,
    load_adapter,
    lora_layers,
    save_adapter,
)


def perturb(model):
    """Random values in every trainable tensor (non-zero B / up), as if trained."""
    torch.manual_seed(7)
    for p in model.parameters():
        if p.requires_grad:
            nn.init.normal_(p, std=0.2)
    return model


def with_digits_head(model):
    model.head = nn.Linear(16, 10)  # a task head of another size than the backbone's
    return model


def test_multitask_prompt_round_trip_onto_a_fresh_backbone(tmp_path):
    """MultiTaskPromptViT is a second wrapper of prompt tuning (not a registered method): its
    file must bring back every task's prompt and head."""
    model = perturb(MultiTaskPromptViT(tiny_vit(), PromptTuningConfig(2), num_classes=[10, 4]))
    ids = torch.tensor([0, 1, 1, 0, 1, 0])
    out = model(X, task_ids=ids)
    path = save_adapter(model, tmp_path / "multitask.safetensors")
    loaded = load_adapter(tiny_vit(), path)
    assert type(loaded) is MultiTaskPromptViT and loaded.num_classes == [10, 4]
    assert torch.equal(loaded(X, task_ids=ids), out)
    assert torch.equal(load_adapter(loaded, path)(X, task_ids=ids), out)


def test_head_wrapped_by_lora_is_saved_whole(tmp_path):
    # modules_to_save trains the whole head, so its base weight goes into the file too.
    model = perturb(add_lora(tiny_vit(), LoraConfig(r=2, target_modules=("q_proj", "head"))))
    assert {"head.base_layer.weight", "head.lora_A"} <= set(adapter_state_dict(model))
    loaded = load_adapter(tiny_vit(), save_adapter(model, tmp_path / "a.safetensors"))
    assert torch.equal(loaded(X), model(X))


def test_wrong_base_and_bad_files_fail_clearly(tmp_path):
    path = save_adapter(perturb(add_lora(tiny_vit(), LoraConfig(r=2))), tmp_path / "a.pt")
    other = add_lora(tiny_vit(), LoraConfig(r=3))  # same backbone, other rank
    with pytest.raises(ValueError, match="shape mismatches"):
        load_adapter(other, path)
    with pytest.raises(ValueError, match="no PEFT method"):
        save_adapter(tiny_vit(), tmp_path / "b.pt")
    with pytest.raises(ValueError, match="not a file"):
        load_adapter(tiny_vit(), tmp_path / "missing.pt")
    torch.save({"hello": 1}, tmp_path / "junk.pt")  # a pickle, not an adapter file
    with pytest.raises(ValueError, match="not an ftnotes adapter file"):
        load_adapter(tiny_vit(), tmp_path / "junk.pt")


def test_file_is_safetensors_with_one_small_header(tmp_path):
    model = perturb(add_lora(with_digits_head(tiny_vit()), LoraConfig(r=2)))
    path = save_adapter(model, tmp_path / "a.safetensors")
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"]["format"] == "ftnotes-adapter/1"
    data = sum(p.numel() * 4 for n, p in model.named_parameters() if p.requires_grad)
    assert len(raw) == 8 + n + data  # nothing but the header and the float32 numbers
    tensors = safetensors.torch.load(raw)  # any safetensors reader opens it
    for key, value in model.state_dict().items():
        if key in tensors:
            assert torch.equal(tensors[key], value)
    with pytest.raises(ValueError, match="JSON"):
        save_adapter(model, tmp_path / "b.pt", extra={"model": model})


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "a.pt"
    model = perturb(add_lora(tiny_vit(), LoraConfig(r=2)))
    save_adapter(model, path)
    old = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_adapter(perturb(copy.deepcopy(model)), path)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temp file left behind


def test_file_with_the_old_projection_names_is_refused_clearly(tmp_path):
    # Files saved before TinyViT took transformers' names (query -> q_proj, ...): rewrite one.
    model = perturb(add_lora(tiny_vit(), LoraConfig(r=2)))
    save_adapter(model, tmp_path / "new.safetensors")
    with safetensors.safe_open(str(tmp_path / "new.safetensors"), framework="pt") as f:
        meta = f.metadata()
        tensors = {k.replace(".q_proj.", ".query.").replace(".v_proj.", ".value."): f.get_tensor(k)
                   for k in f.keys()}  # noqa: SIM118
    config = json.loads(meta["config"])
    meta["config"] = json.dumps({**config, "target_modules": ["query", "value"]})
    safetensors.torch.save_file(tensors, str(tmp_path / "old.safetensors"), meta)
    with pytest.raises(ValueError, match=r"old projection names \(query -> q_proj, value -> v_proj"):
        load_adapter(tiny_vit(), tmp_path / "old.safetensors")


def _state(model):
    return repr(model), {k: v.clone() for k, v in model.state_dict().items()}


def _same(model, before):
    now = _state(model)
    return now[0] == before[0] and all(torch.equal(now[1][k], v) for k, v in before[1].items())


def test_a_file_that_does_not_fit_leaves_a_bare_backbone_bare(tmp_path):
    path = save_adapter(perturb(add_lora(tiny_vit(), LoraConfig(r=2))), tmp_path / "a.safetensors")
    payload = safetensors.torch.load_file(str(path))
    with safetensors.safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    payload.pop(next(k for k in payload if k.endswith("lora_B")))  # a damaged file: a key gone
    safetensors.torch.save_file(payload, str(tmp_path / "b.safetensors"), meta)
    model = tiny_vit()
    before = _state(model)
    with pytest.raises(ValueError, match="missing keys.*the model was not changed"):
        load_adapter(model, tmp_path / "b.safetensors")
    assert _same(model, before) and not lora_layers(model)


@pytest.mark.parametrize("change, message", [
    ({"peft_type": "nope"}, r"peft_type must be one of \[.*'lora'.*\], got 'nope'"),
    ({"config": json.dumps({"r": 2, "rank": 2})}, r"LoraConfig has no field\(s\) \['rank'\]"),
])  # fmt: skip
def test_a_file_of_an_unknown_method_or_field_names_the_file(change, message, tmp_path):
    save_adapter(perturb(add_lora(tiny_vit(), LoraConfig(r=2))), tmp_path / "a.safetensors")
    with safetensors.safe_open(str(tmp_path / "a.safetensors"), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    safetensors.torch.save_file(tensors, str(tmp_path / "b.safetensors"), {**meta, **change})
    with pytest.raises(ValueError, match=r"adapter file .*b\.safetensors: " + message):
        load_adapter(tiny_vit(), tmp_path / "b.safetensors")
