"""DoRA's own properties: the magnitude/direction formula, counts, peft's twin (merged and
not). The shared contract (identity, on/off, merge, files, tasks) is test_peft_contract*.py."""

import copy

import pytest
import torch
from peft_helpers import tiny_vit
from torch import nn

from ftnotes import peft
from ftnotes.peft import DoraConfig, DoRALinear, add_dora, dora_layers
from ftnotes.utils import count_params


def test_layer_starts_as_the_base_and_follows_the_formula():
    torch.manual_seed(0)
    base = nn.Linear(7, 5)
    layer = DoRALinear(copy.deepcopy(base), r=3, lora_alpha=6)
    x = torch.randn(4, 7)
    assert torch.equal(layer.lora_magnitude_vector, base.weight.norm(dim=1))
    torch.testing.assert_close(layer(x), base(x), atol=1e-6, rtol=0)  # m = ||W||, B = 0
    with torch.no_grad():
        layer.lora_B.normal_()
        layer.lora_magnitude_vector.mul_(torch.linspace(0.5, 1.5, 5))
    w = base.weight + layer.lora_B @ layer.lora_A * 2.0
    w_dora = layer.lora_magnitude_vector[:, None] * w / w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(layer(x), x @ w_dora.T + base.bias, atol=1e-5, rtol=1e-5)


def test_trainable_count_is_lora_plus_one_magnitude_per_output():
    model = add_dora(tiny_vit(), DoraConfig(r=2, target_modules=("q_proj", "v_proj")))
    dim, depth = 16, 2
    lora = depth * 2 * 2 * (dim + dim)  # r (in + out) per layer, q and v in every block
    magnitude = depth * 2 * dim
    head = count_params(model.head)
    assert count_params(model, trainable_only=True) == lora + magnitude + head
    assert len(dora_layers(model)) == depth * 2
    assert peft.attached_method(model) == "dora"


def test_dora_refuses_a_target_that_is_not_linear():
    with pytest.raises(ValueError, match="DoRA|dora supports nn.Linear"):
        add_dora(tiny_vit(), DoraConfig(target_modules=("patch_embed",)))


@pytest.mark.parametrize("use_rslora", [False, True])
def test_dora_equals_peft_use_dora_unmerged_and_merged(use_rslora):
    import peft as hf_peft

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 6))
    ours = add_dora(copy.deepcopy(net), DoraConfig(r=4, lora_alpha=8, use_rslora=use_rslora,
                                                   target_modules=("0", "2"), modules_to_save=()))  # fmt: skip
    theirs = hf_peft.get_peft_model(copy.deepcopy(net), hf_peft.LoraConfig(
        r=4, lora_alpha=8, use_dora=True, use_rslora=use_rslora, target_modules=["0", "2"]))  # fmt: skip
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for i in (0, 2):
            layer, twin = ours[i], theirs.base_model.model[i]
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.3)
            layer.lora_magnitude_vector.mul_(1 + 0.2 * torch.randn(layer.lora_B.shape[0], generator=g))
            twin.lora_A["default"].weight.copy_(layer.lora_A)
            twin.lora_B["default"].weight.copy_(layer.lora_B)
            twin.lora_magnitude_vector["default"].weight.copy_(layer.lora_magnitude_vector)
    x = torch.randn(5, 12)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    merged = theirs.merge_and_unload()
    torch.testing.assert_close(peft.merge(ours)(x), merged(x), atol=1e-5, rtol=1e-5)
    for i in (0, 2):
        torch.testing.assert_close(ours[i].base_layer.weight, merged[i].weight, atol=1e-6, rtol=0)
