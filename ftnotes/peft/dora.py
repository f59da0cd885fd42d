"""DoRA: weight-decomposed low-rank adaptation, LoRA with a learned magnitude per output.

Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation" (arXiv:2402.09353). A weight
``W`` (out x in) is split into a magnitude ``m`` (out,) and a direction ``W / ||W||`` (each row
of unit norm). LoRA moves the direction, and the magnitude trains on its own:

    W' = m * (W + s B A) / ||W + s B A||,   ||.||: the L2 norm of each output row,

with ``m`` initialised to ``||W||``, so W' = W at the start (B = 0). The paper's analysis
(Sec. 3) is that full fine-tuning changes magnitude and direction in opposite ways while LoRA
can only change them together; giving the magnitude its own parameter lets the update look
more like full fine-tuning's, for ``out`` extra numbers per layer. As in the paper (Sec. 4.3)
and peft, the norm is treated as a constant in the backward pass (``detach``): the forward is
the same, the gradient cheaper.

It merges like LoRA: W' is a plain matrix. peft: ``LoraConfig(use_dora=True)``; the tensor is
named like peft's (``lora_magnitude_vector``). Here DoRA is its own registered method
(``DoraConfig``, a ``LoraConfig`` with the same fields), so adapter files and the registry
tell it apart from LoRA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ftnotes.peft import tuners
from ftnotes.peft.lora import LoraConfig, LoRALinear, lora_plan


@dataclass
class DoraConfig(LoraConfig):
    """LoRA's fields (``r``, ``lora_alpha``, ``target_modules``, ...); DoRA wraps nn.Linear only."""

    peft_type: ClassVar[str] = "dora"
    tensor_names: ClassVar[tuple[str, ...]] = ("lora_A", "lora_B", "lora_magnitude_vector")

    def attach(self, model, **kwargs):
        return add_dora(model, self)


class DoRALinear(LoRALinear):
    """DoRA around an ``nn.Linear``. Shapes: x (..., in) -> (..., out).

    ``lora_A`` (r, in), ``lora_B`` (out, r) as in LoRA; ``lora_magnitude_vector`` (out,).
    Output: ``m / ||W + s B A|| * (W x + s B A x) + b``.
    """

    peft_type = "dora"

    def __init__(self, base: nn.Linear, r: int = 4, lora_alpha: float = 8.0, lora_dropout=0.0,
                 use_rslora=False):  # fmt: skip
        super().__init__(base, r, lora_alpha, lora_dropout, use_rslora)
        self.lora_magnitude_vector = nn.Parameter(self.weight_norm())
        self._merged_norm = None

    def reset_parameters(self) -> None:
        """LoRA's init (B = 0) and m = ||W||, so the layer starts as the base layer."""
        super().reset_parameters()
        if hasattr(self, "lora_magnitude_vector"):  # not yet during LoRALinear.__init__
            with torch.no_grad():
                self.lora_magnitude_vector.copy_(self.weight_norm())

    def weight_norm(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """||W + s B A|| per output row, (out,), without gradient (the paper's Sec. 4.3)."""
        with torch.no_grad():
            w = self.base_layer.weight.to(dtype or self.base_layer.weight.dtype)
            return (w + self.get_delta_weight(w.dtype)).norm(p=2, dim=1)

    def magnitude_scale(self) -> torch.Tensor:
        """m / ||W + s B A||, (out,): what each output row is rescaled by."""
        return self.lora_magnitude_vector / self.weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.disabled or self.merged:
            return self.base_layer(x)
        b = self.base_layer
        directed = F.linear(x, b.weight) + self._lora_path(self.lora_dropout(x)) * self.scaling
        out = directed * self.magnitude_scale()
        return out + b.bias if b.bias is not None else out

    @torch.no_grad()
    def _merge(self) -> None:
        """W <- m * (W + s B A) / ||W + s B A||, in float64, rounded once."""
        w = self.base_layer.weight
        w64 = w.double() + self.get_delta_weight(torch.float64)
        self._merged_norm = w64.norm(p=2, dim=1)  # kept: unmerge needs the norm before merging
        scale = self.lora_magnitude_vector.double() / self._merged_norm
        w.copy_((w64 * scale[:, None]).to(w.dtype))

    @torch.no_grad()
    def _unmerge(self) -> None:
        """W <- W' * ||W + s B A|| / m - s B A (the norm saved at merge time)."""
        w = self.base_layer.weight
        scale = self.lora_magnitude_vector.double() / self._merged_norm
        w.copy_((w.double() / scale[:, None] - self.get_delta_weight(torch.float64)).to(w.dtype))
        self._merged_norm = None


def add_dora(model: nn.Module, config: DoraConfig | None = None) -> nn.Module:
    """Wrap every nn.Linear matched by ``config.target_modules`` with DoRA, in place."""
    config = config or DoraConfig()
    return tuners.attach_layers(model, config, lora_plan(model, config, DoRALinear, conv=None))


def dora_layers(model: nn.Module) -> list[tuple[str, DoRALinear]]:
    return tuners.tuner_layers(model, DoRALinear)
