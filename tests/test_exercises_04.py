"""Notebook 04's checkers reject plausible wrong solutions with the right message."""

import re

import pytest
import torch
from torch import nn

from ftnotes.exercises import check


def prompt_class(arrange, per_image=False, fresh=False):
    class WrongPrompt(nn.Module):
        def __init__(self, num_virtual_tokens, dim):
            super().__init__()
            self.prompt = nn.Parameter(0.02 * torch.randn(1, num_virtual_tokens, dim))

        def forward(self, tokens):
            p = self.prompt.expand(tokens.shape[0], -1, -1)
            if per_image:
                p = p * torch.arange(1, tokens.shape[0] + 1).view(-1, 1, 1)
            if fresh:
                p = p + torch.randn_like(p)
            return arrange(tokens, p)

    return WrongPrompt


def right(t, p):
    return torch.cat([t[:, :1], p, t[:, 1:]], 1)


def prefix_class(shared_kv=False, shared_layers=False, batch=True):
    class WrongPrefix(nn.Module):
        def __init__(self, num_virtual_tokens, dim, depth):
            super().__init__()
            self.depth = depth
            shape = (1 if shared_layers else depth, num_virtual_tokens, dim)
            self.prefix_keys = nn.Parameter(0.02 * torch.randn(shape))
            if not shared_kv:
                self.prefix_values = nn.Parameter(0.02 * torch.randn(shape))

        def forward(self, batch_size):
            values = self.prefix_keys if shared_kv else self.prefix_values
            out = []
            for i in range(self.depth):
                j = 0 if shared_layers else i
                k, v = self.prefix_keys[j], values[j]
                out.append((k.expand(batch_size, -1, -1), v.expand(batch_size, -1, -1)) if batch
                           else (k, v))  # fmt: skip
            return out

    return WrongPrefix


WRONG = [
    ("04_visual_prompt", prompt_class(lambda t, p: torch.cat([p, t], 1)), "before the class token"),
    ("04_visual_prompt", prompt_class(lambda t, p: torch.cat([t, p], 1)), "appended at the end"),
    ("04_visual_prompt", prompt_class(right, per_image=True), "images get different prompts"),
    ("04_visual_prompt", prompt_class(right, fresh=True), "change between calls"),
    (
        "04_visual_prompt",
        prompt_class(lambda t, p: torch.cat([t[:, :1], p, t[:, 2:]], 1)),
        "output shape",
    ),  # fmt: skip
    ("04_prefix_kv", prefix_class(shared_kv=True), "share one tensor"),
    ("04_prefix_kv", prefix_class(shared_layers=True), "same prefix"),
    ("04_prefix_kv", prefix_class(batch=False), r"expected \(B, P, D\)"),
    ("04_prompt_vs_prefix", lambda P, D, L: (P * D, L * P * D), "a factor 2"),
    ("04_prompt_vs_prefix", lambda P, D, L: (P * D, 2 * P * D), "times depth"),
    ("04_prompt_vs_prefix", lambda P, D, L: (L * P * D, 2 * L * P * D), "VPT-deep"),
    ("04_prompt_vs_prefix", lambda P, D, L: 2 * L * P * D, "return a pair"),
]


@pytest.mark.parametrize("ex_id, wrong, message", WRONG)
def test_wrong_solution_is_rejected_with_its_message(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed"
    assert re.search(message, result.message), result.message
