"""Prefix tuning: learned key/value prefixes in every attention layer of a frozen network.

Li & Liang 2021, "Prefix-Tuning: Optimizing Continuous Prompts for Generation"
(arXiv:2101.00190). Every block's attention gets P extra keys and values (never extra
queries, so the token count is unchanged). The paper found optimising the prefixes directly
unstable and reparametrised them through an MLP, P' -> MLP -> prefixes (``prefix_projection``,
peft's name); after training the MLP is thrown away and only its output is kept
(:meth:`PrefixTunedViT.fold_projection`).

Like prompts, prefixes cannot be merged into the weights: every inference attends over
P extra keys/values in every block.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from ftnotes.checks import check_bool, check_int
from ftnotes.models import TinyViT
from ftnotes.peft.config import PeftConfig
from ftnotes.peft.prompt import check_vit, new_head
from ftnotes.peft.tuners import PeftWrapper


@dataclass
class PrefixTuningConfig(PeftConfig):
    """``num_virtual_tokens`` P prefix keys/values per block; ``prefix_projection``: learn them
    through an MLP of width ``encoder_hidden_size`` (Li & Liang 2021, Sec. 4.3)."""

    peft_type: ClassVar[str] = "prefix"
    tensor_names: ClassVar[tuple[str, ...]] = ("prefix_*",)
    num_virtual_tokens: int = 8
    prefix_projection: bool = False
    encoder_hidden_size: int = 64

    def validate(self):
        for name in ("num_virtual_tokens", "encoder_hidden_size"):
            check_int(f"PrefixTuningConfig.{name}", getattr(self, name))
        check_bool("PrefixTuningConfig.prefix_projection", self.prefix_projection)

    def attach(self, model, num_classes=None, **kwargs):
        return PrefixTunedViT(model, self, num_classes=num_classes)


class PrefixTunedViT(PeftWrapper):
    """A frozen TinyViT with learned per-block key/value prefixes and a trainable head.

    Without projection: ``prefix_embeddings`` (depth, 2, P, D) are the prefixes themselves
    (index 0 keys, 1 values). With projection: ``prefix_tokens`` (P, D) -> ``prefix_mlp``
    (Linear D->H, Tanh, Linear H->depth*2*D) -> the same (depth, 2, P, D).
    forward: x (B, 1, 8, 8) -> logits (B, num_classes). Disabled: the features without prefixes.
    """

    def __init__(self, base: TinyViT, config: PrefixTuningConfig | None = None, num_classes=None):
        super().__init__()
        check_vit(base, "prefix")
        self.peft_config = config = config or PrefixTuningConfig()
        self.base = base
        D, L, P = base.cfg.dim, base.cfg.depth, config.num_virtual_tokens
        ref = base.cls_token
        if config.prefix_projection:
            self.prefix_tokens = nn.Parameter(torch.randn(P, D, device=ref.device, dtype=ref.dtype))
            H = config.encoder_hidden_size
            self.prefix_mlp = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, L * 2 * D))
            self.prefix_mlp.to(device=ref.device, dtype=ref.dtype)
        else:
            # Small values: near-zero keys get average attention and near-zero values add
            # little, so training starts close to the pretrained function.
            prefix = torch.randn(L, 2, P, D, device=ref.device, dtype=ref.dtype) * 0.02
            self.prefix_embeddings = nn.Parameter(prefix)
        self.head = new_head(base, num_classes)
        base.requires_grad_(False)  # last: a refused argument leaves the backbone as it was

    @classmethod
    def for_loading(cls, base, config, state_dict, num_classes):
        return cls(base, config, num_classes=state_dict["head.weight"].shape[0])

    def get_prefixes(self) -> torch.Tensor:
        """All prefixes as one tensor (depth, 2, P, D)."""
        if self.peft_config.prefix_projection:
            L, D = self.base.cfg.depth, self.base.cfg.dim
            out = self.prefix_mlp(self.prefix_tokens)  # (P, depth * 2 * D)
            return out.view(-1, L, 2, D).permute(1, 2, 0, 3)
        return self.prefix_embeddings

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, ...) -> class features (B, D) with the prefixes in every block."""
        if self.disabled:
            return self.base.forward_features(x)
        B = x.shape[0]
        prefixes = self.get_prefixes()
        per_block = [
            (prefixes[i, 0].expand(B, -1, -1), prefixes[i, 1].expand(B, -1, -1))
            for i in range(prefixes.shape[0])
        ]
        return self.base.forward_features(x, prefixes=per_block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    @torch.no_grad()
    def fold_projection(self) -> PrefixTunedViT:
        """Replace the MLP by its output: same outputs, fewer parameters (Li & Liang's recipe
        for inference). A no-op if there is no projection. Returns self."""
        if not self.peft_config.prefix_projection:
            return self
        folded = self.get_prefixes().detach().clone(memory_format=torch.contiguous_format)
        del self.prefix_mlp, self.prefix_tokens
        self.prefix_embeddings = nn.Parameter(folded)
        self.peft_config = replace(self.peft_config, prefix_projection=False)
        return self
