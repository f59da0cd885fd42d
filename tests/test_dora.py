"""DoRA: identity at init, the magnitude/direction formula, merge/unmerge, on/off, counts, peft."""

import copy

import pytest
import torch
from peft_helpers import X, tiny_vit, train_steps
from torch import nn

from ftnotes import peft
from ftnotes.peft import DoraConfig, DoRALinear, add_dora, dora_layers
from ftnotes.utils import count_params


def trained_dora(seed=0):
    base = tiny_vit(seed=seed)
    model = add_dora(copy.deepcopy(base), DoraConfig(r=2, lora_alpha=4))
    changed = train_steps(model, steps=5, lr=5e-2)
    return base, model, changed


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


def test_trained_dora_merges_and_unmerges_within_1e5_and_disables_exactly():
    base, model, changed = trained_dora()
    assert any("lora_magnitude_vector" in n for n in changed)  # the magnitude trained
    assert any(n.endswith("lora_B") for n in changed)
    out = model(X)
    peft.set_enabled(model, False)
    assert torch.equal(model.forward_features(X), base.forward_features(X))
    peft.set_enabled(model, True)
    weights = {n: layer.base_layer.weight.clone() for n, layer in dora_layers(model)}
    peft.merge(model)
    torch.testing.assert_close(model(X), out, atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError, match="merged dora"):
        peft.set_enabled(model, False)
    peft.unmerge(model)
    for name, layer in dora_layers(model):
        torch.testing.assert_close(layer.base_layer.weight, weights[name], atol=1e-5, rtol=0)
    torch.testing.assert_close(model(X), out, atol=1e-5, rtol=0)
    plain = peft.remove(copy.deepcopy(model), merge=True)
    assert not peft.tuner_layers(plain)
    torch.testing.assert_close(plain(X), out, atol=1e-5, rtol=0)


def test_trainable_count_is_lora_plus_one_magnitude_per_output():
    model = add_dora(tiny_vit(), DoraConfig(r=2, target_modules=("q_proj", "v_proj")))
    dim, depth = 16, 2
    lora = depth * 2 * 2 * (dim + dim)  # r (in + out) per layer, q and v in every block
    magnitude = depth * 2 * dim
    head = count_params(model.head)
    assert count_params(model, trainable_only=True) == lora + magnitude + head
    assert peft.attached_method(model) == "dora"


def test_dora_is_its_own_method_in_files_and_refuses_lora_on_top(tmp_path):
    base, model, _ = trained_dora()
    with pytest.raises(ValueError, match="already has dora attached"):
        peft.add_lora(model)
    path = peft.save_adapter(model, tmp_path / "dora.safetensors")
    payload = peft.read_adapter(path)
    assert payload["peft_type"] == "dora"
    assert any(k.endswith("lora_magnitude_vector") for k in payload["state_dict"])
    assert peft.fingerprint(base) == peft.fingerprint(model)
    loaded = peft.load_adapter(copy.deepcopy(base), path)
    assert isinstance(loaded.blocks[0].attn.q_proj, DoRALinear)
    torch.testing.assert_close(loaded(X), model(X), atol=0, rtol=0)
    with pytest.raises(ValueError, match="DoRA|dora supports nn.Linear"):
        add_dora(tiny_vit(), DoraConfig(target_modules=("patch_embed",)))


def test_taskbank_swaps_dora_tasks_exactly():
    torch.manual_seed(0)
    bank = peft.TaskBank(tiny_vit(), DoraConfig(r=2))
    bank.add_task("a")
    train_steps(bank.model, steps=3)
    out_a = bank(X).detach()
    bank.add_task("b")
    train_steps(bank.model, steps=3)
    assert not torch.allclose(bank(X), out_a)
    assert torch.equal(bank(X, task="a"), out_a)


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
