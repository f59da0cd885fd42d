"""The optimizer's parameter groups: weight decay on the matrices only (not on biases, norms, the
class token, the position embeddings), also for LoRA, prompts and layer-wise rate groups."""

import torch
from peft_helpers import tiny_data, tiny_vit

from ftnotes.train import adamw_state_bytes, fit


def test_decay_rule_on_a_tinyvit():
    from ftnotes.train import decay_param_groups

    model = tiny_vit(3)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = decay_param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    d = {names[id(p)] for p in decay["params"]}
    nd = {names[id(p)] for p in no_decay["params"]}
    assert d | nd == set(names.values()) and not d & nd
    assert {"cls_token", "pos_embed", "norm.weight", "norm.bias", "head.bias"} <= nd
    assert {"head.weight", "patch_embed.weight", "blocks.0.attn.q_proj.weight"} <= d
    assert all(n.endswith(".bias") or "norm" in n or n in ("cls_token", "pos_embed") for n in nd)
    assert all(p.ndim >= 2 for p in decay["params"])


def test_decay_rule_on_a_lora_wrapped_tinyvit_and_prompts_keep_decay():
    from ftnotes import peft
    from ftnotes.train import decays

    model = peft.add_lora(tiny_vit(3), peft.LoraConfig(r=2, lora_alpha=4))
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    lora = [n for n in trained if "lora_" in n]
    assert lora and all(decays(n, trained[n]) for n in lora)  # A and B are matrices
    assert decays("head.weight", trained["head.weight"])
    assert not decays("head.bias", trained["head.bias"])
    frozen = dict(model.named_parameters())
    assert not any(decays(n, p) for n, p in frozen.items() if n.endswith(("cls_token", "pos_embed")))
    prompted = peft.PromptTunedViT(tiny_vit(3), peft.PromptTuningConfig(num_virtual_tokens=4))
    prefixed = peft.PrefixTunedViT(tiny_vit(3), peft.PrefixTuningConfig(num_virtual_tokens=4))
    assert decays("prompt_embeddings", prompted.prompt_embeddings)  # (L, P, D): decayed
    learned = [(n, p) for n, p in prefixed.named_parameters() if "prefix" in n]
    assert learned and all(decays(n, p) for n, p in learned if p.ndim >= 2)


def test_fit_decays_only_the_matrices():
    # a loss of zero: AdamW's update is 0, so only decoupled weight decay moves the weights
    X, y = tiny_data()
    model = tiny_vit(3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}

    def zero(model, xb, yb):
        out = model(xb)
        return 0.0 * out.sum(), out

    fit(model, (X, y), epochs=1, lr=1e-2, weight_decay=0.5, batch_size=32, progress=False,
        loss_fn=zero)  # fmt: skip
    for n, p in model.named_parameters():
        moved = not torch.equal(before[n], p.detach())
        assert moved == (p.ndim >= 2 and n not in ("cls_token", "pos_embed")), n


def test_layerwise_groups_are_split_by_fit_and_state_bytes_still_match():
    from ftnotes.strategies import layerwise_lr_groups

    X, y = tiny_data()
    model = tiny_vit(3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    groups = layerwise_lr_groups(model, 1e-2, 0.5, weight_decay=0.5)

    def zero(model, xb, yb):
        out = model(xb)
        return 0.0 * out.sum(), out

    h = fit(model, (X, y), epochs=1, batch_size=32, progress=False, param_groups=groups,
            loss_fn=zero)  # fmt: skip
    for n, p in model.named_parameters():
        moved = not torch.equal(before[n], p.detach())
        assert moved == (p.ndim >= 2 and n not in ("cls_token", "pos_embed")), n
    assert h.optimizer_state_bytes == adamw_state_bytes(model)  # split groups, same state
    assert all(g["weight_decay"] == 0.5 for g in groups)  # the caller's groups are untouched
