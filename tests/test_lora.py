"""LoRA's own properties: its formula, scaling (rsLoRA against peft), counts, targets, dropout,
conv layers. What every method shares (identity, on/off, merge, files, stacking, refusals,
tasks) is checked once for all in test_peft_contract.py."""

import copy
import warnings

import pytest
import torch
import torchvision
from peft_helpers import X, tiny_vit, train_steps
from torch import nn

from ftnotes.peft import (
    LoraConfig,
    LoRAConv2d,
    LoRALinear,
    add_lora,
    lora_layers,
    lora_state_dict,
    merge_lora,
    remove_lora,
    set_lora_enabled,
    unmerge_lora,
)
from ftnotes.utils import count_params


def test_config_validation_names_the_field():
    for kwargs, field in [
        ({"r": 0}, "r"),
        ({"r": 2.5}, "r"),
        ({"lora_alpha": 0}, "lora_alpha"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"target_modules": ()}, "target_modules"),
    ]:
        with pytest.raises(ValueError, match=f"LoraConfig.{field}"):
            LoraConfig(**kwargs)


def test_layer_init_identity_and_reference_formula():
    torch.manual_seed(0)
    base = nn.Linear(7, 5)
    layer = LoRALinear(copy.deepcopy(base), r=3, lora_alpha=6)
    x = torch.randn(4, 7)
    assert layer.lora_A.shape == (3, 7) and layer.lora_B.shape == (5, 3)
    assert torch.equal(layer.lora_B, torch.zeros(5, 3)) and layer.lora_A.abs().sum() > 0
    assert torch.equal(layer(x), base(x))  # B = 0: the pretrained function exactly
    nn.init.normal_(layer.lora_B)
    expected = x @ (base.weight + layer.lora_B @ layer.lora_A * 2.0).T + base.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    assert layer.scaling == 2.0
    torch.testing.assert_close(layer.get_delta_weight(), layer.lora_B @ layer.lora_A * 2.0)


def test_trainable_count_matches_formula():
    r, D = 4, 16
    model = add_lora(tiny_vit(), LoraConfig(r=r, target_modules=("q_proj", "v_proj")))
    n_layers = 2 * 2  # q_proj and v_proj in each of 2 blocks
    head = D * 5 + 5
    assert len(lora_layers(model)) == n_layers
    assert count_params(model, trainable_only=True) == n_layers * r * (D + D) + head


def test_the_lora_names_are_the_shared_operations():
    """merge_lora, unmerge_lora, set_lora_enabled and remove_lora (loralib's and peft's names)
    are the shared operations on LoRA layers, checked for every method in
    test_peft_contract.py."""
    base = tiny_vit()
    model = add_lora(copy.deepcopy(base), LoraConfig(r=2))
    train_steps(model, lr=0.1)
    out = model(X).detach()
    set_lora_enabled(model, False)
    assert torch.equal(model(X), model.head(base.forward_features(X)))
    set_lora_enabled(model, True)
    merge_lora(model)
    assert all(layer.merged for _, layer in lora_layers(model))
    torch.testing.assert_close(model(X), out, atol=1e-5, rtol=0)
    unmerge_lora(model)
    assert not any(layer.merged for _, layer in lora_layers(model))
    merged = remove_lora(copy.deepcopy(model), merge=True)
    assert not lora_layers(merged) and type(merged.blocks[0].attn.q_proj) is nn.Linear
    torch.testing.assert_close(merged(X), out, atol=1e-5, rtol=0)
    assert repr(remove_lora(model)) == repr(base)


def test_targets_by_suffix_or_regex_and_unknown_target_lists_names():
    model = add_lora(tiny_vit(), LoraConfig(target_modules=r"blocks\.1\.mlp\.fc\d"))
    assert [n for n, _ in lora_layers(model)] == ["blocks.1.mlp.fc1", "blocks.1.mlp.fc2"]
    with pytest.raises(ValueError, match="matches no module; modules include: patch_embed"):
        add_lora(tiny_vit(), LoraConfig(target_modules=("qkv",)))
    with pytest.raises(ValueError, match="LayerNorm"):
        add_lora(tiny_vit(), LoraConfig(target_modules=("norm1",)))


def test_lora_state_dict_holds_only_lora_and_saved_modules():
    model = add_lora(tiny_vit())
    keys = set(lora_state_dict(model))
    assert keys and all("lora_A" in k or "lora_B" in k for k in keys)
    keys = set(lora_state_dict(model, modules_to_save=("head",)))
    assert {"head.weight", "head.bias"} < keys


