"""Reference solutions of the exercises: short, readable, one per exercise.

These are what ``show_solution(id)`` prints and what every checker compares against. They are
standalone on purpose (only ``torch`` and ``ftnotes.models`` conventions): the package's own
``ftnotes.peft`` and ``ftnotes.strategies`` add validation, configs and many-layer plumbing.
Tensor conventions: images (B, 1, 8, 8), tokens (B, T, D), logits (B, C), labels (B,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _require(ok: bool, name: str, value, allowed: str) -> None:
    """Bad input gets a ValueError naming the parameter, the value and what is allowed."""
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


# ---------------------------------------------------------------- 00 overview


def prepare_linear_probe(model: nn.Module, num_classes: int) -> nn.Module:
    """Freeze every parameter, then give ``model`` a fresh trainable ``head`` for ``num_classes``."""
    for p in model.parameters():
        p.requires_grad = False
    # The new nn.Linear is created after freezing, so its parameters are the only trainable ones;
    # it goes where the old head was (CPU or GPU).
    w = model.head.weight
    model.head = nn.Linear(model.head.in_features, num_classes, device=w.device, dtype=w.dtype)
    return model


def count_trainable(model: nn.Module) -> int:
    """Number of scalar parameters that the optimiser will update (``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction in [0, 1] of rows whose arg-max class equals the label. logits (N, C), labels (N,)."""
    return (logits.argmax(dim=1) == labels).float().mean().item()


def ioai_score(old_acc: float, new_acc: float) -> float:
    """Retention-aware score: half the accuracy kept on the old task, half on the new one."""
    for name, acc in (("old_acc", old_acc), ("new_acc", new_acc)):
        _require(0 <= acc <= 1, name, acc, "a fraction in [0, 1]")
    return 0.5 * old_acc + 0.5 * new_acc


# ---------------------------------------------------------------- 01 full fine-tuning


def layerwise_lr_groups(model: nn.Module, base_lr: float, decay: float) -> list[dict]:
    """Optimizer groups with layer-wise learning-rate decay (LLRD; Clark et al. 2020, ELECTRA).

    Head and final norm: ``base_lr``; block i of L: ``base_lr * decay ** (L - i)``;
    embeddings (patch_embed, cls_token, pos_embed): ``base_lr * decay ** (L + 1)``.
    """
    _require(base_lr > 0, "base_lr", base_lr, "> 0")
    _require(0 < decay <= 1, "decay", decay, "in (0, 1]")
    depth = len(model.blocks)
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        if name.startswith("blocks."):
            steps_down = depth - int(name.split(".")[1])
        elif name.startswith(("head.", "norm.")):
            steps_down = 0
        else:  # embeddings sit below block 0
            steps_down = depth + 1
        groups.setdefault(base_lr * decay**steps_down, []).append(p)
    return [{"params": ps, "lr": lr} for lr, ps in groups.items()]


def unfreeze_last_k(model: nn.Module, k: int) -> nn.Module:
    """Train only the head, the final norm and the last ``k`` blocks (those nearest the head)."""
    depth = len(model.blocks)
    _require(isinstance(k, int) and 0 <= k <= depth, "k", k, f"an int in 0..{depth}")
    for name, p in model.named_parameters():
        in_top_blocks = name.startswith("blocks.") and int(name.split(".")[1]) >= depth - k
        p.requires_grad = in_top_blocks or name.startswith(("head.", "norm."))
    return model


def trainable_blocks(epoch: int, depth: int, epochs_per_stage: int = 1) -> list[int]:
    """Gradual unfreezing (Howard & Ruder 2018, ULMFiT): which blocks train at ``epoch``.

    Stage 0 trains the head alone; every ``epochs_per_stage`` epochs one more block, from the top
    (block ``depth - 1``) downwards, joins. Returns sorted block indices.
    """
    _require(epoch >= 0, "epoch", epoch, ">= 0")
    _require(epochs_per_stage >= 1, "epochs_per_stage", epochs_per_stage, ">= 1")
    n = min(epoch // epochs_per_stage, depth)
    return list(range(depth - n, depth))


# ---------------------------------------------------------------- 02 adapters


class Adapter(nn.Module):
    """Bottleneck adapter (Houlsby et al. 2019): x + up(act(down(x))). (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, reduction_factor: int = 4):
        super().__init__()
        _require(1 <= reduction_factor <= dim, "reduction_factor", reduction_factor, f"in 1..{dim}")
        self.down = nn.Linear(dim, dim // reduction_factor)
        self.non_linearity = nn.GELU()
        self.up = nn.Linear(dim // reduction_factor, dim)
        # up starts at zero so the adapter is the identity and training starts from the
        # pretrained function; down stays random so up still receives a gradient.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.non_linearity(self.down(x)))


def adapter_param_count(dim: int, reduction_factor: int, num_adapters: int = 1) -> int:
    """Parameters of ``num_adapters`` adapters: down (D*m + m) and up (m*D + D), m = D // rf."""
    _require(1 <= reduction_factor <= dim, "reduction_factor", reduction_factor, f"in 1..{dim}")
    m = dim // reduction_factor
    return num_adapters * (dim * m + m + m * dim + dim)


class AdapterWrapper(nn.Module):
    """Run a frozen ``sublayer``, then an :class:`Adapter` on its output (Houlsby placement).

    The enclosing block still adds its own residual around the wrapper.
    """

    def __init__(self, sublayer: nn.Module, dim: int, reduction_factor: int = 4):
        super().__init__()
        self.sublayer = sublayer
        for p in self.sublayer.parameters():
            p.requires_grad = False
        self.adapter = Adapter(dim, reduction_factor)

    def forward(self, x, *args, **kwargs):
        # Pass every extra argument on: Block calls attn(x, prefix=...).
        return self.adapter(self.sublayer(x, *args, **kwargs))


# ---------------------------------------------------------------- 03 LoRA


class LoRALinear(nn.Module):
    """LoRA (Hu et al. 2021): y = W x + b + (lora_alpha / r) * B A x, with W and b frozen.

    lora_A (r, in) starts Kaiming-uniform, lora_B (out, r) starts at zero: at init the layer
    equals ``base``. Input (..., in) -> output (..., out).
    """

    def __init__(self, base: nn.Linear, r: int = 4, lora_alpha: float = 8.0):
        super().__init__()
        _require(isinstance(r, int) and r >= 1, "r", r, "an int >= 1")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad = False
        self.r, self.lora_alpha, self.scaling = r, lora_alpha, lora_alpha / r
        like_w = {"device": base.weight.device, "dtype": base.weight.dtype}  # CPU or GPU, as W
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **like_w))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **like_w))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:  # the update already lives in base.weight
            return self.base(x)
        return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)

    def get_delta_weight(self) -> torch.Tensor:
        """The low-rank update scaling * B A, shaped like base.weight (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into base.weight, so inference costs one plain matmul."""
        if not self.merged:  # merging twice would add the update twice
            self.base.weight += self.get_delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of base.weight (restores W up to float rounding)."""
        if self.merged:
            self.base.weight -= self.get_delta_weight()
            self.merged = False


def lora_param_count(in_features: int, out_features: int, r: int, num_layers: int = 1) -> int:
    """Trainable LoRA parameters: A (r x in) plus B (out x r) per adapted layer."""
    _require(r >= 1, "r", r, ">= 1")
    return num_layers * r * (in_features + out_features)


# ---------------------------------------------------------------- 04 prompt and prefix tuning


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


# ---------------------------------------------------------------- 05 workflow


def warmup_cosine(step, total_steps, warmup_steps, peak_lr, min_lr=0.0) -> float:
    """Linear warmup from near 0 to ``peak_lr`` over ``warmup_steps``, then cosine to ``min_lr``.

    Warmup protects the pretrained weights from large early updates while Adam's statistics
    are still noisy (Goyal et al. 2017; Loshchilov & Hutter 2017 for the cosine).
    """
    _require(0 <= warmup_steps < total_steps, "warmup_steps", warmup_steps, "in [0, total_steps)")
    _require(0 <= step < total_steps, "step", step, f"in [0, {total_steps})")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def flag_noisy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: int):
    """Indices (k,) of the k examples with the highest loss on their *given* label."""
    _require(1 <= k <= len(labels), "k", k, f"in 1..{len(labels)}")
    model.eval()
    losses = F.cross_entropy(model(images), labels, reduction="none")  # (N,), one per example
    return losses.topk(k).indices


def noise_precision(flagged, noisy) -> float:
    """Fraction of the flagged examples whose label really was corrupted (precision in [0, 1])."""
    flagged = set(int(i) for i in flagged)
    _require(len(flagged) > 0, "flagged", flagged, "non-empty")
    return len(flagged & set(int(i) for i in noisy)) / len(flagged)


@torch.no_grad()
def source_retention(finetuned, source_head, images, labels) -> float:
    """Accuracy on source data of the fine-tuned body with the ORIGINAL source head."""
    finetuned.eval()
    features = finetuned.forward_features(images)  # (N, D): the body, without its new head
    return (source_head(features).argmax(1) == labels).float().mean().item()


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int = 0):
    """(train_idx, val_idx): each class keeps its share in both parts; shuffled with ``seed``."""
    _require(0 < val_fraction < 1, "val_fraction", val_fraction, "in (0, 1)")
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = round(len(idx) * val_fraction)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values
