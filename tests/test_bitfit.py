"""BitFit's own properties: validation, the delta is a bias on the channel dimension of every
supported layer, counts, merged it changes biases only, any torch model. The shared contract
(identity, on/off, merge, files, stacking, tasks) is test_peft_contract*.py."""

import copy

import pytest
import torch
import torchvision
from peft_helpers import X, tiny_vit, train_steps
from torch import nn

from ftnotes.peft import (
    BitFitConfig,
    BitFitLayer,
    add_bitfit,
    bitfit_layers,
    remove,
)
from ftnotes.utils import count_params


def randomize(model, seed=1):
    """Non-zero deltas: an untrained BitFit is the identity and proves nothing."""
    g = torch.Generator().manual_seed(seed)
    for _, layer in bitfit_layers(model):
        with torch.no_grad():
            layer.bitfit_bias.copy_(0.3 * torch.randn(layer.bitfit_bias.shape, generator=g))


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="BitFitConfig.target_modules must name at least one"):
        BitFitConfig(target_modules=())
    with pytest.raises(ValueError, match="BitFitConfig.target_modules must be None"):
        BitFitConfig(target_modules=["fc1", 2])
    with pytest.raises(ValueError, match=r"a Linear \(no bias\).*name those modules"):
        add_bitfit(nn.Sequential(nn.Linear(2, 2, bias=False)), BitFitConfig(("0",), ()))
    with pytest.raises(ValueError, match=r"matched .blocks.0.attn., a Attention \(no bias\)"):
        add_bitfit(tiny_vit(), BitFitConfig(target_modules=("attn",)))
    with pytest.raises(ValueError, match="no module with a bias outside"):
        add_bitfit(nn.Sequential(nn.Linear(2, 2, bias=False)), BitFitConfig(modules_to_save=()))
    with pytest.raises(ValueError, match="base must be one of .* without a bias"):
        BitFitLayer(nn.Linear(2, 2, bias=False))


def test_trainable_count_is_the_bias_sizes_plus_head():
    base = tiny_vit()
    model = add_bitfit(copy.deepcopy(base))
    biased = {n: m.bias.numel() for n, m in base.named_modules()
              if isinstance(getattr(m, "bias", None), nn.Parameter) and n != "head"}  # fmt: skip
    assert {n for n, _ in bitfit_layers(model)} == set(biased)
    assert "patch_embed" in biased and "blocks.0.norm1" in biased and "norm" in biased
    head = 16 * 5 + 5
    assert count_params(model, trainable_only=True) == sum(biased.values()) + head == 320 + head


@pytest.mark.parametrize("module, x", [
    (nn.Linear(4, 3), torch.randn(2, 5, 4)),
    (nn.LayerNorm(4), torch.randn(2, 5, 4)),
    (nn.Conv2d(2, 3, 3), torch.randn(2, 2, 5, 5)),
    (nn.Conv2d(2, 3, 3), torch.randn(2, 5, 5)),  # unbatched
    (nn.BatchNorm1d(3), torch.randn(4, 3)),
    (nn.BatchNorm2d(3), torch.randn(4, 3, 2, 2)),
    (nn.GroupNorm(1, 3), torch.randn(4, 3, 2)),
])  # fmt: skip
def test_delta_is_a_bias_on_the_channel_dim(module, x):
    """Training the delta is training the bias: the layer equals the module with b + delta."""
    torch.manual_seed(0)
    module.eval()
    layer = BitFitLayer(copy.deepcopy(module)).eval()
    with torch.no_grad():
        layer.bitfit_bias.normal_()
        module.bias += layer.bitfit_bias
    torch.testing.assert_close(layer(x), module(x))


def test_remove_merged_changes_only_biases():
    """BitFit has no peft twin; its defining property instead: after training, the merged
    plain model differs from the backbone in bias tensors (and the head) only."""
    base = tiny_vit()
    model = add_bitfit(copy.deepcopy(base))
    train_steps(model, lr=5e-2)
    out = model(X).detach()
    plain = remove(model, merge=True)
    assert not bitfit_layers(plain) and not hasattr(plain, "peft_config")
    assert plain.state_dict().keys() == base.state_dict().keys()
    changed = {k for k, v in plain.state_dict().items() if not torch.equal(v, base.state_dict()[k])}
    body = {k for k in changed if not k.startswith("head.")}
    assert body and all(k.endswith(".bias") for k in body)
    assert body == {f"{n}.bias" for n, m in base.named_modules()
                    if isinstance(getattr(m, "bias", None), nn.Parameter) and n != "head"}
    torch.testing.assert_close(plain(X), out, atol=1e-5, rtol=0)


def test_explicit_targets_count():
    only_mlp = add_bitfit(tiny_vit(), BitFitConfig(target_modules=("fc1", "fc2")))
    assert count_params(only_mlp, trainable_only=True) == 2 * (32 + 16) + 16 * 5 + 5


def test_any_torch_model_conv_and_batchnorm():
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3).eval()
    model = add_bitfit(copy.deepcopy(net), BitFitConfig(modules_to_save=("fc",)))
    bn = sum(m.bias.numel() for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert count_params(model, trainable_only=True) == bn + 512 * 3 + 3  # convs have no bias
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), net(x))
    randomize(model)
    out = model(x)
    torch.testing.assert_close(remove(model, merge=True)(x), out, atol=1e-5, rtol=1e-5)
