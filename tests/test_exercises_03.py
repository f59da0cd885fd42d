"""Notebook 03's checkers reject plausible wrong solutions with the right message."""

import math
import re

import pytest
import torch
from torch import nn

from ftnotes.exercises import check
from ftnotes.exercises.nb03 import LoRALinear


def lora_class(delta=None, freeze=True, zero_b=True, swap_shapes=False, scaling=None):
    """A LoRA layer with one mistake; ``delta(self, x)`` computes the update branch."""

    class WrongLoRA(nn.Module):
        def __init__(self, base, r=4, lora_alpha=8.0):
            super().__init__()
            self.base = base
            for p in base.parameters():
                p.requires_grad = not freeze
            self.scaling = lora_alpha / r if scaling is None else scaling(r, lora_alpha)
            a_shape = (base.in_features, r) if swap_shapes else (r, base.in_features)
            self.lora_A = nn.Parameter(torch.empty(a_shape))
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
            if not zero_b:
                nn.init.normal_(self.lora_B)

        def forward(self, x):
            if delta:
                return self.base(x) + delta(self, x)
            return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)

    return WrongLoRA


def merge_class(delta=None, merge=None, guard=True, unmerge_sign=-1.0):
    class WrongMerge(LoRALinear):
        def get_delta_weight(self):
            return delta(self) if delta else self.scaling * (self.lora_B @ self.lora_A)

        @torch.no_grad()
        def merge(self):
            if guard and self.merged:
                return
            if merge:
                merge(self)
            else:
                self.base.weight += self.get_delta_weight()
            self.merged = True

        @torch.no_grad()
        def unmerge(self):
            self.base.weight += unmerge_sign * self.get_delta_weight()
            self.merged = False

    return WrongMerge


def merge_without_skipping(self):
    self.base.weight += self.get_delta_weight()


class MergeForwardIgnoresFlag(merge_class()):
    def forward(self, x):
        return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)


class LoRANoReturn(LoRALinear):
    def forward(self, x):
        self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)


class LoRAFrozenA(LoRALinear):
    def __init__(self, base, r=4, lora_alpha=8.0):
        super().__init__(base, r, lora_alpha)
        self.lora_A.requires_grad_(False)  # "A is random and stays so": it must train too


class LoRADefaultAlpha16(LoRALinear):
    def __init__(self, base, r=4, lora_alpha=16.0):  # a default unlike the docstring's
        super().__init__(base, r, lora_alpha)


