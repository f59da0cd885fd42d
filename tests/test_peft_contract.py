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
import warnings

import pytest
import torch
from peft_contract import (
    CASES,
    INIT_ATOL,
    METHODS,
    VARIANTS,
    assert_unchanged,
    attach,
    expected_trainable,
    features,
    is_wrapper,
    make_config,
    snapshot,
    trained,
)
from peft_helpers import X, tiny_vit, train_steps

from ftnotes import peft

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
