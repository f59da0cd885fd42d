"""Prompt tuning: learn a few extra input tokens, keep the whole network frozen.

Lester et al. 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning"
(arXiv:2104.08691) for text; Jia et al. 2022, "Visual Prompt Tuning" (VPT, arXiv:2203.12119)
for vision transformers. P learned tokens are inserted after the class token, at the input of
block 0 only (VPT-shallow) or, replacing the previous ones, at every block (VPT-deep).

Prompts cannot be merged into the weights: they are extra tokens, so every inference pays for
T + P tokens instead of T (attention grows with the square). What prompts buy instead is that
one frozen backbone serves many tasks *in the same batch*: each example carries its own
task's prompt (:class:`MultiTaskPromptViT`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from ftnotes.checks import check_bool, check_choice, check_int, check_number
from ftnotes.models import TinyViT
from ftnotes.peft.config import PeftConfig
from ftnotes.peft.tuners import PeftWrapper, refuse_other_method

PROMPT_INITS = ("random", "data")


@dataclass
class PromptTuningConfig(PeftConfig):
    """``num_virtual_tokens`` P prompt tokens; ``deep``: a fresh set at every block (VPT-deep,
    the recipe's choice: 97.2% validation vs 95.5% shallow); ``init``: "random" (VPT's uniform)
    or "data" (mean patch token of real images + noise)."""

    peft_type: ClassVar[str] = "prompt"
    tensor_names: ClassVar[tuple[str, ...]] = ("prompt_embeddings",)
    num_virtual_tokens: int = 8
    deep: bool = True
    init: str = "random"

    def validate(self):
        check_int("PromptTuningConfig.num_virtual_tokens", self.num_virtual_tokens)
        check_bool("PromptTuningConfig.deep", self.deep)
        check_choice("PromptTuningConfig.init", self.init, PROMPT_INITS)

    def attach(self, model, num_classes=None, init_data=None, **kwargs):
        return PromptTunedViT(model, self, num_classes=num_classes, init_data=init_data)


def check_vit(base, method: str) -> None:
    """ValueError unless ``base`` is a TinyViT without another PEFT method (wrapping would
    freeze that method's tensors without a word)."""
    if not isinstance(base, TinyViT):
        raise ValueError(f"base must be an ftnotes TinyViT, got {type(base).__name__}")
    refuse_other_method(base, method)


def new_head(base: TinyViT, num_classes: int | None) -> nn.Linear:
    """A trainable head: a fresh (D -> num_classes) layer, or a copy of the base's head."""
    if num_classes is None:
        return copy.deepcopy(base.head).requires_grad_(True)
    check_int("num_classes (or None)", num_classes)
    ref = base.head.weight
    head = nn.Linear(base.cfg.dim, num_classes, device=ref.device, dtype=ref.dtype)
    TinyViT._init_weights(head)  # same init as the backbone's own head
    return head


class PromptTunedViT(PeftWrapper):
    """A frozen TinyViT plus learned prompt tokens and a trainable head.

    ``prompt_embeddings``: (L, P, D) with L = depth if ``deep`` else 1.
    forward: x (B, 1, 8, 8) -> logits (B, num_classes).
    ``init="data"`` needs ``init_data`` (images (N, 1, 8, 8)), see :func:`init_prompts_from_data`.
    Disabled (``peft.set_enabled(model, False)``): the backbone's features without prompts.
    """

    def __init__(self, base: TinyViT, config: PromptTuningConfig | None = None, num_classes=None,
                 init_data: torch.Tensor | None = None):  # fmt: skip
        super().__init__()
        check_vit(base, "prompt")
        self.peft_config = config = config or PromptTuningConfig()
        self.base = base
        self.prompt_embeddings = nn.Parameter(self._empty_prompts(()))
        self._init_prompts(init_data)
        self.head = new_head(base, num_classes)
        base.requires_grad_(False)  # last: a refused argument leaves the backbone as it was

    def _empty_prompts(self, lead: tuple) -> torch.Tensor:
        cfg = self.base.cfg
        depth = cfg.depth if self.peft_config.deep else 1
        ref = self.base.cls_token
        return torch.empty(*lead, depth, self.peft_config.num_virtual_tokens, cfg.dim,
                           device=ref.device, dtype=ref.dtype)  # fmt: skip

    def _init_prompts(self, init_data) -> None:
        if self.peft_config.init == "data":
            if init_data is None:
                raise ValueError(
                    "PromptTuningConfig.init='data' needs init_data=images (N, 1, 8, 8)"
                )
            init_prompts_from_data(self, init_data)
        else:
            # VPT's init: uniform(-v, v), v = sqrt(6 / (channels * patch_area + D)) (Xavier).
            cfg = self.base.cfg
            v = math.sqrt(6.0 / (cfg.in_chans * cfg.patch_size**2 + cfg.dim))
            nn.init.uniform_(self.prompt_embeddings, -v, v)

    @classmethod
    def for_loading(cls, base, config, state_dict, num_classes):
        config = replace(config, init="random")  # the values come from the file
        return cls(base, config, num_classes=state_dict["head.weight"].shape[0])

    def features(self, x: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """x (B, ...) and per-example prompts (B, L, P, D) -> class features (B, D)."""
        if self.disabled:
            return self.base.forward_features(x)
        per_block = [None] * len(self.base.blocks)
        for i in range(prompts.shape[1]):
            per_block[i] = prompts[:, i]
        return self.base.forward_features(x, prompts=per_block)

    def forward_features(self, x: torch.Tensor, task_ids=None) -> torch.Tensor:
        """Images (B, ...) -> prompted class features (B, D), as ``TinyViT.forward_features``."""
        if task_ids is not None and bool(torch.as_tensor(task_ids).ne(0).any()):
            raise ValueError("PromptTunedViT has one task (id 0); use MultiTaskPromptViT for more")
        prompts = self.prompt_embeddings.unsqueeze(0).expand(x.shape[0], -1, -1, -1)
        return self.features(x, prompts)

    def forward(self, x: torch.Tensor, task_ids=None) -> torch.Tensor:
        return self.head(self.forward_features(x, task_ids))


class MultiTaskPromptViT(PromptTunedViT):
    """One frozen TinyViT, one prompt set and one head per task; a batch may mix tasks.

    ``prompt_embeddings``: (T, L, P, D); ``heads[t]``: D -> num_classes[t].
    forward(x (B, ...), task_ids (B,) or int) -> logits (B, max_t num_classes[t]); columns a
    task does not have are -inf, so argmax and cross-entropy still work per example.
    """

    def __init__(self, base: TinyViT, config: PromptTuningConfig | None = None,
                 num_classes: Sequence[int] = (10, 10), init_data=None):  # fmt: skip
        PeftWrapper.__init__(self)
        check_vit(base, "prompt")
        if isinstance(num_classes, int) or not len(num_classes):
            raise ValueError(
                f"num_classes must be a non-empty list (one per task), got {num_classes!r}"
            )
        self.peft_config = config = config or PromptTuningConfig()
        self.base = base
        self.num_classes = list(num_classes)
        self.prompt_embeddings = nn.Parameter(self._empty_prompts((len(num_classes),)))
        self._init_prompts(init_data)
        self.heads = nn.ModuleList(new_head(base, c) for c in num_classes)
        base.requires_grad_(False)  # last: a refused argument leaves the backbone as it was

    @classmethod
    def for_loading(cls, base, config, state_dict, num_classes):
        return cls(base, replace(config, init="random"), num_classes=num_classes)

    def _ids(self, x: torch.Tensor, task_ids) -> torch.Tensor:
        B, T = x.shape[0], len(self.heads)
        ids = torch.as_tensor(task_ids if task_ids is not None else 0, device=x.device).long()
        ids = ids.expand(B) if ids.dim() == 0 else ids
        if ids.shape != (B,) or ids.min() < 0 or ids.max() >= T:
            raise ValueError(
                f"task_ids must be an int or (B,) tensor with values in [0, {T}), got {task_ids!r}"
            )
        return ids

    def forward_features(self, x: torch.Tensor, task_ids=0) -> torch.Tensor:
        """Images (B, ...) -> class features (B, D), each example with its task's prompt."""
        return self.features(x, self.prompt_embeddings[self._ids(x, task_ids)])

    def forward(self, x: torch.Tensor, task_ids=0) -> torch.Tensor:
        ids = self._ids(x, task_ids)
        feats = self.features(x, self.prompt_embeddings[ids])  # each example its own prompt
        logits = feats.new_full((x.shape[0], max(self.num_classes)), float("-inf"))
        for t in ids.unique().tolist():
            rows = ids == t
            logits[rows, : self.num_classes[t]] = self.heads[t](feats[rows])
        return logits


@torch.no_grad()
def init_prompts_from_data(model: PromptTunedViT, X: torch.Tensor, noise_scale: float = 0.5):
    """Set prompts to the mean patch token of real images plus noise (noise_scale x token std).

    For deep prompts, the prompt of block i uses the tokens entering block i. Uses torch's
    global generator for the noise: seed before calling. X: images (N, 1, 8, 8).
    """
    if not isinstance(X, torch.Tensor) or X.numel() == 0:
        raise ValueError(f"X must be a non-empty tensor of images, got {type(X).__name__}")
    check_number("noise_scale", noise_scale, 0)
    base, prompts = model.base, model.prompt_embeddings
    tokens = base.embed(X.to(prompts.device, prompts.dtype))
    for i in range(prompts.shape[-3]):
        patch = tokens[:, 1:].reshape(-1, tokens.shape[-1])  # (N * patches, D)
        mean, std = patch.mean(0), patch.std(0)
        noise = torch.randn_like(prompts[..., i, :, :])
        prompts[..., i, :, :] = mean + noise_scale * std * noise
        tokens = base.blocks[i](tokens)
    return model
