"""Adapter files: round trips for every method, fingerprint checks, atomic saving."""

import copy
import json
import os

import pytest
import safetensors.torch
import torch
from peft_helpers import X, tiny_vit
from torch import nn

from ftnotes.peft import (
    AdapterConfig,
    LoraConfig,
    MultiTaskPromptViT,
    PrefixTunedViT,
    PrefixTuningConfig,
    PromptTunedViT,
    PromptTuningConfig,
    adapter_layers,
    adapter_state_dict,
    add_adapters,
    add_lora,
    fingerprint,
    load_adapter,
    lora_layers,
    merge_lora,
    save_adapter,
)
from ftnotes.peft.io import read_adapter


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


BUILDERS = {
    "lora": lambda b: add_lora(with_digits_head(b), LoraConfig(r=2)),
    "adapter": lambda b: add_adapters(with_digits_head(b), AdapterConfig(reduction_factor=4)),
    "prompt": lambda b: PromptTunedViT(b, PromptTuningConfig(3, deep=True), num_classes=10),
    "prefix": lambda b: PrefixTunedViT(b, PrefixTuningConfig(3, prefix_projection=True), 10),
    "multitask": lambda b: MultiTaskPromptViT(b, PromptTuningConfig(2), num_classes=[10, 4]),
}


def test_fingerprint_ignores_adapters_and_head_but_not_the_backbone():
    fp = fingerprint(tiny_vit())
    assert len(fp) == 64 and fp == fingerprint(tiny_vit())
    assert fingerprint(perturb(add_lora(tiny_vit()))) == fp
    assert fingerprint(perturb(PromptTunedViT(tiny_vit(), num_classes=3))) == fp
    assert fingerprint(with_digits_head(tiny_vit())) == fp
    assert fingerprint(tiny_vit(seed=1)) != fp
    merged = merge_lora(perturb(add_lora(tiny_vit())))
    with pytest.raises(ValueError, match="unmerge"):
        fingerprint(merged)


def test_head_wrapped_by_lora_is_saved_whole(tmp_path):
    # modules_to_save trains the whole head, so its base weight goes into the file too.
    model = perturb(add_lora(tiny_vit(), LoraConfig(r=2, target_modules=("q_proj", "head"))))
    assert {"head.base_layer.weight", "head.lora_A"} <= set(adapter_state_dict(model))
    loaded = load_adapter(tiny_vit(), save_adapter(model, tmp_path / "a.safetensors"))
    assert torch.equal(loaded(X), model(X))


@pytest.mark.parametrize("method", ["lora", "adapter"])
def test_resized_head_follows_the_backbone_dtype(method, tmp_path):
    model = perturb(BUILDERS[method](tiny_vit()).double())
    path = save_adapter(model, tmp_path / f"{method}.pt")
    loaded = load_adapter(tiny_vit().double(), path)  # head resized 5 -> 10 on load
    assert loaded.head.weight.dtype == torch.float64
    assert torch.equal(loaded(X.double()), model(X.double()))


@pytest.mark.parametrize("method", list(BUILDERS))
def test_round_trip_onto_a_fresh_backbone(method, tmp_path):
    model = perturb(BUILDERS[method](tiny_vit()))
    out = model(X)
    path = save_adapter(model, tmp_path / f"{method}.pt", extra={"val_acc": 0.5})
    loaded = load_adapter(tiny_vit(), path)  # bare backbone: the method is attached from the file
    assert torch.equal(loaded(X), out)
    assert read_adapter(path)["extra"] == {"val_acc": 0.5}
    again = load_adapter(loaded, path)  # loading onto a model that has the method already
    assert torch.equal(again(X), out)
    if method == "lora":
        assert len(lora_layers(again)) == 4
    if method == "adapter":
        assert len(adapter_layers(again)) == 4


def test_file_holds_only_adapter_and_head_tensors(tmp_path):
    model = perturb(add_lora(with_digits_head(tiny_vit()), LoraConfig(r=2)))
    path = save_adapter(model, tmp_path / "lora.pt")
    keys = set(read_adapter(path)["state_dict"])
    assert keys == {k for k in model.state_dict() if "lora_" in k or k.startswith("head.")}
    wrapped = perturb(PromptTunedViT(tiny_vit(), num_classes=10))
    keys = set(read_adapter(save_adapter(wrapped, tmp_path / "p.pt"))["state_dict"])
    assert keys == {"prompt_embeddings", "head.weight", "head.bias"}


def test_wrong_base_and_bad_files_fail_clearly(tmp_path):
    path = save_adapter(perturb(add_lora(tiny_vit(), LoraConfig(r=2))), tmp_path / "a.pt")
    with pytest.raises(ValueError, match="this adapter was trained on base .* load the backbone"):
        load_adapter(tiny_vit(seed=1), path)
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


@pytest.mark.parametrize("saved, onto", [("lora", "adapter"), ("adapter", "lora")])
def test_a_file_of_another_method_is_refused_and_the_model_unchanged(saved, onto, tmp_path):
    attach = {"lora": lambda m: add_lora(m, LoraConfig(r=2)),
              "adapter": lambda m: add_adapters(m, AdapterConfig(reduction_factor=4))}  # fmt: skip
    path = save_adapter(perturb(attach[saved](tiny_vit())), tmp_path / "a.safetensors")
    model = attach[onto](tiny_vit())
    before = _state(model)
    with pytest.raises(ValueError, match=f"holds a {saved} adapter.*has {onto} attached"):
        load_adapter(model, path)
    assert _same(model, before)


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
