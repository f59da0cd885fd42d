"""The contract every registered PEFT method keeps, checked once over ``peft.CONFIGS``.

Modelled on peft's ``tests/testing_common.py``: one set of checks runs over every method, so a
method gets them by being registered (defining its config class) and none can be left out by a
hand-written list. The per-method files (``test_lora.py``, ``test_ia3.py``, ...) keep only what
is the method's own: its formula, its parameter count, its twin in 🤗 peft, its options.

The contract, for each method at its default config and at the variants below:

* **identity at initialisation**: a layer method starts as the backbone's function, bit for bit;
  a wrapper (prompt, prefix) adds tokens, so it starts *near* it, and switched off it *is* it;
* **only the method's tensors and the head train**, and all of them do;
* **on/off bit for bit** with trained (non-zero) tensors;
* **merge / unmerge with trained tensors** for mergeable methods (outputs kept, weights
  restored, merging twice harmless); a clear refusal, model unchanged, for the others;
* **the adapter file**: round trip onto a bare backbone and onto one that has the method, the
  file holds the method's tensors and the head only, the fingerprint ignores them and refuses
  another backbone; in float64 too;
* **no stacking**: attaching again replaces (layer methods) or is refused (wrappers);
* **a refused change leaves the model unchanged**: a bad target, a bad ``modules_to_save``,
  another method on top, another method's file;
* **TaskBank** switches tasks exactly (layer methods) or refuses clearly (wrappers).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings

import pytest
import torch
from peft_helpers import X, tiny_vit, train_steps
from torch import nn

from ftnotes import peft
from ftnotes.peft.tuners import PeftWrapper, TunerLayer, module_of

METHODS = sorted(peft.CONFIGS)

#: A second config per method where the method has shapes worth covering (placements, shallow
#: prompts, the prefix MLP, other targets, a non-integer scaling). A method missing here is
#: still checked at its defaults; a key that is not a registered method fails the suite.
VARIANTS = {
    "lora": [dict(r=2, lora_alpha=3.0, target_modules=("k_proj", "o_proj", "fc1"))],
    "dora": [dict(r=3, lora_alpha=4.0, use_rslora=True, target_modules=("fc1", "fc2"))],
    "adapter": [dict(reduction_factor=4, placement="pfeiffer"),
                dict(reduction_factor=3, placement="parallel", non_linearity="gelu")],
    "ia3": [dict(target_modules=("q_proj", "fc1"), feedforward_modules=("fc1",))],
    "bitfit": [dict(target_modules=("fc1", "fc2"))],
    "prompt": [dict(num_virtual_tokens=3, deep=False)],
    "prefix": [dict(num_virtual_tokens=3, prefix_projection=True, encoder_hidden_size=8)],
}  # fmt: skip

CASES = [pytest.param(m, {}, id=m) for m in METHODS] + [
    pytest.param(m, kw, id=f"{m}-{i}")
    for m in METHODS for i, kw in enumerate(VARIANTS.get(m, ()), start=2)
]  # fmt: skip

#: DoRA computes W·x without the bias and adds it after (the magnitude scales W·x only), so at
#: initialisation it equals the base layer to float rounding; every other method bit for bit.
INIT_ATOL = {"dora": 1e-6}


def make_config(method: str, overrides: dict):
    return peft.CONFIGS[method](**overrides)


def attach(config, model):
    """The model to train: ``model`` itself (layer methods) or a new wrapper around it."""
    return config.attach(model)


def is_wrapper(model) -> bool:
    return isinstance(model, PeftWrapper)


def head_names(config) -> tuple:
    return tuple(getattr(config, "modules_to_save", None) or ("head",))


def expected_trainable(model, config) -> set[str]:
    """The method's own tensors (by its declared ``tensor_names``) plus the head's."""
    heads = head_names(config)
    return {n for n, _ in model.named_parameters()
            if config.owns(n) or module_of(n).split(".")[0] in heads}  # fmt: skip


def trained(method, overrides, seed=0, num_classes=None, steps=3, lr=5e-2):
    """(backbone, model with the method, names of the parameters that changed) after ``steps``
    AdamW steps. ``num_classes``: the backbone gets a head of that size first (a task head
    unlike the pretrained one)."""
    base = tiny_vit(seed=seed)
    if num_classes is not None:
        base.head = nn.Linear(16, num_classes)
    config = make_config(method, overrides)
    model = attach(config, copy.deepcopy(base))
    torch.manual_seed(seed + 1)
    y = torch.arange(len(X)) % (num_classes or 5)
    changed = train_steps(model, y=y, steps=steps, lr=lr)
    return base, model, changed


def snapshot(model):
    """What a refused call must leave alone: structure, values, trainable flags, the config."""
    return (repr(model), {k: v.clone() for k, v in model.state_dict().items()},
            {n: p.requires_grad for n, p in model.named_parameters()},
            getattr(model, "peft_config", None))  # fmt: skip


def assert_unchanged(model, before, what):
    after = snapshot(model)
    assert after[0] == before[0], f"{what}: the model's structure changed"
    assert after[2] == before[2], f"{what}: trainable flags changed"
    assert after[3] is before[3], f"{what}: peft_config changed"
    assert after[1].keys() == before[1].keys(), f"{what}: the state dict's keys changed"
    changed = [k for k in before[1] if not torch.equal(after[1][k], before[1][k])]
    assert not changed, f"{what}: values changed: {changed[:4]}"


def same_structure(a, b) -> bool:
    """Same modules and tensor shapes; a wrapper's unused backbone head may differ."""
    if is_wrapper(a):
        shapes = [{k: v.shape for k, v in m.state_dict().items() if not k.startswith("base.head")}
                  for m in (a, b)]  # fmt: skip
        return type(a) is type(b) and shapes[0] == shapes[1]
    return repr(a) == repr(b)