class LoRAInlineFloorScaling(LoRALinear):  # self.scaling is right, forward recomputes it
    def forward(self, x):
        return self.base(x) + (self.lora_alpha // self.r) * (x @ self.lora_A.T @ self.lora_B.T)


def merge_delta(delta):
    """The reference merge and unmerge around a get_delta_weight with one mistake."""
    return type("MergeDelta", (LoRALinear,), {"get_delta_weight": delta})


class MergeDeltaNoReturn(LoRALinear):
    def get_delta_weight(self):
        self.scaling * (self.lora_B @ self.lora_A)


WRONG = [
    ("03_lora_layer", lora_class(scaling=lambda r, a: a // r), r"lora_alpha // r, rounded down"),
    ("03_lora_layer", lora_class(scaling=lambda r, a: 2.0), "not a fixed number"),
    ("03_lora_layer", LoRANoReturn, "forward returned None: did you forget `return`"),
    ("03_lora_layer", LoRAFrozenA, "lora_A and lora_B must be trainable"),
    ("03_lora_layer", LoRADefaultAlpha16, "with the defaults self.scaling should be .* = 2"),
    ("03_lora_layer", LoRAInlineFloorScaling, "uses lora_alpha // r = 1"),
    ("03_lora_merge", merge_delta(lambda s: (s.lora_alpha // s.r) * (s.lora_B @ s.lora_A)),
     "uses lora_alpha // r = 1; the scaling is lora_alpha / r = 1.333"),
    ("03_lora_merge", merge_delta(lambda s: 2.0 * (s.lora_B @ s.lora_A)), "1.333 here"),
    ("03_lora_merge", MergeDeltaNoReturn, "get_delta_weight returned None"),
    ("03_lora_params", lambda i, o, r, n=2: n * r * (i + o),
     r"lora_param_count\(10, 6, 3\) = 96, expected .* = 48"),
    ("03_dora_weight", lambda W, A, B, m, s: m[:, None] * (W + 2.0 * B @ A)
     / (W + 2.0 * B @ A).norm(dim=1, keepdim=True), "scaling=0.75 you still scale B·A by 2"),  # fmt: skip
    ("03_dora_weight", lambda W, A, B, m, s: None, "dora_weight returned None"),
    ("03_lora_layer", lora_class(lambda s, x: x @ s.lora_A.T @ s.lora_B.T), "forget the scaling"),
    ("03_lora_layer", lora_class(scaling=lambda r, a: r / a), "r/α"),
    (
        "03_lora_layer",
        lora_class(lambda s, x: s.scaling * x @ (s.lora_B @ s.lora_A)),
        "transposed",
    ),  # fmt: skip
    ("03_lora_layer", lora_class(freeze=False), "base weight changed after a training step"),
    ("03_lora_layer", lora_class(zero_b=False), "lora_B is not zero"),
    ("03_lora_layer", lora_class(swap_shapes=True), r"lora_A should be r x in"),
    ("03_lora_merge", merge_class(delta=lambda s: s.lora_B @ s.lora_A), "without the scaling"),
    (
        "03_lora_merge",
        merge_class(delta=lambda s: s.scaling * (s.lora_A.T @ s.lora_B.T)),
        "transposed",
    ),  # fmt: skip
    ("03_lora_merge", merge_class(guard=False), "added the delta twice"),
    ("03_lora_merge", merge_class(unmerge_sign=1.0), "did not restore W"),
    (
        "03_lora_merge",
        merge_class(merge=lambda s: s.base.weight.copy_(s.get_delta_weight())),
        "replaced W by the delta",
    ),  # fmt: skip
    ("03_lora_merge", MergeForwardIgnoresFlag, "skip the LoRA branch"),
    ("03_lora_params", lambda i, o, r, n=1: n * r * i * o, "r·in·out"),
    ("03_lora_params", lambda i, o, r, n=1: r * (i + o), "num_layers"),
    ("03_lora_params", lambda i, o, r, n=1: n * (r * (i + o) + o), "bias"),
    ("03_lora_params", lambda i, o, r, n=1: n * 2 * r * i, r"r·\(in \+ out\)"),
    ("03_dora_weight", lambda W, A, B, m, s: m[:, None] * (W + s * B @ A)
     / (W + s * B @ A).norm(dim=0, keepdim=True), "columns"),  # fmt: skip
    ("03_dora_weight", lambda W, A, B, m, s: m[:, None] * (W + s * B @ A)
     / (W + s * B @ A).norm(), "whole matrix"),  # fmt: skip
    ("03_dora_weight", lambda W, A, B, m, s: m[:, None] * (W + B @ A)
     / (W + B @ A).norm(dim=1, keepdim=True), "missing its scaling"),  # fmt: skip
    ("03_dora_weight", lambda W, A, B, m, s: m[:, None] * W / W.norm(dim=1, keepdim=True)
     + s * B @ A, "normalise W"),  # fmt: skip
    ("03_dora_weight", lambda W, A, B, m, s: (W + s * B @ A)
     / (W + s * B @ A).norm(dim=1, keepdim=True), "magnitude"),  # fmt: skip
    ("03_dora_weight", lambda W, A, B, m, s: (W + s * B @ A)[:-1], "shape"),
]


@pytest.mark.parametrize("ex_id, wrong, message", WRONG)
def test_wrong_solution_is_rejected_with_its_message(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed"
    assert re.search(message, result.message), result.message