def test_dropout_only_on_lora_path():
    torch.manual_seed(0)
    base = nn.Linear(8, 8)
    layer = LoRALinear(copy.deepcopy(base), r=2, lora_dropout=0.5).train()
    x = torch.randn(3, 8)
    assert torch.equal(layer(x), base(x))  # B = 0: dropout cannot touch the frozen path


def test_resnet_conv_lora_merge_and_counts():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():  # inference only: keeps the resnet forwards cheap
        base_out = model(x)
        add_lora(
            model, LoraConfig(r=2, target_modules=("layer4.1.conv2",), modules_to_save=("fc",))
        )
        layer = model.layer4[1].conv2
        assert isinstance(layer, LoRAConv2d)
        assert count_params(model, True) == 2 * (512 * 9 + 512) + (512 * 10 + 10)
        assert torch.equal(model(x), base_out)
        nn.init.normal_(layer.lora_B, std=0.05)
        out = model(x)
        assert not torch.allclose(out, base_out, atol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            merge_lora(model)
        torch.testing.assert_close(model(x), out, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="groups=1"):
        LoRAConv2d(nn.Conv2d(4, 4, 3, groups=2))


def test_lora_alpha_must_be_finite():
    for alpha in (float("inf"), float("nan"), -1.0, True):
        with pytest.raises(ValueError, match="LoraConfig.lora_alpha must be a finite number"):
            LoraConfig(lora_alpha=alpha)


def snapshot(model):
    """What a failed call must leave alone: structure, values, trainable flags, attached config."""
    return (repr(model), {k: v.clone() for k, v in model.state_dict().items()},
            {n: p.requires_grad for n, p in model.named_parameters()},
            getattr(model, "peft_config", None))  # fmt: skip


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after[0] == before[0] and after[2] == before[2] and after[3] is before[3]
    assert after[1].keys() == before[1].keys()
    assert all(torch.equal(after[1][k], before[1][k]) for k in before[1])


@pytest.mark.parametrize("with_lora", [False, True], ids=["bare", "lora-attached"])
def test_a_target_of_the_wrong_type_leaves_the_model_unchanged(with_lora):
    model = tiny_vit()
    if with_lora:
        add_lora(model, LoraConfig(r=2))
    before = snapshot(model)
    # q_proj is fine, norm1 is a LayerNorm: validated first, so q_proj is not wrapped either
    with pytest.raises(ValueError, match=r"'blocks.0.norm1', a LayerNorm.*nothing was changed"):
        add_lora(model, LoraConfig(target_modules=("q_proj", "norm1")))
    assert_unchanged(model, before)


@pytest.mark.parametrize("r", [1, 4, 16])
def test_rslora_scaling_equals_peft(r):
    """use_rslora: lora_alpha / sqrt(r) (Kalajdzievski 2023), the same number and the same output
    as peft's LoraConfig(use_rslora=True) with the same A and B."""
    import peft as hf_peft

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 10))
    ours = add_lora(copy.deepcopy(net), LoraConfig(r=r, lora_alpha=8, use_rslora=True,
                                                   target_modules=("0",), modules_to_save=()))
    layer = ours[0]
    assert layer.scaling == pytest.approx(8 / r**0.5) and "use_rslora=True" in repr(layer)
    assert LoRALinear(nn.Linear(12, 10), r=r, lora_alpha=8).scaling == pytest.approx(8 / r)
    theirs = hf_peft.get_peft_model(copy.deepcopy(net), hf_peft.LoraConfig(
        r=r, lora_alpha=8, use_rslora=True, target_modules=["0"]))  # fmt: skip
    twin = theirs.base_model.model[0]
    assert twin.scaling["default"] == pytest.approx(layer.scaling)
    with torch.no_grad():
        layer.lora_B.normal_()
        twin.lora_A["default"].weight.copy_(layer.lora_A)
        twin.lora_B["default"].weight.copy_(layer.lora_B)
    x = torch.randn(5, 12)
    torch.testing.assert_close(ours(x), theirs(x))


def test_rslora_is_validated_and_kept_in_the_adapter_file(tmp_path):
    with pytest.raises(ValueError, match="LoraConfig.use_rslora must be True or False, got 'yes'"):
        LoraConfig(use_rslora="yes")
    from ftnotes.peft import load_adapter, save_adapter

    model = add_lora(tiny_vit(), LoraConfig(r=4, use_rslora=True))
    train_steps(model)
    path = save_adapter(model, tmp_path / "a.safetensors")
    again = load_adapter(tiny_vit(), path)
    assert again.peft_config.use_rslora and lora_layers(again)[0][1].scaling == 4.0
    torch.testing.assert_close(again(X), model(X))