def features(model, x=X):
    return model.forward_features(x)


# ---- the registry ---------------------------------------------------------------------------


def test_variants_name_registered_methods():
    assert set(VARIANTS) <= set(METHODS), set(VARIANTS) - set(METHODS)
    assert set(INIT_ATOL) <= set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_a_registered_method_is_complete(method):
    cls = peft.CONFIGS[method]
    assert cls.peft_type == method and cls.tensor_names and isinstance(cls.mergeable, bool)
    assert cls.__name__ in peft.__all__, f"{cls.__name__} is not exported from ftnotes.peft"
    config = cls()
    again = peft.PeftConfig.from_dict(method, config.to_dict())
    assert type(again) is cls and again == config
    with pytest.raises(ValueError, match=rf"{cls.__name__} has no field\(s\) \['nope'\]"):
        peft.PeftConfig.from_dict(method, {**config.to_dict(), "nope": 1})
    model = attach(config, tiny_vit())
    assert peft.attached_method(model) == method and model.peft_config is config
    assert any(config.owns(n) for n, _ in model.named_parameters())


# ---- identity, training, on/off ---------------------------------------------------------------


@pytest.mark.parametrize("method, overrides", CASES)
def test_starts_as_the_backbone(method, overrides):
    base = tiny_vit()
    model = attach(make_config(method, overrides), copy.deepcopy(base))
    assert peft.fingerprint(model) == peft.fingerprint(base)  # the frozen weights are untouched
    if is_wrapper(model):
        # Extra tokens change attention even when small: no identity to promise. Off, the
        # wrapper is the backbone with (a copy of) its head.
        assert not torch.equal(model(X), base(X))
        peft.set_enabled(model, False)
        assert torch.equal(model(X), base(X))
        assert model.head is not base.head and torch.equal(model.head.weight, base.head.weight)
        return
    atol = INIT_ATOL.get(method, 0.0)
    torch.testing.assert_close(model(X), base(X), atol=atol, rtol=0)
    if atol == 0.0:
        assert torch.equal(model(X), base(X))


@pytest.mark.parametrize("method, overrides", CASES)
def test_only_the_method_tensors_and_the_head_train_and_all_of_them_do(method, overrides):
    _, model, changed = trained(method, overrides)
    config = model.peft_config
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected_trainable(model, config)
    assert changed == trainable  # every tensor the method declares learns; nothing else moves
    n_method = sum(p.numel() for n, p in model.named_parameters() if config.owns(n))
    assert 0 < n_method < sum(p.numel() for p in model.parameters()) / 2


@pytest.mark.parametrize("method, overrides", CASES)
def test_off_is_the_backbone_bit_for_bit_and_on_again_is_the_trained_model(method, overrides):
    base, model, _ = trained(method, overrides)
    out = model(X)
    assert not torch.allclose(features(model), features(base), atol=1e-4)  # it learned something
    peft.set_enabled(model, False)
    assert torch.equal(features(model), features(base))
    assert torch.equal(model(X), model.head(features(base)))  # the trained head on the backbone
    peft.set_enabled(model, True)
    assert torch.equal(model(X), out)


# ---- merging ----------------------------------------------------------------------------------


MERGEABLE = [c for c in CASES if peft.CONFIGS[c.values[0]].mergeable]
UNMERGEABLE = [c for c in CASES if not peft.CONFIGS[c.values[0]].mergeable]


