"""Prompt tuning's own properties: prompt shapes and counts, the reference forward, data init,
multi-task batches equal per-task runs. The shared contract (frozen base, only prompts and
head train, on/off, no merge, files, refusals) is test_peft_contract.py."""

import pytest
import torch
from peft_helpers import X, tiny_vit
from torch import nn

from ftnotes.peft import (
    MultiTaskPromptViT,
    PromptTunedViT,
    PromptTuningConfig,
    init_prompts_from_data,
)
from ftnotes.utils import count_params


def test_config_validation_names_the_field():
    for kwargs, field in [
        ({"num_virtual_tokens": 0}, "num_virtual_tokens"),
        ({"deep": "yes"}, "deep"),
        ({"init": "zeros"}, "init"),
    ]:
        with pytest.raises(ValueError, match=f"PromptTuningConfig.{field}"):
            PromptTuningConfig(**kwargs)
    with pytest.raises(ValueError, match="init_data"):
        PromptTunedViT(tiny_vit(), PromptTuningConfig(init="data"))
    with pytest.raises(ValueError, match="TinyViT"):
        PromptTunedViT(nn.Linear(3, 3))


@pytest.mark.parametrize("deep", [False, True])
def test_shapes_counts_and_prompts_matter(deep):
    base = tiny_vit()
    model = PromptTunedViT(base, PromptTuningConfig(num_virtual_tokens=3, deep=deep), num_classes=4)
    L = 2 if deep else 1
    assert model.prompt_embeddings.shape == (L, 3, 16)
    assert count_params(model, trainable_only=True) == L * 3 * 16 + 16 * 4 + 4
    assert not any(p.requires_grad for p in base.parameters())
    assert model(X).shape == (6, 4)
    # Same head on the raw features: the prompts must change the output.
    assert not torch.allclose(model(X), model.head(base.forward_features(X)), atol=1e-4)
    # Reference: the prompt list passed straight to the backbone.
    prompts = [model.prompt_embeddings[i].expand(6, -1, -1) for i in range(L)] + [None] * (2 - L)
    torch.testing.assert_close(model(X), model.head(base.forward_features(X, prompts=prompts)))


def test_copy_of_base_head_when_num_classes_is_none():
    base = tiny_vit()
    model = PromptTunedViT(base)
    assert model.head is not base.head and torch.equal(model.head.weight, base.head.weight)
    assert model.head.weight.requires_grad and not base.head.weight.requires_grad


def test_data_init_uses_patch_token_statistics():
    base = tiny_vit()
    torch.manual_seed(0)
    model = PromptTunedViT(
        base, PromptTuningConfig(num_virtual_tokens=4, init="data"), 5, init_data=X
    )
    patch = base.embed(X)[:, 1:].reshape(-1, 16)
    init_prompts_from_data(model, X, noise_scale=0.0)
    expected = patch.mean(0).expand(4, 16)
    torch.testing.assert_close(model.prompt_embeddings[0], expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="X must be"):
        init_prompts_from_data(model, torch.empty(0))


def test_multitask_batch_equals_per_task_runs():
    torch.manual_seed(0)
    cfg = PromptTuningConfig(num_virtual_tokens=3, deep=True)
    model = MultiTaskPromptViT(tiny_vit(), cfg, num_classes=[5, 3, 4])
    assert model.prompt_embeddings.shape == (3, 2, 3, 16)
    ids = torch.tensor([0, 2, 1, 1, 0, 2])
    mixed = model(X, task_ids=ids)
    assert mixed.shape == (6, 5)
    for t, n_classes in enumerate([5, 3, 4]):
        rows = ids == t
        alone = model(X[rows], task_ids=t)
        torch.testing.assert_close(mixed[rows, :n_classes], alone[:, :n_classes], atol=1e-6, rtol=0)
        assert torch.isinf(mixed[rows, n_classes:]).all()
    # Different prompts really give different features for the same image.
    f0 = model.features(X, model.prompt_embeddings[[0] * 6])
    f1 = model.features(X, model.prompt_embeddings[[1] * 6])
    assert not torch.allclose(f0, f1, atol=1e-4)
    with pytest.raises(ValueError, match="task_ids"):
        model(X, task_ids=3)
