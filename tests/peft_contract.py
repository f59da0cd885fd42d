"""The PEFT contract's shared parts (``test_peft_contract*.py``): the cases (every registered
method at its defaults and at the variants), building, training and comparing models."""

from __future__ import annotations

import copy

import pytest
import torch
from peft_helpers import X, tiny_vit, train_steps
from torch import nn

from ftnotes import peft
from ftnotes.peft.tuners import PeftWrapper, module_of

METHODS = sorted(peft.CONFIGS)

#: A second config per method where the method has shapes worth covering (placements, shallow
#: prompts, the prefix MLP, other targets, a non-integer scaling). A method missing here is
#: still checked at its defaults; a key that is not a registered method fails the suite.
VARIANTS = {
    "lora": [dict(r=2, lora_alpha=3.0, target_modules=("k_proj", "o_proj", "fc1"))],
    "dora": [dict(r=3, lora_alpha=4.0, use_rslora=True, target_modules=("fc1", "fc2"))],
    "adapter": [dict(reduction_factor=4, placement="pfeiffer"),
                dict(reduction_factor=3, placement="parallel", non_linearity="gelu")],
    "ia3": [dict(target_modules=("q_proj", "fc1"), feedforward_modules=("fc1",))],
    "bitfit": [dict(target_modules=("fc1", "fc2"))],
    "prompt": [dict(num_virtual_tokens=3, deep=False)],
    "prefix": [dict(num_virtual_tokens=3, prefix_projection=True, encoder_hidden_size=8)],
}  # fmt: skip

CASES = [pytest.param(m, {}, id=m) for m in METHODS] + [
    pytest.param(m, kw, id=f"{m}-{i}")
    for m in METHODS for i, kw in enumerate(VARIANTS.get(m, ()), start=2)
]  # fmt: skip

#: DoRA computes W·x without the bias and adds it after (the magnitude scales W·x only), so at
#: initialisation it equals the base layer to float rounding; every other method bit for bit.
INIT_ATOL = {"dora": 1e-6}


def make_config(method: str, overrides: dict):
    return peft.CONFIGS[method](**overrides)


def attach(config, model):
    """The model to train: ``model`` itself (layer methods) or a new wrapper around it."""
    return config.attach(model)


def is_wrapper(model) -> bool:
    return isinstance(model, PeftWrapper)


def head_names(config) -> tuple:
    return tuple(getattr(config, "modules_to_save", None) or ("head",))


def expected_trainable(model, config) -> set[str]:
    """The method's own tensors (by its declared ``tensor_names``) plus the head's."""
    heads = head_names(config)
    return {n for n, _ in model.named_parameters()
            if config.owns(n) or module_of(n).split(".")[0] in heads}  # fmt: skip


def trained(method, overrides, seed=0, num_classes=None, steps=3, lr=5e-2):
    """(backbone, model with the method, names of the parameters that changed) after ``steps``
    AdamW steps. ``num_classes``: the backbone gets a head of that size first (a task head
    unlike the pretrained one)."""
    base = tiny_vit(seed=seed)
    if num_classes is not None:
        base.head = nn.Linear(16, num_classes)
    config = make_config(method, overrides)
    model = attach(config, copy.deepcopy(base))
    torch.manual_seed(seed + 1)
    y = torch.arange(len(X)) % (num_classes or 5)
    changed = train_steps(model, y=y, steps=steps, lr=lr)
    return base, model, changed


def snapshot(model):
    """What a refused call must leave alone: structure, values, trainable flags, the config."""
    return (repr(model), {k: v.clone() for k, v in model.state_dict().items()},
            {n: p.requires_grad for n, p in model.named_parameters()},
            getattr(model, "peft_config", None))  # fmt: skip


def assert_unchanged(model, before, what):
    after = snapshot(model)
    assert after[0] == before[0], f"{what}: the model's structure changed"
    assert after[2] == before[2], f"{what}: trainable flags changed"
    assert after[3] is before[3], f"{what}: peft_config changed"
    assert after[1].keys() == before[1].keys(), f"{what}: the state dict's keys changed"
    changed = [k for k in before[1] if not torch.equal(after[1][k], before[1][k])]
    assert not changed, f"{what}: values changed: {changed[:4]}"


def same_structure(a, b) -> bool:
    """Same modules and tensor shapes; a wrapper's unused backbone head may differ."""
    if is_wrapper(a):
        shapes = [{k: v.shape for k, v in m.state_dict().items() if not k.startswith("base.head")}
                  for m in (a, b)]  # fmt: skip
        return type(a) is type(b) and shapes[0] == shapes[1]
    return repr(a) == repr(b)


def features(model, x=X):
    return model.forward_features(x)
