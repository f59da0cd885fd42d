"""Exercises of notebook 04 (prompt and prefix tuning): the two modules and their sizes."""

from __future__ import annotations

import torch
from torch import nn

from .core import exercise
from .fixtures import allclose, as_int, images, randn, returned, tiny_vit

# ---------------------------------------------------------------- reference solutions
# What show_solution(id) prints and what the checkers below compare against: short and
# standalone on purpose (torch and the TinyViT conventions only; the package's peft and
# strategies add validation, configs and many-layer plumbing). Kept next to their
# checkers so that one file holds an exercise entirely.


class VisualPrompt(nn.Module):
    """Shallow visual prompt tuning (Jia et al. 2022, VPT): P learned tokens after the class token.

    Input tokens (B, T, D) = [cls, patches...]; output (B, T + P, D) = [cls, prompts, patches].
    """

    def __init__(self, num_virtual_tokens: int, dim: int):
        super().__init__()
        self.prompt = nn.Parameter(torch.empty(1, num_virtual_tokens, dim))
        nn.init.trunc_normal_(self.prompt, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        prompt = self.prompt.expand(tokens.shape[0], -1, -1)  # one shared prompt per image
        return torch.cat([tokens[:, :1], prompt, tokens[:, 1:]], dim=1)


class PrefixKV(nn.Module):
    """Prefix tuning (Li & Liang 2021): per-layer learned keys and values for attention.

    ``forward(batch_size)`` returns ``depth`` pairs (key, value), each (B, P, D), as
    ``TinyViT(x, prefixes=...)`` expects. Parameters: 2 * depth * P * D.
    """

    def __init__(self, num_virtual_tokens: int, dim: int, depth: int):
        super().__init__()
        self.prefix_keys = nn.Parameter(0.02 * torch.randn(depth, num_virtual_tokens, dim))
        self.prefix_values = nn.Parameter(0.02 * torch.randn(depth, num_virtual_tokens, dim))

    def forward(self, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [
            (k.expand(batch_size, -1, -1), v.expand(batch_size, -1, -1))
            for k, v in zip(self.prefix_keys, self.prefix_values)
        ]


def prompt_vs_prefix_params(num_virtual_tokens: int, dim: int, depth: int) -> tuple[int, int]:
    """(shallow prompt, prefix) parameter counts: P * D versus 2 * depth * P * D."""
    return num_virtual_tokens * dim, 2 * depth * num_virtual_tokens * dim


# ---------------------------------------------------------------- 04_visual_prompt


@exercise(
    "04_visual_prompt",
    title="A shallow visual prompt (VPT)",
    kind="class",
    reference=VisualPrompt,
    stub='''
    class VisualPrompt(nn.Module):
        """VPT-shallow (Jia et al. 2022): P learned prompt tokens inserted after the class token.
        tokens (B, T, D) = [cls, patches...] -> (B, T + P, D) = [cls, prompts..., patches...].
        The prompt is one nn.Parameter shared by every image, initialised small and random."""

        def __init__(self, num_virtual_tokens, dim):
            super().__init__()
            raise NotImplementedError("your code here")

        def forward(self, tokens):
            raise NotImplementedError("your code here")
    ''',
    hints=[
        "Store self.prompt = nn.Parameter(...) of shape (1, P, D), e.g. 0.02 * torch.randn.",
        "Expand it to the batch with self.prompt.expand(B, -1, -1): one prompt, every image.",
        "Concatenate along the token dimension (dim=1): the class token slice, the expanded prompt, then the remaining tokens.",
    ],
)
def _check_visual_prompt(cls, ctx):
    _check_visual_prompt_on(cls, ctx, P=3, D=16, B=4, T=17, first=True)
    _check_visual_prompt_on(cls, ctx, P=5, D=8, B=9, T=10, first=False)
    ctx.ok("the same with 5 tokens of width 8 on a batch of 9 images of 10 tokens")


def _check_visual_prompt_on(cls, ctx, P, D, B, T, first):
    module = cls(P, D)
    every = [p for p in module.parameters()]
    params = [p for p in every if p.requires_grad]
    n = sum(p.numel() for p in params)
    ctx.expect(n or sum(p.numel() for p in every) != P * D,
               "the prompt is frozen (requires_grad=False): it is the only thing that trains.")  # fmt: skip
    ctx.expect(n == P * D, f"VisualPrompt({P}, {D}): the prompt should be P·D = {P * D} trainable "
               f"parameters, got {n}.")  # fmt: skip
    ctx.expect(any(bool(p.any()) for p in params), "the prompt is all zeros: initialise it small "
               "and random so the tokens differ from one another.")  # fmt: skip
    rows = torch.cat([p.detach().reshape(-1, D) for p in params if p.numel() % D == 0])
    ctx.expect(len(rows) < 2 or not allclose(rows, rows[:1].expand_as(rows)),
               "all prompt tokens start identical: they would get identical gradients and stay "
               "copies of one another. Initialise each token with its own random values.")  # fmt: skip
    if first:
        ctx.ok(f"{P}·{D} = {P * D} trainable, non-zero prompt parameters, distinct tokens")
    tokens = randn(B, T, D, seed=3)
    try:
        out = returned(module(tokens), "forward", ctx, "[cls, prompts, patches]")
    except RuntimeError as err:
        if "size" not in str(err).lower():
            raise
        ctx.fail(f"on a batch of {B} images of {T} tokens your forward failed ({err}): expand "
                 "the prompt to tokens.shape[0] images, not a fixed batch size.")
    ctx.expect(tuple(out.shape) == (B, T + P, D),
               f"output shape {tuple(out.shape)}, expected (B, T + P, D) = {(B, T + P, D)}.")  # fmt: skip
    ctx.expect(not allclose(out[:, P:], tokens),
               "the prompts come before the class token: insert them after it.")  # fmt: skip
    ctx.expect(allclose(out[:, 0], tokens[:, 0]), "position 0 must stay the class token.")
    ctx.expect(not allclose(out[:, 1:T], tokens[:, 1:]),
               "the prompts are appended at the end: insert them right after the class token.")  # fmt: skip
    ctx.expect(allclose(out[:, 1 + P :], tokens[:, 1:]),
               "the patch tokens should follow the prompts unchanged and in order.")  # fmt: skip
    if first:
        ctx.ok("output = [cls, prompts, patches] with shape (B, T + P, D)")
    prompts = out[:, 1 : 1 + P]
    ctx.expect(allclose(module(tokens)[:, 1 : 1 + P], prompts),
               "the prompts change between calls: make them an nn.Parameter, not fresh noise.")  # fmt: skip
    ctx.expect(allclose(prompts, prompts[:1].expand_as(prompts)),
               "images get different prompts: one learned prompt is shared by the batch.")  # fmt: skip
    ctx.expect(allclose(module(2 * tokens)[:, 1 : 1 + P], prompts),
               "the prompts depend on the input: they are learned parameters.")  # fmt: skip
    if first:
        ctx.ok("the same learned prompt for every image and every call")
    out.pow(2).sum().backward()
    ctx.expect(all(p.grad is not None and p.grad.any() for p in params),
               "the prompt parameters get no gradient.")  # fmt: skip
    if first:
        ctx.ok("gradients reach the prompt")


# ---------------------------------------------------------------- 04_prefix_kv


@exercise(
    "04_prefix_kv",
    title="Prefix keys and values for every layer",
    kind="class",
    reference=PrefixKV,
    stub='''
    class PrefixKV(nn.Module):
        """Prefix tuning (Li & Liang 2021): learned keys and values for each of `depth` layers.
        forward(batch_size) -> list of `depth` pairs (key, value), each (B, P, D), the format of
        TinyViT(x, prefixes=...). Separate parameters for keys and values, and per layer."""

        def __init__(self, num_virtual_tokens, dim, depth):
            super().__init__()
            raise NotImplementedError("your code here")

        def forward(self, batch_size):
            raise NotImplementedError("your code here")
    ''',
    hints=[
        "Two parameters, prefix_keys and prefix_values, each (depth, P, D), small and random.",
        "Layer i's pair is (prefix_keys[i], prefix_values[i]), each expanded to (B, P, D).",
        "Pair layer i's key with layer i's value, give each a batch dimension of size "
        "batch_size with .expand (no copy), and return one pair per layer in a list.",
    ],
)
def _check_prefix_kv(cls, ctx):
    _check_prefix_kv_on(cls, ctx, P=3, D=16, depth=2, B=4, first=True)
    _check_prefix_kv_on(cls, ctx, P=2, D=24, depth=3, B=7, first=False)
    ctx.ok("the same with 2 tokens of width 24 in 3 layers, for a batch of 7")


def _check_prefix_kv_on(cls, ctx, P, D, depth, B, first):
    module = cls(P, D, depth)
    n = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    ctx.expect(n or total != 2 * depth * P * D, "the prefixes are frozen (requires_grad=False): "
               "they are the only thing that trains.")  # fmt: skip
    pairs = returned(module(B), "forward", ctx, "a list of (key, value) pairs")
    ctx.expect(isinstance(pairs, (list, tuple)) and len(pairs) == depth,
               f"return a list of {depth} (key, value) pairs, one per layer.")  # fmt: skip
    for i, pair in enumerate(pairs):
        ctx.expect(isinstance(pair, (list, tuple)) and len(pair) == 2,
                   f"entry {i} should be a pair (key, value).")  # fmt: skip
        for t, what in zip(pair, ("key", "value")):
            ctx.expect(tuple(t.shape) == (B, P, D),
                       f"forward({B}): layer {i}'s {what} has shape {tuple(t.shape)}, expected "
                       f"(B, P, D) = {(B, P, D)}"
                       + (": use batch_size, not a fixed number." if t.shape[1:] == (P, D)
                          else "."))  # fmt: skip
    if first:
        ctx.ok(f"{depth} (key, value) pairs, each (B, P, D)")
    k0, v0 = pairs[0]
    ctx.expect(bool(k0.any()) and bool(v0.any()), "the prefixes are all zeros: initialise them "
               "small and random.")  # fmt: skip
    ctx.expect(not allclose(k0, v0), "key and value share one tensor: they need separate "
               "parameters.")  # fmt: skip
    ctx.expect(not allclose(pairs[0][0], pairs[1][0]), "every layer gets the same prefix: each "
               "layer needs its own.")  # fmt: skip
    ctx.expect(allclose(k0, k0[:1].expand_as(k0)), "images get different prefixes: one learned "
               "prefix is shared by the batch.")  # fmt: skip
    ctx.expect(n == 2 * depth * P * D, f"PrefixKV({P}, {D}, {depth}): expected 2·depth·P·D = "
               f"{2 * depth * P * D} trainable parameters, got {n}.")  # fmt: skip
    if first:
        ctx.ok("separate non-zero keys and values per layer, shared across the batch: 2·depth·P·D")
    model, x = tiny_vit(depth=depth, dim=D), images(B)
    for p in model.parameters():
        p.requires_grad = False
    out = model(x, prefixes=module(B))
    ctx.expect(not allclose(out, model(x)), "the prefixes do not change TinyViT's output.")
    out.pow(2).sum().backward()
    ctx.expect(all(p.grad is not None and p.grad.any() for p in module.parameters()),
               "some prefix parameters get no gradient through TinyViT.")  # fmt: skip
    if first:
        ctx.ok("plugs into TinyViT(x, prefixes=...) and gets gradients from a frozen model")


# ---------------------------------------------------------------- 04_prompt_vs_prefix


@exercise(
    "04_prompt_vs_prefix",
    title="Parameter count: prompt tuning versus prefix tuning",
    kind="function",
    reference=prompt_vs_prefix_params,
    stub='''
    def prompt_vs_prefix_params(num_virtual_tokens, dim, depth):
        """(shallow prompt tuning, prefix tuning) trainable parameter counts for P virtual
        tokens of width dim in a depth-layer model (no reparametrisation MLP)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "A shallow prompt is P tokens of width D, entering once at the input.",
        "Prefix tuning has a key and a value prefix of P tokens in *every* layer.",
        "return P * D, 2 * depth * P * D",
    ],
)
def _check_prompt_vs_prefix(fn, ctx):
    for P, D, depth in ((3, 16, 3), (10, 64, 4), (20, 768, 12)):
        res = returned(fn(P, D, depth), "prompt_vs_prefix_params", ctx, "a pair (prompt, prefix)")
        args = f"prompt_vs_prefix_params({P}, {D}, {depth}) = {res}"
        ctx.expect(isinstance(res, (tuple, list)) and len(res) == 2,
                   f"{args}: return a pair (prompt, prefix).")  # fmt: skip
        prompt, prefix = (as_int(v, "each count", ctx) for v in res)
        ctx.expect((prompt, prefix) != (2 * depth * P * D, P * D),
                   f"{args}: the right counts in the wrong order; the docstring asks for "
                   "(shallow prompt tuning, prefix tuning).")  # fmt: skip
        ctx.expect(prompt != depth * P * D or depth == 1,
                   f"{args}: that prompt count is VPT-deep; shallow prompts enter once.")  # fmt: skip
        ctx.expect(prompt == P * D, f"{args}: a shallow prompt has P·D = {P * D} parameters.")
        ctx.expect(prefix != depth * P * D, f"{args}: keys *and* values: a factor 2.")
        ctx.expect(prefix != 2 * P * D, f"{args}: prefixes enter every layer: times depth.")
        ctx.expect(prefix == 2 * depth * P * D, f"{args}: prefix tuning has 2·depth·P·D.")
    ctx.ok("prompt = P·D and prefix = 2·depth·P·D for three sizes")
    counted = sum(p.numel() for p in PrefixKV(10, 64, 4).parameters())
    ctx.expect(fn(10, 64, 4)[1] == counted, f"a PrefixKV(10, 64, 4) has {counted} parameters.")
    ctx.ok(f"agrees with counting a real PrefixKV(10, 64, 4): {counted}")
