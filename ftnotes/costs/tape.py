"""A symbolic forward pass that applies autograd's saving rules: what one training step keeps.

No tensors are made. Each op below is one PyTorch op of the transformers implementation and
records (a) the tensors autograd saves for backward, by the rules of PyTorch's
``derivatives.yaml`` (a matmul keeps its input only if its weight is trained, and keeps its
weight only if its input needs a gradient; LayerNorm keeps its input and two statistics per
token; GELU/SiLU keep their input; SDPA keeps q, k, v, its output and a float32 log-sum-exp per
head and token), deduplicated the way storages are shared, and (b) the matmul FLOPs of the
forward and backward (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Sec. 2.1:
2 FLOPs per weight per token forward, 2 more for the input gradient, 2 more for the weight
gradient -- hence "6 x params x tokens" when everything trains).

Under bf16 autocast (``torch.autocast(dtype=torch.bfloat16)``; fp16 autocast keeps the same
bytes) each matmul casts its float32 input to a fresh bf16 copy (one per call: q, k and v each
get their own) and uses a bf16 copy of its weight; the copy of a trained weight is cached once
per forward, the copy of a frozen weight is made per call. Those copies are what the matmul
saves, so they count as activations.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass

FP32, BF16, INT64 = 4, 2, 8


@dataclass(frozen=True)
class T:
    """A symbolic tensor: ``key`` names its storage, ``numel`` its size, ``size`` bytes/element."""

    key: str
    numel: int
    size: int
    grad: bool


class Tape:
    """Records saved bytes and FLOPs for a forward over ``tokens`` positions."""

    def __init__(self, tokens: int, autocast: bool, trained, lora_rank):
        self.tokens, self.autocast = tokens, autocast
        self.is_trained = trained  # module name ("layers.3.mlp.up_proj") -> its weights train?
        self.lora_rank = lora_rank  # module name -> LoRA rank r (0: no LoRA there)
        self.saved: dict[str, int] = {}
        # With checkpointing, transformers (input_ids models) and peft register a hook that
        # makes the embeddings' output require grad, so gradients reach the checkpointed layers.
        self.input_grad = False
        self.flops = {"forward": 0, "backward_input": 0, "backward_weight": 0, "recompute": 0}
        self.recompute_peak = 0  # bytes one checkpointed layer re-creates during backward
        self.loss_backward = 0  # bytes the loss's backward adds for a moment (families._loss)
        self._ids = itertools.count()

    def new(self, numel: int, size: int, grad: bool, key: str | None = None) -> T:
        return T(key or f"t{next(self._ids)}", numel, size, grad)

    def save(self, t: T) -> None:
        self.saved[t.key] = t.numel * t.size

    @property
    def weight_copies(self) -> int:
        """Saved bytes that are autocast's 16-bit copies of weights (keys "W...": one per
        trained weight, one per call of a frozen one): the same at any batch size."""
        return sum(b for key, b in self.saved.items() if key.startswith("W"))

    def cast(self, x: T) -> T:
        """Autocast's bf16 copy of a float32 input (a new copy at every call)."""
        return self.new(x.numel, BF16, x.grad) if self.autocast and x.size == FP32 else x

    def matmul(self, x: T, name: str, fan_in: int, fan_out: int, trained: bool, rows: int):
        """y = x W^T (+ b) over ``rows`` rows: saves x if W trains, W's copy if x needs grad."""
        x = self.cast(x)
        if trained:
            self.save(x)
        if x.grad and self.autocast:  # the bf16 weight copy stands in for the fp32 parameter
            # trained: cached once per forward; frozen: a new copy per call
            key = f"W:{name}" if trained else f"W{next(self._ids)}:{name}"
            self.save(self.new(fan_in * fan_out, BF16, True, key))
        mm = 2 * rows * fan_in * fan_out
        self.flops["forward"] += mm
        self.flops["backward_input"] += mm if x.grad else 0
        self.flops["backward_weight"] += mm if trained else 0
        return self.new(rows * fan_out, BF16 if self.autocast else FP32, x.grad or trained)

    def linear(self, x: T, name: str, fan_in: int, fan_out: int, rows: int | None = None) -> T:
        """nn.Linear ``name``; with LoRA (peft's Linear): + lora_B(lora_A(x)) * scaling."""
        rows = self.tokens if rows is None else rows
        y = self.matmul(x, name, fan_in, fan_out, self.is_trained(name), rows)
        r = self.lora_rank(name)
        if r:
            a = self.matmul(x, name + ".lora_A", fan_in, r, True, rows)
            b = self.matmul(a, name + ".lora_B", r, fan_out, True, rows)
            y = self.add(y, b)
        return y

    def layer_norm(self, x: T, name: str) -> T:
        """LayerNorm keeps its input, mean and rstd (one float each per token)."""
        grad = x.grad or self.is_trained(name)
        if grad:
            self.save(x)
            self.save(self.new(2 * self.tokens, FP32, False))
        return self.new(x.numel, FP32, grad)

    def rms_norm(self, x: T, name: str) -> T:
        """Qwen2RMSNorm in Python: x * rsqrt(mean(x^2) + eps), then weight * that."""
        if x.grad:
            self.save(x)  # pow and the first mul keep x
            self.save(self.new(self.tokens, FP32, True))  # rsqrt keeps its output
        normed = self.new(x.numel, FP32, x.grad)
        trained = self.is_trained(name)
        if trained:
            self.save(normed)  # weight * normed keeps normed for the weight's gradient
        return self.new(x.numel, FP32, x.grad or trained)

    def act(self, x: T) -> T:
        """GELU, SiLU and tanh keep one tensor of their size (tanh its output, the others x)."""
        y = self.new(x.numel, x.size, x.grad)
        if x.grad:
            self.save(x)
        return y

    def mul(self, a: T, b: T) -> T:
        if a.grad:
            self.save(b)
        if b.grad:
            self.save(a)
        return self.new(a.numel, max(a.size, b.size), a.grad or b.grad)

    def add(self, a: T, b: T) -> T:
        """Residual adds save nothing; bf16 + float32 promotes to float32."""
        return self.new(max(a.numel, b.numel), max(a.size, b.size), a.grad or b.grad)

    def copy(self, x: T) -> T:
        """transpose(...).contiguous(): a new storage, nothing saved."""
        return self.new(x.numel, x.size, x.grad)

    def sdpa(self, q: T, k: T, v: T, heads: int, seq: int, head_dim: int) -> T:
        """F.scaled_dot_product_attention (flash / memory-efficient kernel: no s x s matrix)."""
        q, k, v = self.cast(q), self.cast(k), self.cast(v)
        out = self.new(q.numel, q.size, q.grad or k.grad or v.grad)
        if out.grad:
            for t in (q, k, v, out):
                self.save(t)
            self.save(self.new(self.tokens * heads, FP32, False))  # log-sum-exp
        attn = 4 * self.tokens * seq * heads * head_dim  # QK^T and (softmax) V
        self.flops["forward"] += attn
        self.flops["backward_input"] += 2 * attn if out.grad else 0
        return out

    @contextmanager
    def layer(self, inputs: tuple[T, ...], checkpoint: bool):
        """One transformer layer; with ``checkpoint`` it keeps only its inputs and recomputes.

        ``torch.utils.checkpoint`` (non-reentrant) saves the layer's tensor inputs even when
        nothing inside needs a gradient (a frozen probe still pays for them).

        (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost", arXiv:1604.06174.)
        """
        before, forward = dict(self.saved), self.flops["forward"]
        yield
        inner = {k: v for k, v in self.saved.items() if k not in before}
        if not checkpoint:
            return
        self.saved = before
        for t in inputs:
            self.save(t)
        self.flops["recompute"] += (self.flops["forward"] - forward) if inner else 0
        self.recompute_peak = max(self.recompute_peak, sum(inner.values()))
