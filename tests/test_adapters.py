"""Bottleneck adapters' own properties: the residual formula, placements and their counts,
any torch model, reduction-factor checks. The shared contract (identity, on/off, no merge,
files, stacking, refusals, tasks) is test_peft_contract.py, placements included."""


import copy

import pytest
import torch
import torchvision
from peft_helpers import X, tiny_vit
from torch import nn

from ftnotes.peft import (
    AdapterConfig,
    BottleneckAdapter,
    adapter_layers,
    add_adapters,
    remove_adapters,
    set_adapters_enabled,
)
from ftnotes.utils import count_params


def randomize_up(model, seed=1):
    """Non-zero up-projections: an untrained adapter is the identity and proves nothing."""
    torch.manual_seed(seed)
    for _, layer in adapter_layers(model):
        nn.init.normal_(layer.adapter.up.weight, std=0.3)
        nn.init.normal_(layer.adapter.up.bias, std=0.3)


def adapter_size(d, rf):
    m = d // rf
    return 2 * d * m + m + d


def test_config_validation_names_the_field():
    for kwargs, field in [
        ({"reduction_factor": 0}, "reduction_factor"),
        ({"non_linearity": "sigmoid"}, "non_linearity"),
        ({"placement": "middle"}, "placement"),
    ]:
        with pytest.raises(ValueError, match=f"AdapterConfig.{field}"):
            AdapterConfig(**kwargs)
    with pytest.raises(ValueError, match="channel_dim"):
        BottleneckAdapter(8, reduction_factor=2, channel_dim=2)


def test_adapter_is_identity_at_init_and_residual_formula():
    torch.manual_seed(0)
    adapter = BottleneckAdapter(16, reduction_factor=4, non_linearity="gelu")
    h = torch.randn(3, 5, 16)
    assert torch.equal(adapter(h), h)
    nn.init.normal_(adapter.up.weight)
    expected = h + adapter.up(nn.functional.gelu(adapter.down(h)))
    torch.testing.assert_close(adapter(h), expected)
    conv = BottleneckAdapter(16, reduction_factor=4, channel_dim=1)
    nn.init.normal_(conv.up.weight)
    fmap = torch.randn(2, 16, 3, 3)
    tokens = BottleneckAdapter(16, reduction_factor=4)  # same weights, channels last
    tokens.load_state_dict(conv.state_dict())
    per_pixel = tokens(fmap.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(conv(fmap), per_pixel)


@pytest.mark.parametrize(
    "placement, n_adapters", [("houlsby", 4), ("pfeiffer", 2), ("parallel", 4)]
)
def test_placements_and_counts(placement, n_adapters):
    model = add_adapters(tiny_vit(), AdapterConfig(reduction_factor=4, placement=placement))
    assert len(adapter_layers(model)) == n_adapters
    head = 16 * 5 + 5
    assert count_params(model, trainable_only=True) == n_adapters * adapter_size(16, 4) + head


def test_remove_adapters_gives_back_the_sub_layers():
    base = tiny_vit()
    model = add_adapters(copy.deepcopy(base), AdapterConfig(reduction_factor=4))
    randomize_up(model)
    remove_adapters(model)
    assert not adapter_layers(model) and type(model.blocks[0].mlp).__name__ == "MLP"
    assert torch.equal(model(X), base(X))


def test_houlsby_sits_before_the_residual_add_and_parallel_reads_the_input():
    model = add_adapters(tiny_vit(), AdapterConfig(reduction_factor=4, placement="houlsby"))
    randomize_up(model)
    block, x = model.blocks[0], torch.randn(2, 17, 16)
    attn = block.attn
    expected = x + attn.adapter(attn.base_layer(block.norm1(x)))
    torch.testing.assert_close(x + block.attn(block.norm1(x)), expected)
    par = add_adapters(tiny_vit(), AdapterConfig(reduction_factor=4, placement="parallel"))
    randomize_up(par)
    mlp = par.blocks[1].mlp
    torch.testing.assert_close(mlp(x), mlp.base_layer(x) + mlp.adapter(x))


def test_resnet_adapter_on_layer4_by_name():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        base_out = model(x)
        cfg = AdapterConfig(
            reduction_factor=16, target_modules=("layer4",), modules_to_save=("fc",)
        )
        add_adapters(model, cfg)
        assert model.layer4.adapter.channel_dim == 1
        assert count_params(model, True) == adapter_size(512, 16) + 512 * 10 + 10
        assert torch.equal(model(x), base_out)
        randomize_up(model)
        assert not torch.allclose(model(x), base_out, atol=1e-4)
        set_adapters_enabled(model, False)
        assert torch.equal(model(x), base_out)
    with pytest.raises(ValueError, match="target_modules=None only works for TinyViT"):
        add_adapters(torchvision.models.resnet18(weights=None), AdapterConfig())
    with pytest.raises(ValueError, match="matches no module"):
        add_adapters(model, AdapterConfig(target_modules=("layer9",)))
    assert len(adapter_layers(model)) == 1  # a bad target leaves the existing adapter alone


@pytest.mark.parametrize("rf", [float("inf"), float("nan"), 1e-6, 0.5, True, 0])
def test_reduction_factor_must_be_finite_and_at_least_one(rf):
    with pytest.raises(ValueError, match="AdapterConfig.reduction_factor must be a finite number >= 1"):
        AdapterConfig(reduction_factor=rf)
    with pytest.raises(ValueError, match="reduction_factor must be a finite number >= 1"):
        BottleneckAdapter(16, reduction_factor=rf)


def test_reduction_factor_beyond_the_width_is_refused_before_any_change():
    model = tiny_vit()  # dim 16
    before = repr(model)
    with pytest.raises(ValueError, match=r"reduction_factor=96 leaves no bottleneck.*size 16.*<= 16"):
        add_adapters(model, AdapterConfig(reduction_factor=96))
    assert repr(model) == before and not adapter_layers(model)
    assert add_adapters(model, AdapterConfig(reduction_factor=16)).blocks[0].mlp.adapter.down.out_features == 1


def test_a_parallel_target_that_changes_the_width_leaves_the_model_unchanged():
    model = add_adapters(tiny_vit(), AdapterConfig(reduction_factor=4))
    before = repr(model), [p.requires_grad for p in model.parameters()]
    with pytest.raises(ValueError, match="placement='parallel' needs in size == out size"):
        add_adapters(model, AdapterConfig(placement="parallel", target_modules=("fc1", "fc2")))
    assert (repr(model), [p.requires_grad for p in model.parameters()]) == before