@pytest.mark.parametrize("method, overrides", MERGEABLE)
def test_merge_and_unmerge_with_trained_weights(method, overrides):
    # 10 steps at 0.1: the method's tensors end up to about 0.9 from their start (LoRA's B
    # from 0, IA3's vectors from 1), far from the identity a merge could hide behind
    base, model, _ = trained(method, overrides, steps=10, lr=0.1)
    out, weights = model(X).detach(), {k: v.clone() for k, v in model.state_dict().items()}
    peft.merge(model)
    layers = peft.tuner_layers(model)
    assert layers and all(layer.merged for _, layer in layers)
    torch.testing.assert_close(model(X), out, atol=1e-5, rtol=0)
    merged_into = [k for k in _base_weights(model) if not torch.equal(model.state_dict()[k], weights[k])]
    assert merged_into, "merge() changed no base weight"
    with pytest.warns(UserWarning, match="already merged"):
        layers[0][1].merge()  # merging twice must not add the method twice
    torch.testing.assert_close(model(X), out, atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError, match="unmerge"):
        peft.set_enabled(model, False)  # off while merged could not be the backbone exactly
    with pytest.raises(ValueError, match="unmerge"):
        peft.fingerprint(model)
    peft.unmerge(model)
    assert not any(layer.merged for _, layer in layers)
    for key, value in model.state_dict().items():  # measured: at most 2.2e-7 (LoRA)
        torch.testing.assert_close(value, weights[key], atol=1e-6, rtol=0, msg=key)
    torch.testing.assert_close(model(X), out, atol=1e-5, rtol=0)
    plain = peft.remove(copy.deepcopy(model), merge=True)
    assert not peft.tuner_layers(plain) and not hasattr(plain, "peft_config")
    assert plain.state_dict().keys() == base.state_dict().keys()
    torch.testing.assert_close(plain(X), out, atol=1e-5, rtol=0)


def _base_weights(model):
    """State-dict keys of the tuner layers' base weights (what a merge writes into)."""
    return [f"{n}.base_layer.{k}" for n, layer in peft.tuner_layers(model)
            for k, _ in layer.base_layer.named_parameters()]  # fmt: skip


@pytest.mark.parametrize("method, overrides", UNMERGEABLE)
def test_a_method_that_cannot_merge_says_so_and_changes_nothing(method, overrides):
    _, model, _ = trained(method, overrides)
    before = snapshot(model)
    with pytest.raises(ValueError, match=f"{method} cannot be merged"):
        peft.merge(model)
    assert_unchanged(model, before, "merge()")
    with pytest.raises(ValueError, match=f"{method} cannot be merged"):
        peft.remove(model, merge=True)
    assert_unchanged(model, before, "remove(merge=True)")


@pytest.mark.parametrize("method, overrides", CASES)
def test_remove_gives_back_the_plain_backbone(method, overrides):
    base, model, _ = trained(method, overrides)
    if is_wrapper(model):
        assert model.base is not base and repr(model.base) == repr(base)  # never rewritten
        assert torch.equal(features(model.base), features(base))
        return
    plain = peft.remove(model)
    assert repr(plain) == repr(base) and not hasattr(plain, "peft_config")
    assert torch.equal(features(plain), features(base))


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


# ---- many tasks -------------------------------------------------------------------------------


@pytest.mark.parametrize("method, overrides", CASES)
def test_task_bank_switches_tasks_exactly(method, overrides):
    config = make_config(method, overrides)
    base = tiny_vit()
    base_out = base(X).detach().clone()
    if is_wrapper(attach(config, tiny_vit())):
        before = snapshot(base)
        with pytest.raises(ValueError, match="layer method"):
            peft.TaskBank(base, config)
        assert_unchanged(base, before, "TaskBank with a wrapper method")
        return
    bank = peft.TaskBank(base, config)
    outputs = {}
    for seed, (name, n_classes) in enumerate([("digits", 10), ("far", 3), ("glyphs", None)]):
        torch.manual_seed(seed)
        bank.add_task(name, num_classes=n_classes)
        assert bank.active == name
        torch.manual_seed(seed)
        train_steps(bank.model, y=torch.randint(0, n_classes or 5, (len(X),)), lr=5e-2)
        outputs[name] = bank(X).detach().clone()
    assert bank.tasks == ["digits", "far", "glyphs"]
    assert outputs["digits"].shape == (6, 10) and outputs["far"].shape == (6, 3)
    assert not torch.allclose(outputs["glyphs"], base_out, atol=1e-4)  # the method trained
    bank.add_task("fresh")  # fresh method tensors and the original head: the backbone again
    torch.testing.assert_close(bank(X), base_out, atol=INIT_ATOL.get(method, 0.0), rtol=0)
    for name in ["far", "digits", "glyphs", "far"]:
        assert torch.equal(bank(X, task=name), outputs[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # switching is a copy: nothing to warn about
        bank.set_active("digits")
