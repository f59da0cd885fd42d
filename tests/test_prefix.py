"""Prefix tuning's own properties: shapes and counts, the reference forward, the MLP
reparametrisation and folding it away. The shared contract is test_peft_contract.py."""

import copy

import pytest
import torch
from peft_helpers import X, tiny_vit
from torch import nn

from ftnotes.peft import PrefixTunedViT, PrefixTuningConfig
from ftnotes.utils import count_params


def test_config_validation_names_the_field():
    for kwargs, field in [
        ({"num_virtual_tokens": 0}, "num_virtual_tokens"),
        ({"encoder_hidden_size": -3}, "encoder_hidden_size"),
        ({"prefix_projection": 1}, "prefix_projection"),
    ]:
        with pytest.raises(ValueError, match=f"PrefixTuningConfig.{field}"):
            PrefixTuningConfig(**kwargs)


def test_plain_prefixes_shapes_counts_and_reference():
    base = tiny_vit()
    model = PrefixTunedViT(base, PrefixTuningConfig(num_virtual_tokens=3), num_classes=4)
    assert model.prefix_embeddings.shape == (2, 2, 3, 16)  # (depth, key/value, P, D)
    assert count_params(model, trainable_only=True) == 2 * 2 * 3 * 16 + 16 * 4 + 4
    assert not any(p.requires_grad for p in base.parameters())
    nn.init.normal_(model.prefix_embeddings)  # large prefixes: their effect must show
    pre = model.prefix_embeddings
    per_block = [(pre[i, 0].expand(6, -1, -1), pre[i, 1].expand(6, -1, -1)) for i in range(2)]
    expected = model.head(base.forward_features(X, prefixes=per_block))
    torch.testing.assert_close(model(X), expected)
    assert not torch.allclose(model(X), model.head(base.forward_features(X)), atol=1e-3)


def test_projection_count():
    cfg = PrefixTuningConfig(num_virtual_tokens=3, prefix_projection=True, encoder_hidden_size=8)
    model = PrefixTunedViT(tiny_vit(), cfg, num_classes=5)
    L, D, P, H = 2, 16, 3, 8
    mlp = D * H + H + H * L * 2 * D + L * 2 * D
    assert count_params(model, trainable_only=True) == P * D + mlp + D * 5 + 5


def test_fold_projection_keeps_outputs_and_drops_the_mlp():
    cfg = PrefixTuningConfig(num_virtual_tokens=4, prefix_projection=True, encoder_hidden_size=8)
    model = PrefixTunedViT(tiny_vit(), cfg, num_classes=5)
    out, n_before = model(X), count_params(model, trainable_only=True)
    prefixes = model.get_prefixes().detach().clone()
    folded = copy.deepcopy(model).fold_projection()
    assert not hasattr(folded, "prefix_mlp") and not folded.peft_config.prefix_projection
    assert model.peft_config.prefix_projection  # the original's config is untouched
    assert torch.equal(folded.prefix_embeddings, prefixes)
    torch.testing.assert_close(folded(X), out, atol=1e-6, rtol=0)
    assert count_params(folded, trainable_only=True) == 2 * 2 * 4 * 16 + 16 * 5 + 5 < n_before
    assert folded.fold_projection() is folded  # folding again: nothing to do
