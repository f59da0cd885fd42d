"""The PEFT contract, part two: the adapter file and the refusals (no stacking, a refused change
leaves the model unchanged). The contract and its cases: ``test_peft_contract.py``."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from peft_contract import (
    CASES,
    INIT_ATOL,
    METHODS,
    assert_unchanged,
    attach,
    head_names,
    is_wrapper,
    make_config,
    same_structure,
    snapshot,
    trained,
)
from peft_helpers import X, tiny_vit, train_steps
from torch import nn

from ftnotes import peft
from ftnotes.peft.tuners import TunerLayer, module_of

# ---- the adapter file -------------------------------------------------------------------------


@pytest.mark.parametrize("method, overrides", CASES)
def test_adapter_file_round_trip_and_fingerprint(method, overrides, tmp_path):
    base, model, _ = trained(method, overrides, num_classes=10)  # a head unlike the backbone's
    out = model(X)
    fp = peft.fingerprint(tiny_vit())
    assert peft.fingerprint(model) == peft.fingerprint(base) == fp  # training moved no base weight
    path = peft.save_adapter(model, tmp_path / "a.safetensors", extra={"val_acc": 0.5})
    payload = peft.read_adapter(path)
    assert payload["peft_type"] == method and payload["fingerprint"] == fp
    assert payload["extra"] == {"val_acc": 0.5}
    assert peft.PeftConfig.from_dict(method, payload["config"]) == model.peft_config
    assert set(payload["state_dict"]) == {k for k in model.state_dict()
                                          if model.peft_config.owns(k)
                                          or module_of(k).split(".")[0] in head_names(model.peft_config)}  # fmt: skip
    loaded = peft.load_adapter(tiny_vit(), path)  # bare backbone: attached from the file
    assert loaded.peft_config == model.peft_config and torch.equal(loaded(X), out)
    assert same_structure(loaded, model)
    assert ({n for n, p in loaded.named_parameters() if p.requires_grad}
            == {n for n, p in model.named_parameters() if p.requires_grad})  # fmt: skip
    again = peft.load_adapter(loaded, path)  # onto a model that has the method: no second set
    assert same_structure(again, model) and torch.equal(again(X), out)
    other = tiny_vit(seed=1)
    before = snapshot(other)
    with pytest.raises(ValueError, match="trained on base .* load the backbone it was trained on"):
        peft.load_adapter(other, path)
    assert_unchanged(other, before, "a file of another backbone")


@pytest.mark.parametrize("method", METHODS)
def test_adapter_file_keeps_the_backbone_dtype(method, tmp_path):
    base = tiny_vit()
    base.head = nn.Linear(16, 10)
    model = attach(make_config(method, {}), base).double()
    torch.manual_seed(0)
    for p in model.parameters():
        if p.requires_grad:
            nn.init.normal_(p, std=0.2)  # as if trained
    path = peft.save_adapter(model, tmp_path / "a.safetensors")
    loaded = peft.load_adapter(tiny_vit().double(), path)  # the head is resized 5 -> 10
    assert loaded.head.weight.dtype == torch.float64
    assert torch.equal(loaded(X.double()), model(X.double()))


# ---- no stacking, refusals --------------------------------------------------------------------


@pytest.mark.parametrize("method, overrides", CASES)
def test_attaching_again_replaces_or_refuses_but_never_stacks(method, overrides):
    first = make_config(method, {})
    second = make_config(method, overrides)
    model = attach(first, tiny_vit())
    if is_wrapper(model):
        before = snapshot(model)
        with pytest.raises(ValueError, match="TinyViT"):
            attach(second, model)
        assert_unchanged(model, before, "a wrapper around a wrapper")
        return
    with pytest.warns(UserWarning, match=f"already has {method} layers"):
        again = attach(second, model)
    fresh = attach(second, tiny_vit())
    assert again is model and model.peft_config is second
    assert repr(model) == repr(fresh)  # the second config's layers, once
    assert not any(isinstance(layer.base_layer, TunerLayer) for _, layer in peft.tuner_layers(model))
    assert ({n for n, p in model.named_parameters() if p.requires_grad}
            == {n for n, p in fresh.named_parameters() if p.requires_grad})  # fmt: skip
    assert torch.equal(model(X), tiny_vit()(X)) or method in INIT_ATOL


@pytest.mark.parametrize("method", METHODS)
def test_another_method_on_top_is_refused_and_the_model_unchanged(method):
    model = attach(make_config(method, {}), tiny_vit())
    train_steps(model)
    before = snapshot(model)
    for other in METHODS:
        if other == method:
            continue
        with pytest.raises(ValueError, match=rf"already has {method} attached|TinyViT"):
            attach(make_config(other, {}), model)
        assert_unchanged(model, before, f"{other} on top of {method}")


@pytest.fixture(scope="module")
def adapter_files(tmp_path_factory):
    """One trained adapter file per method (same backbone)."""
    folder = tmp_path_factory.mktemp("adapters")
    files = {}
    for method in METHODS:
        model = attach(make_config(method, {}), tiny_vit())
        train_steps(model)
        files[method] = peft.save_adapter(model, folder / f"{method}.safetensors")
    return files


@pytest.mark.parametrize("method", METHODS)
def test_another_method_file_is_refused_and_the_model_unchanged(method, adapter_files):
    model = attach(make_config(method, {}), tiny_vit())
    before = snapshot(model)
    for other, path in adapter_files.items():
        if other == method:
            continue
        with pytest.raises(ValueError, match=f"holds a {other} adapter.*has {method} attached"
                                             ".*the model was not changed"):  # fmt: skip
            peft.load_adapter(model, path)
        assert_unchanged(model, before, f"a {other} file onto {method}")


@pytest.mark.parametrize("with_method", [False, True], ids=["bare", "attached"])
@pytest.mark.parametrize("method", METHODS)
def test_a_refused_config_leaves_the_model_unchanged(method, with_method):
    """Everything is checked before the model changes, on a bare backbone and on one that has
    the method already (where a half-done replacement would lose the trained tensors)."""
    config = make_config(method, {})
    model = tiny_vit()
    if with_method:
        model = attach(config, model)
        train_steps(model)
    bad = []
    if hasattr(config, "target_modules"):
        bad.append((dataclasses.replace(config, target_modules=r"nope\..*"),
                    r"target_modules=.*matches no module"))  # fmt: skip
    if hasattr(config, "modules_to_save"):
        bad.append((dataclasses.replace(config, modules_to_save=("haed",)),
                    r"modules_to_save=.*'haed'.*matches no module"))  # fmt: skip
    if is_wrapper(attach(config, tiny_vit())):  # a head of 0 classes; a wrapper in a wrapper
        bad.append((config, "TinyViT" if with_method else r"num_classes \(or None\) must be"))
    assert bad, f"{method}: no refusal to check (no target_modules, modules_to_save or head)"
    before = snapshot(model)
    for config, message in bad:
        with pytest.raises(ValueError, match=message):
            config.attach(model, num_classes=0)  # layer methods ignore num_classes
        assert_unchanged(model, before, f"refused {config}")
