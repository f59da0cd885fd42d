"""IA3's own properties: validation, the input/output scaling formula, counts, a zero entry
refused at unmerge, peft's twin (merged and not). The shared contract (identity, on/off,
merge, files, stacking, tasks) is test_peft_contract*.py."""

import copy
import warnings

import pytest
import torch
from peft_helpers import X, tiny_vit
from torch import nn

from ftnotes.peft import (
    IA3Config,
    IA3Linear,
    add_ia3,
    ia3_layers,
    remove,
)
from ftnotes.utils import count_params


def randomize(model, seed=1):
    """Vectors away from one: an untrained IA3 is the identity and proves nothing."""
    g = torch.Generator().manual_seed(seed)
    for _, layer in ia3_layers(model):
        with torch.no_grad():
            layer.ia3_l.copy_(1 + 0.5 * torch.randn(layer.ia3_l.shape, generator=g))


def test_config_validation_names_the_field():
    for kwargs, match in [
        ({"target_modules": ()}, "IA3Config.target_modules must name at least one"),
        ({"target_modules": ["k_proj", 3]}, "IA3Config.target_modules must be a sequence"),
        ({"feedforward_modules": ("fc1",)}, "IA3Config.feedforward_modules must be a subset"),
        ({"feedforward_modules": [1]}, "IA3Config.feedforward_modules must be a sequence"),
    ]:
        with pytest.raises(ValueError, match=match):
            IA3Config(**kwargs)
    # a regex cannot be checked until it meets the model: checked on the modules it matches
    config = IA3Config(target_modules=r".*\.(k_proj|v_proj)", feedforward_modules=("fc2",))
    model = tiny_vit()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="feedforward_modules must be a subset.*blocks.0.mlp.fc2"):
        add_ia3(model, config)
    assert not ia3_layers(model) and model.state_dict().keys() == before.keys()
    with pytest.raises(ValueError, match="ia3 supports nn.Linear"):
        add_ia3(tiny_vit(), IA3Config(target_modules=("norm1",), feedforward_modules=()))
    with pytest.raises(ValueError, match="target_modules=.*matches no module"):
        add_ia3(tiny_vit(), IA3Config(target_modules=("query",), feedforward_modules=()))
    with pytest.raises(ValueError, match="base must be an nn.Linear"):
        IA3Linear(nn.Conv2d(2, 2, 1))


def test_layer_formula_input_or_output_scaling():
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    x = torch.randn(3, 6)
    out_layer, in_layer = IA3Linear(copy.deepcopy(base)), IA3Linear(base, is_feedforward=True)
    assert out_layer.ia3_l.shape == (4,) and in_layer.ia3_l.shape == (6,)
    assert torch.equal(out_layer(x), base(x)) and torch.equal(in_layer(x), base(x))
    with torch.no_grad():
        out_layer.ia3_l.normal_()
        in_layer.ia3_l.normal_()
    torch.testing.assert_close(out_layer(x), base(x) * out_layer.ia3_l)
    torch.testing.assert_close(in_layer(x), base(x * in_layer.ia3_l))


def test_trainable_count_matches_formula():
    model = add_ia3(tiny_vit())
    dim, depth, hidden = 16, 2, 32  # tiny_vit: mlp_ratio 2
    head = dim * 5 + 5
    assert count_params(model, trainable_only=True) == depth * (dim + dim + hidden) + head
    sizes = {n: layer.ia3_l.numel() for n, layer in ia3_layers(model)}
    assert sizes == {f"blocks.{i}.{m}": s for i in range(depth)
                     for m, s in (("attn.k_proj", dim), ("attn.v_proj", dim), ("mlp.fc2", hidden))}


def test_unmerge_with_a_zero_entry_is_refused():
    layer = IA3Linear(nn.Linear(3, 2))
    with torch.no_grad():
        layer.ia3_l[0] = 0
    layer.merge()
    with pytest.raises(ValueError, match="ia3_l has zero entries"):
        layer.unmerge()


def _peft_twin(net, config):
    """peft's IA3 on a copy of ``net``, with the vectors of ours (peft keeps (out, 1) for an
    output scaling and (1, in) for a feedforward layer)."""
    import peft as hf_peft

    theirs = hf_peft.get_peft_model(copy.deepcopy(net), hf_peft.IA3Config(
        target_modules=list(config.target_modules),
        feedforward_modules=list(config.feedforward_modules)))  # fmt: skip
    return theirs


def test_ia3_equals_peft_output_and_merge():
    """Same vectors, same function as peft's IA3Config(target_modules, feedforward_modules),
    merged and not: on a TinyViT, whose k_proj / v_proj / fc2 peft targets by name."""
    net = tiny_vit()
    config = IA3Config()
    ours = add_ia3(copy.deepcopy(net), config)
    randomize(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft warns about the custom model's missing config
        theirs = _peft_twin(net, config)
    twins = {n.removeprefix("base_model.model."): m for n, m in theirs.named_modules()
             if hasattr(m, "ia3_l") and n.startswith("base_model.model.")}  # fmt: skip
    assert set(twins) == {n for n, _ in ia3_layers(ours)}
    with torch.no_grad():
        for name, layer in ia3_layers(ours):
            twin = twins[name]
            assert twin.is_feedforward == layer.is_feedforward
            theirs_l = twin.ia3_l["default"]
            assert torch.equal(theirs_l, torch.ones_like(theirs_l))  # both start at ones
            theirs_l.copy_(layer.ia3_l.view_as(theirs_l))
    theirs.eval()
    torch.testing.assert_close(ours(X), theirs(X), atol=1e-6, rtol=0)
    out = ours(X).detach()
    merged_theirs = theirs.merge_and_unload()
    merged_ours = remove(copy.deepcopy(ours), merge=True)
    torch.testing.assert_close(merged_ours(X), merged_theirs(X), atol=1e-6, rtol=0)
    for key, value in merged_ours.state_dict().items():
        torch.testing.assert_close(value, merged_theirs.state_dict()[key], atol=1e-6, rtol=0)
    torch.testing.assert_close(merged_ours(X), out, atol=1e-5, rtol=0)
