"""BitFit: train only the biases of a frozen network.

Ben Zaken et al. 2022, "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based
Masked Language-models" (arXiv:2106.10199): freeze every weight and train every bias term (and
the new task head). On a TinyViT that is the biases of the patch embedding, of the four
attention projections and two MLP layers and of the LayerNorms: about ``10 * dim`` numbers a
block.

Written here as a layer method so that it follows the one protocol of the others (on/off,
merge, adapter files holding only what trained, :class:`~ftnotes.peft.tasks.TaskBank`):
:class:`BitFitLayer` wraps a module that has a bias and adds a trainable delta on the
output's channel dimension,

    out = base(x) + bitfit_bias,   bitfit_bias: (channels,) = base.bias.shape, starts at 0,

i.e. the module computes with bias ``b + bitfit_bias``. The gradient of the delta is the
gradient of the bias, and ``fit`` puts no weight decay on 1-D tensors (:func:`ftnotes.train.decays`),
so training the delta is the same optimisation as training ``bias`` directly (with weight decay
the delta would be pulled towards the *pretrained* bias instead of towards a zero bias). Merging adds the delta into ``bias``: the model is then the plain backbone again
with only its biases changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ftnotes.peft import tuners
from ftnotes.peft.config import PeftConfig
from ftnotes.peft.tuners import TunerLayer, match_unwrapped, modules_unwrapped, name_matches

#: the module types BitFit wraps, and where their bias goes in the output: "last" (the channels
#: are the trailing dims, as for Linear and LayerNorm) or "channels" (dim 1 of a batch, as for
#: convolutions and batch or group norm).
SUPPORTED = (
    (nn.Linear, "last"),
    (nn.LayerNorm, "last"),
    (nn.modules.conv._ConvNd, "channels"),
    (nn.modules.batchnorm._BatchNorm, "channels"),
    (nn.GroupNorm, "channels"),
)
KINDS = "nn.Linear, nn.LayerNorm, nn.Conv1d/2d/3d, nn.BatchNorm1d/2d/3d, nn.GroupNorm"


def _layout(module: nn.Module) -> str | None:
    for cls, layout in SUPPORTED:
        if isinstance(module, cls):
            return layout
    return None


def _has_bias(module: nn.Module) -> bool:
    return isinstance(getattr(module, "bias", None), nn.Parameter)


@dataclass
class BitFitConfig(PeftConfig):
    """Which biases train.

    ``target_modules=None`` (default): every module with a bias, except those in (or below)
    ``modules_to_save``; otherwise names or one regex (matching rules of ``LoraConfig``), each
    match a module with a bias. ``modules_to_save``: modules kept fully trainable (the head).
    """

    peft_type: ClassVar[str] = "bitfit"
    tensor_names: ClassVar[tuple[str, ...]] = ("bitfit_bias",)
    mergeable: ClassVar[bool] = True
    target_modules: Sequence[str] | str | None = None
    modules_to_save: Sequence[str] = ("head",)

    def validate(self):
        value = self.target_modules
        if value is None:
            return
        if not isinstance(value, (str, tuple)) or not all(isinstance(t, str) for t in value):
            raise ValueError(
                "BitFitConfig.target_modules must be None (every module with a bias), a "
                f"sequence of module names or one regex string, got {value!r}"
            )
        if not value:
            raise ValueError(
                "BitFitConfig.target_modules must name at least one module (or be None for "
                "every module with a bias), got ()"
            )

    def attach(self, model, **kwargs):
        return add_bitfit(model, self)


class BitFitLayer(TunerLayer):
    """A module with a bias plus a trainable bias delta. Shapes: the base module's, e.g.
    Linear (..., in) -> (..., out), Conv2d (B, in, H, W) -> (B, out, H', W'),
    LayerNorm (..., d) -> (..., d). ``bitfit_bias``: ``base.bias.shape``, starts at 0.
    """

    peft_type = "bitfit"
    mergeable = True

    def __init__(self, base: nn.Module):
        layout = _layout(base)
        if layout is None or not _has_bias(base):
            raise ValueError(
                f"base must be one of {KINDS} with a bias, got {type(base).__name__}"
                + ("" if _has_bias(base) else " without a bias")
            )
        super().__init__(base)
        self.layout = layout
        self.bitfit_bias = nn.Parameter(torch.zeros_like(base.bias))

    def reset_parameters(self) -> None:
        """A zero delta: the module computes exactly what the base module computes."""
        nn.init.zeros_(self.bitfit_bias)

    def _delta(self, out: torch.Tensor) -> torch.Tensor:
        if self.layout == "last":
            return self.bitfit_bias
        # (C,) -> (C, 1, ..., 1), one 1 per spatial dim: a conv's kernel dims (its input may be
        # unbatched), a norm's dims after (B, C)
        kernel = getattr(self.base_layer, "kernel_size", None)
        spatial = len(kernel) if kernel is not None else out.dim() - 2
        return self.bitfit_bias.view(-1, *[1] * spatial)

    @torch.no_grad()
    def _add_delta(self, sign: int) -> None:
        b = self.base_layer.bias  # in float64, rounded once, like LoRA's _add_delta
        b.copy_((b.double() + sign * self.bitfit_bias.double()).to(b.dtype))

    def _merge(self) -> None:
        """bias <- bias + bitfit_bias."""
        self._add_delta(+1)

    def _unmerge(self) -> None:
        """bias <- bias - bitfit_bias (restores the bias up to float rounding)."""
        self._add_delta(-1)

    def forward(self, x, *args, **kwargs):
        out = self.base_layer(x, *args, **kwargs)
        if self.disabled or self.merged:  # merged: the delta is already inside bias
            return out
        return out + self._delta(out)

    def extra_repr(self) -> str:
        return f"size={tuple(self.bitfit_bias.shape)}, merged={self.merged}"


# ---- attaching by name -----------------------------------------------------------------------


def _targets(model: nn.Module, config: BitFitConfig) -> dict[str, nn.Module]:
    if config.target_modules is not None:
        return match_unwrapped(model, config.target_modules, "target_modules", BitFitLayer)
    saved = tuple(config.modules_to_save or ())
    found = {}
    for name, module in modules_unwrapped(model, BitFitLayer).items():
        parts = name.split(".")
        under_saved = saved and any(
            name_matches(".".join(parts[:i]), saved) for i in range(1, len(parts) + 1)
        )
        if _has_bias(module) and not under_saved:
            found[name] = module
    if not found:
        raise ValueError(
            f"target_modules=None: this {type(model).__name__} has no module with a bias outside "
            f"modules_to_save={saved!r}"
        )
    return found


def bitfit_plan(model: nn.Module, config: BitFitConfig) -> list:
    """``[(name, build)]`` for every module whose bias trains; raises before any change."""
    plan = []
    for name, module in _targets(model, config).items():
        if _layout(module) is None or not _has_bias(module):
            why = "a type bitfit does not wrap" if _has_bias(module) else "no bias"
            raise ValueError(
                f"target_modules={config.target_modules!r} matched {name!r}, a "
                f"{type(module).__name__} ({why}); bitfit wraps {KINDS} that have a bias: name "
                "those modules in target_modules (nothing was changed)"
            )
        plan.append((name, BitFitLayer))
    return plan


def add_bitfit(model: nn.Module, config: BitFitConfig | None = None) -> nn.Module:
    """Make only the biases (and ``modules_to_save``) trainable, as bias deltas; in place.

    Checked before the model changes; running it again replaces the BitFit layers (with a
    warning) instead of stacking them; a model with another method attached is refused.
    """
    config = config or BitFitConfig()
    return tuners.attach_layers(model, config, bitfit_plan(model, config))


def bitfit_layers(model: nn.Module) -> list[tuple[str, BitFitLayer]]:
    return tuners.tuner_layers(model, BitFitLayer)
