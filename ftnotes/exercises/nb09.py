"""Exercises of notebook 09 (will it fit?): AdamW's bytes, LoRA's count, the largest batch.

The reference solutions sit next to their checkers (the pattern ``ftnotes.costs`` computes at
scale; here by hand, so the student sees where each number comes from).
"""

from __future__ import annotations

from ..checks import check_int
from .core import exercise
from .fixtures import as_int

# ---------------------------------------------------------------- 09_adamw_bytes


def adamw_state_bytes(num_params: int) -> int:
    """Bytes of AdamW's state for ``num_params`` trained float32 parameters (Loshchilov &
    Hutter 2019): two moments, exp_avg and exp_avg_sq, 4 bytes each per parameter."""
    check_int("num_params", num_params, 0)
    return 2 * 4 * num_params


@exercise(
    "09_adamw_bytes",
    title="AdamW's optimizer state in bytes",
    kind="function",
    reference=adamw_state_bytes,
    stub='''
    def adamw_state_bytes(num_params):
        """Bytes of AdamW's state for num_params trained float32 parameters."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "AdamW keeps two running averages per parameter: the gradient's (exp_avg) and the "
        "squared gradient's (exp_avg_sq).",
        "Both are float32 like the parameters: 4 bytes each.",
        "Multiply: how many moments per parameter, times the bytes of one float32 value, times the "
        "number of parameters (an int, not a float).",
    ],
)
def _check_adamw_bytes(fn, ctx):
    for n in (1, 1000, 110_000_000, 494_032_768):
        got = as_int(fn(n), f"adamw_state_bytes({n})", ctx)
        msg = f"adamw_state_bytes({n}) = {got:,}"
        ctx.expect(got != 4 * n, f"{msg}: that is one moment; AdamW keeps two.")
        ctx.expect(got != 2 * n, f"{msg}: that is one bf16 moment; the state is two float32 tensors.")
        ctx.expect(got != 16 * n, f"{msg}: that is weights + gradients + state; only the state.")
        ctx.expect(got != 12 * n, f"{msg}: that includes the weights; only the optimizer's state.")
        ctx.expect(got != 2 * n * 4 // 8, f"{msg}: you counted bits, not bytes?")
        ctx.expect(got == 8 * n, f"{msg}, expected {8 * n:,} (2 moments x 4 bytes).")
    ctx.ok("2 x 4 bytes per parameter, up to Qwen2.5-0.5B's 494M parameters")
    ctx.expect(fn(0) == 0, "no trained parameters, no optimizer state: adamw_state_bytes(0) == 0.")
    ctx.ok("a frozen model has no optimizer state")


# ---------------------------------------------------------------- 09_lora_count


def lora_qv_count(hidden_size: int, num_heads: int, num_kv_heads: int, num_layers: int, r: int) -> int:
    """LoRA's trainable numbers on q_proj (hidden -> hidden) and v_proj (hidden -> kv width) of
    a grouped-query-attention model: r x (in + out) per adapted layer (Hu et al. 2021)."""
    for name, v in (("hidden_size", hidden_size), ("num_heads", num_heads),
                    ("num_kv_heads", num_kv_heads), ("num_layers", num_layers), ("r", r)):  # fmt: skip
        check_int(name, v)
    kv_width = num_kv_heads * (hidden_size // num_heads)
    return num_layers * r * ((hidden_size + hidden_size) + (hidden_size + kv_width))


@exercise(
    "09_lora_count",
    title="LoRA's trainable count on q_proj and v_proj of a GQA model",
    kind="function",
    reference=lora_qv_count,
    stub='''
    def lora_qv_count(hidden_size, num_heads, num_kv_heads, num_layers, r):
        """LoRA trainable numbers on q_proj and v_proj of every layer (grouped-query attention)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Per adapted nn.Linear, LoRA adds lora_A (r x in) and lora_B (out x r).",
        "q_proj maps hidden -> hidden; v_proj maps hidden -> num_kv_heads x head_dim, and "
        "head_dim = hidden_size // num_heads (Qwen2.5-0.5B: 2 KV heads x 64 = 128).",
        "return num_layers * r * ((h + h) + (h + num_kv_heads * (h // num_heads)))",
    ],
)
def _check_lora_count(fn, ctx):
    for h, a, kv, n, r in ((896, 14, 2, 24, 8), (64, 4, 4, 2, 2), (2048, 16, 8, 3, 16)):
        got = as_int(fn(h, a, kv, n, r), "lora_qv_count", ctx)
        want = lora_qv_count(h, a, kv, n, r)
        msg = f"lora_qv_count({h}, {a}, {kv}, {n}, {r}) = {got:,}"
        if kv != a:
            ctx.expect(got != n * r * 4 * h, f"{msg}: v_proj is not {h} -> {h}; with {kv} KV "
                       f"heads it maps {h} -> {kv * (h // a)}.")  # fmt: skip
        ctx.expect(got != want // n, f"{msg}: multiply by num_layers.")
        ctx.expect(got != n * r * (h * h + h * kv * (h // a)), f"{msg}: that is r·in·out; A and B add.")
        ctx.expect(got != want // 2, f"{msg}: both lora_A and lora_B train.")
        ctx.expect(got == want, f"{msg}, expected {want:,}.")
    ctx.ok("r·(in + out) on q_proj and on the narrower v_proj, times the layers")
    ctx.ok(f"Qwen2.5-0.5B, r=8: {lora_qv_count(896, 14, 2, 24, 8):,} trainable numbers")


# ---------------------------------------------------------------- 09_largest_batch


def largest_batch(fixed_bytes: int, bytes_per_sample: int, budget_bytes: int) -> int:
    """The largest batch size b with fixed_bytes + b x bytes_per_sample <= budget_bytes (0 if
    not even one sample fits). Activations grow linearly with the batch; the model states don't."""
    if bytes_per_sample <= 0:
        raise ValueError(f"bytes_per_sample must be > 0, got {bytes_per_sample!r}")
    return max(0, (budget_bytes - fixed_bytes) // bytes_per_sample)


@exercise(
    "09_largest_batch",
    title="The largest batch that fits a memory budget",
    kind="function",
    reference=largest_batch,
    stub='''
    def largest_batch(fixed_bytes, bytes_per_sample, budget_bytes):
        """Largest batch b with fixed_bytes + b * bytes_per_sample <= budget_bytes (0 if none)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "The weights, gradients and optimizer state (fixed_bytes) are paid once; only the "
        "activations scale with the batch.",
        "Round down: a batch that overflows by one byte does not fit.",
        "What is left of the budget after the fixed bytes, divided by the bytes one sample costs, "
        "rounded down to a whole sample; never below zero.",
    ],
)
def _check_largest_batch(fn, ctx):
    gb = 10**9
    # 10 / 3 = 3.33 and 11 / 3 = 3.67: round, ceil and floor part ways
    cases = ((4 * gb, gb // 2, 16 * gb), (0, 3, 10), (2 * gb, 7 * 10**8, 16 * gb), (5, 5, 10),
             (0, 3, 11))  # fmt: skip
    for fixed, per, budget in cases:
        got = as_int(fn(fixed, per, budget), "largest_batch", ctx)
        want = largest_batch(fixed, per, budget)
        msg = f"largest_batch({fixed:,}, {per:,}, {budget:,}) = {got}"
        ctx.expect(got != budget // per or budget // per == want,
                   f"{msg}: the fixed bytes (weights, gradients, state) come first.")  # fmt: skip
        ctx.expect(got != want + 1, f"{msg}: round down ({budget - fixed:,} / {per:,} = "
                   f"{(budget - fixed) / per:.3g}); that batch overflows the budget.")  # fmt: skip
        ctx.expect(got == want, f"{msg}, expected {want}.")
        ctx.expect(fixed + got * per <= budget, f"{msg} does not fit.")
    ctx.ok("round down, fixed bytes first, exact fit allowed")
    got = fn(17 * gb, gb, 16 * gb)
    ctx.expect(got == 0, f"when the model states alone overflow, the answer is 0, got {got}.")
    ctx.ok("0 when the model states alone do not fit")
