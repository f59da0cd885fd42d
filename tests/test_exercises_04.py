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


class PromptBatchOf4(nn.Module):  # the checker's first batch has 4 images
    def __init__(self, num_virtual_tokens, dim):
        super().__init__()
        self.prompt = nn.Parameter(0.02 * torch.randn(1, num_virtual_tokens, dim))

    def forward(self, tokens):
        return right(tokens, self.prompt.expand(4, -1, -1))


class PromptFrozen(PromptBatchOf4):
    def __init__(self, num_virtual_tokens, dim):
        super().__init__(num_virtual_tokens, dim)
        self.prompt.requires_grad_(False)

    def forward(self, tokens):
        return right(tokens, self.prompt.expand(len(tokens), -1, -1))


class PromptNoReturn(PromptBatchOf4):
    def forward(self, tokens):
        right(tokens, self.prompt.expand(len(tokens), -1, -1))


class PromptThreeTokens(PromptBatchOf4):  # the checker's first P, typed in
    def __init__(self, num_virtual_tokens, dim):
        super().__init__(3, dim)

    def forward(self, tokens):
        return right(tokens, self.prompt.expand(len(tokens), -1, -1))


def prefix_variant(batch=None, frozen=False, no_return=False, depth=None):
    class Prefix(nn.Module):
        def __init__(self, num_virtual_tokens, dim, d):
            super().__init__()
            d = depth or d
            self.prefix_keys = nn.Parameter(0.02 * torch.randn(d, num_virtual_tokens, dim))
            self.prefix_values = nn.Parameter(0.02 * torch.randn(d, num_virtual_tokens, dim))
            self.requires_grad_(not frozen)

        def forward(self, batch_size):
            b = batch or batch_size
            out = [(k.expand(b, -1, -1), v.expand(b, -1, -1))
                   for k, v in zip(self.prefix_keys, self.prefix_values)]  # fmt: skip
            return None if no_return else out

    return Prefix


WRONG = [
    ("04_visual_prompt", PromptBatchOf4, "batch of 9 images.*not a fixed batch size"),
    ("04_visual_prompt", PromptFrozen, "the prompt is frozen"),
    ("04_visual_prompt", PromptNoReturn, "forward returned None"),
    ("04_visual_prompt", PromptThreeTokens, r"VisualPrompt\(5, 8\).*P·D = 40"),
    ("04_prefix_kv", prefix_variant(batch=4), "forward\\(7\\).*use batch_size"),
    ("04_prefix_kv", prefix_variant(frozen=True), "prefixes are frozen"),
    ("04_prefix_kv", prefix_variant(no_return=True), "forward returned None"),
    ("04_prefix_kv", prefix_variant(depth=2), "list of 3 \\(key, value\\) pairs"),
    ("04_prompt_vs_prefix", lambda P, D, L: (2 * L * P * D, P * D), "wrong order"),
    ("04_prompt_vs_prefix", lambda P, D, L: None, "returned None"),
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
