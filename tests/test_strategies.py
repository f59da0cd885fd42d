"""Strategies: head replacement, freezing, exact layer-wise rates, gradual unfreezing, LP-FT."""

from types import SimpleNamespace

import pytest
import torch
from peft_helpers import tiny_vit

from ftnotes.strategies import (
    STRATEGIES,
    apply_strategy,
    finetune,
    freeze,
    layerwise_lr_groups,
    lr_per_layer,
    replace_head,
    trainable_summary,
    unfreeze,
)
from ftnotes.utils import count_params


def tiny_task(n=64, num_classes=3):
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, num_classes, (n,), generator=g)
    X = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    X[torch.arange(n), 0, y, :] += 0.7
    return SimpleNamespace(train=(X, y), val=(X[:32], y[:32]))


def trainable_units(model):
    return {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad}


def blocks_trainable(model):
    return [all(p.requires_grad for p in b.parameters()) for b in model.blocks]


def test_replace_head_returns_old_and_copies_rows():
    model = tiny_vit(12, depth=3)
    old = model.head
    returned = replace_head(model, 3, init_from_rows=[4, 0, 7])
    assert returned is old and model.head is not old and model.head.out_features == 3
    assert torch.equal(model.head.weight, old.weight[[4, 0, 7]])
    assert torch.equal(model.head.bias, old.bias[[4, 0, 7]])
    replace_head(model, 2)
    assert torch.equal(model.head.bias, torch.zeros(2))
    with pytest.raises(ValueError, match="init_from_rows"):
        replace_head(model, 2, init_from_rows=[0, 99])
    with pytest.raises(ValueError, match="num_classes"):
        replace_head(model, 0)


def test_freeze_unfreeze_and_summary():
    model = tiny_vit(depth=3)
    freeze(model)
    assert count_params(model, trainable_only=True) == 0
    unfreeze(model.head)
    assert count_params(model, trainable_only=True) == 16 * 5 + 5
    text = trainable_summary(model)
    assert "blocks.2" in text and "frozen" in text and f"{count_params(model):,}" in text


def test_strategy_masks():
    model = tiny_vit(depth=3)
    apply_strategy(model, "linear_probe")
    assert trainable_units(model) == {"head"}
    apply_strategy(model, "partial_ft", k=1)
    assert blocks_trainable(model) == [False, False, True]
    assert model.norm.weight.requires_grad and not model.pos_embed.requires_grad
    apply_strategy(model, "partial_ft", k=0)
    assert trainable_units(model) == {"norm", "head"}
    apply_strategy(model, "full_ft")
    assert count_params(model, True) == count_params(model)
    with pytest.raises(ValueError, match="strategy"):
        apply_strategy(model, "lora")
    with pytest.raises(ValueError, match="k must"):
        apply_strategy(model, "partial_ft", k=4)
    assert set(STRATEGIES) >= {"linear_probe", "full_ft", "partial_ft", "gradual_unfreeze", "lp_ft"}


def test_gradual_unfreeze_one_more_block_per_epoch_top_down():
    model = tiny_vit(depth=3)
    (callback,) = apply_strategy(model, "gradual_unfreeze")
    assert trainable_units(model) == {"head"}
    expected = [[False, False, True], [False, True, True], [True, True, True]]
    for epoch, want in enumerate(expected):
        callback(epoch, model, None)
        assert blocks_trainable(model) == want
        assert not model.patch_embed.weight.requires_grad
    callback(3, model, None)  # after all blocks, the embeddings: full fine-tuning
    assert count_params(model, True) == count_params(model)


def test_gradual_unfreeze_in_fit_trains_blocks_only_after_unfrozen():
    model = tiny_vit(depth=3)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    moved = {}

    def record(epoch, m, history):  # runs after GradualUnfreeze (appended later)
        moved[epoch] = [not torch.equal(start[f"blocks.{i}.mlp.fc1.weight"],
                                        m.blocks[i].mlp.fc1.weight) for i in range(3)]  # fmt: skip

    finetune(model, tiny_task(), "gradual_unfreeze", epochs=3, batch_size=16, progress=False,
             callbacks=[record])  # fmt: skip
    assert moved == {0: [False, False, False], 1: [False, False, True], 2: [False, True, True]}


def test_layerwise_rates_are_exact():
    model = tiny_vit(depth=3)
    groups = layerwise_lr_groups(model, 1e-3, layer_decay=0.5, head_lr=5e-3, weight_decay=0.05)
    rates = dict(lr_per_layer(groups))
    assert rates == pytest.approx(
        {"embed": 1e-3 * 0.5**4, "blocks.0": 1e-3 * 0.5**3, "blocks.1": 1e-3 * 0.5**2,
         "blocks.2": 1e-3 * 0.5, "head+norm": 5e-3}, rel=1e-12)  # fmt: skip
    assert list(rates) == ["embed", "blocks.0", "blocks.1", "blocks.2", "head+norm"]
    assert all(g["weight_decay"] == 0.05 for g in groups)
    in_groups = [p for g in groups for p in g["params"]]
    assert len(in_groups) == len(list(model.parameters())) == len(set(map(id, in_groups)))
    (b1,) = [g for g in groups if g["name"] == "blocks.1"]
    assert {id(p) for p in b1["params"]} == {id(p) for p in model.blocks[1].parameters()}


def test_layerwise_groups_skip_frozen_and_validate():
    model = tiny_vit(depth=3)
    apply_strategy(model, "partial_ft", k=1)
    names = [g["name"] for g in layerwise_lr_groups(model, 1e-3, 0.8)]
    assert names == ["blocks.2", "head+norm"]
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="layer_decay"):
            layerwise_lr_groups(model, 1e-3, bad)
    with pytest.raises(ValueError, match="base_lr"):
        layerwise_lr_groups(model, 0, 0.5)


def test_lp_ft_trains_head_first_then_everything():
    model = tiny_vit(3, depth=3)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    after_probe = {}

    def record(epoch, m, history):
        if epoch == 1 and history.epochs_run == 2 and not after_probe:  # end of the probe phase
            after_probe.update({n: p.detach().clone() for n, p in m.named_parameters()})

    h = finetune(model, tiny_task(), "lp_ft", lp_epochs=2, epochs=2, lr=3e-3, batch_size=16,
                 progress=False, callbacks=[record])  # fmt: skip
    changed = {n for n in start if not torch.equal(start[n], after_probe[n])}
    assert changed == {"head.weight", "head.bias"}
    assert h.phase_starts == {"linear_probe": 0, "fine_tune": 2} and h.epochs_run == 4
    assert not torch.equal(start["blocks.0.attn.q_proj.weight"], model.blocks[0].attn.q_proj.weight)
    assert count_params(model, True) == count_params(model)


def test_finetune_with_layer_decay_runs():
    model = tiny_vit(3, depth=3)
    h = finetune(model, tiny_task(), "full_ft", layer_decay=0.7, head_lr=1e-2, epochs=1,
                 batch_size=32, progress=False)  # fmt: skip
    # 2 steps, warmup 0.1 is one step (a warmup > 0 is never rounded away): step 0 runs at
    # half the head's rate, step 1 at its full rate
    assert h.lr[0] == pytest.approx(0.5e-2) and h.lr[1] == pytest.approx(1e-2)
