"""LoRA: low-rank adaptation of frozen weights.

Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models" (arXiv:2106.09685).
A frozen weight ``W`` (out x in) is adapted by a trainable low-rank update

    h = W x + (lora_alpha / r) * B A x,   A: (r, in), B: (out, r),

so a layer costs ``r * (in + out)`` trainable numbers instead of ``in * out``. ``B`` starts at
zero, so the update is zero and training starts from the pretrained function. After training,
``B A`` can be added into ``W`` (:meth:`LoRALinear.merge`): inference then costs exactly what
the bare backbone costs. The names follow loralib/peft (``lora_A``, ``lora_B``, ``scaling``,
``merge``, ``unmerge``, ``get_delta_weight``, ``mark_only_lora_as_trainable``,
``lora_state_dict``) so that their documentation reads the same way.

Merging is explicit on purpose: loralib tied it to ``train()``/``eval()`` and it silently never
ran (microsoft/LoRA #34, #61).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ftnotes.checks import check_bool, check_int, check_number
from ftnotes.peft import tuners
from ftnotes.peft.config import PeftConfig
from ftnotes.peft.tuners import TunerLayer, match_unwrapped, module_of, name_matches


@dataclass
class LoraConfig(PeftConfig):
    """Which layers get LoRA and how big it is (peft's ``LoraConfig`` field names).

    ``target_modules``: a sequence of names, each matching a module whose qualified name equals
    it or ends with ``"." + name`` (``"q_proj"`` matches ``blocks.0.attn.q_proj``), or one string
    used as a regular expression that must match the whole qualified name.
    ``modules_to_save``: modules kept fully trainable (the new task head).
    ``use_rslora``: rank-stabilised scaling ``lora_alpha / sqrt(r)`` instead of
    ``lora_alpha / r`` (Kalajdzievski 2023, arXiv:2312.03732: with ``1/r`` the update shrinks as
    the rank grows, so large ranks learn slower at the same rate; peft's ``use_rslora``).
    """

    peft_type: ClassVar[str] = "lora"
    tensor_names: ClassVar[tuple[str, ...]] = ("lora_A", "lora_B")
    mergeable: ClassVar[bool] = True
    r: int = 4
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    target_modules: Sequence[str] | str = ("q_proj", "v_proj")
    modules_to_save: Sequence[str] = ("head",)
    use_rslora: bool = False

    def validate(self):
        name = type(self).__name__
        check_int(f"{name}.r", self.r)
        check_bool(f"{name}.use_rslora", self.use_rslora)
        check_number(f"{name}.lora_alpha", self.lora_alpha, 0, strict=True)
        check_number(f"{name}.lora_dropout", self.lora_dropout, 0)
        if not self.lora_dropout < 1:  # 1 drops every input
            raise ValueError(f"{name}.lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if not self.target_modules:
            raise ValueError(f"{name}.target_modules must name at least one module, got ()")

    @property
    def scaling(self) -> float:
        """What ``B A x`` is multiplied by: ``lora_alpha / r`` (or ``/ sqrt(r)`` with rsLoRA)."""
        return self.lora_alpha / (math.sqrt(self.r) if self.use_rslora else self.r)

    def attach(self, model, **kwargs):
        return add_lora(model, self)


class LoRALayer(TunerLayer):
    """What LoRA layers share: ``base_layer`` (frozen), ``lora_A``, ``lora_B``, ``scaling``,
    merge and the on/off switch of :class:`~ftnotes.peft.tuners.TunerLayer`.

    Subclasses define ``_lora_path(x)`` (the B A x term); :meth:`get_delta_weight` views the
    (out, fan_in) matrix B A in the base weight's shape.
    """

    peft_type = "lora"
    mergeable = True

    def __init__(self, base: nn.Module, fan_in: int, fan_out: int, r, lora_alpha, lora_dropout,
                 use_rslora=False):  # fmt: skip
        super().__init__(base)
        config = LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                            use_rslora=use_rslora)  # validates the numbers  # fmt: skip
        self.r, self.lora_alpha, self.use_rslora = r, lora_alpha, use_rslora
        self.scaling = config.scaling
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, fan_in, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.empty(fan_out, r, dtype=w.dtype, device=w.device))
        # Dropout acts on the LoRA input only: the frozen path must stay the pretrained function.
        self.lora_dropout = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A like nn.Linear's default (Kaiming-uniform, a=sqrt(5)); B = 0 so B A = 0 at start."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def get_delta_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Delta W = B @ A * scaling in the base weight's shape (computed in ``dtype`` if given)."""
        dtype = dtype or self.lora_A.dtype  # .to() to the same dtype returns the tensor itself
        delta = self.lora_B.to(dtype) @ self.lora_A.to(dtype) * self.scaling
        return delta.view_as(self.base_layer.weight)

    @torch.no_grad()
    def _add_delta(self, sign: int) -> None:
        # In float64, then rounded once: W +/- delta is as exact as float32 allows, so merge
        # changes outputs only by matmul rounding and unmerge restores W to about 1 ulp.
        w = self.base_layer.weight
        delta = self.get_delta_weight(torch.float64)
        w.copy_((w.double() + sign * delta).to(w.dtype))

    def _merge(self) -> None:
        """W <- W + B A * scaling."""
        self._add_delta(+1)

    def _unmerge(self) -> None:
        """W <- W - B A * scaling (restores W up to float rounding, ~1e-7)."""
        self._add_delta(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.disabled or self.merged:  # merged: the delta is already inside base_layer
            return out
        return out + self._lora_path(self.lora_dropout(x)) * self.scaling


class LoRALinear(LoRALayer):
    """LoRA around an ``nn.Linear``. Shapes: x (..., in) -> (..., out).

    ``lora_A``: (r, in), ``lora_B``: (out, r); the base layer is frozen here.
    """

    def __init__(self, base: nn.Linear, r: int = 4, lora_alpha: float = 8.0, lora_dropout=0.0,
                 use_rslora=False):  # fmt: skip
        if not isinstance(base, nn.Linear):
            raise ValueError(f"base must be an nn.Linear, got {type(base).__name__}")
        super().__init__(base, base.in_features, base.out_features, r, lora_alpha, lora_dropout,
                         use_rslora)  # fmt: skip

    def _lora_path(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.lora_A), self.lora_B)  # B (A x)

    def extra_repr(self) -> str:
        rs = ", use_rslora=True" if self.use_rslora else ""
        return f"r={self.r}, lora_alpha={self.lora_alpha}{rs}, merged={self.merged}"


class LoRAConv2d(LoRALayer):
    """LoRA around an ``nn.Conv2d`` (groups=1). Shapes: (B, in, H, W) -> (B, out, H', W').

    The delta is a matrix (out, in*kh*kw) viewed as a kernel. It is computed as two
    convolutions: A as an (r, in, kh, kw) kernel with the base stride/padding, then B as a 1x1
    conv, which equals convolving with the delta kernel but costs r channels instead of out.
    """

    def __init__(self, base: nn.Conv2d, r: int = 4, lora_alpha: float = 8.0, lora_dropout=0.0,
                 use_rslora=False):  # fmt: skip
        if not isinstance(base, nn.Conv2d):
            raise ValueError(f"base must be an nn.Conv2d, got {type(base).__name__}")
        self.check_supported(base)
        kh, kw = base.kernel_size
        fan_in = base.in_channels * kh * kw
        super().__init__(base, fan_in, base.out_channels, r, lora_alpha, lora_dropout, use_rslora)

    @staticmethod
    def check_supported(base: nn.Conv2d, name: str = "base") -> None:
        """ValueError unless ``base`` has groups=1 and zero padding (what the two-conv path needs)."""
        if base.groups != 1 or base.padding_mode != "zeros":
            raise ValueError(
                f"LoRAConv2d supports groups=1 and padding_mode='zeros', got {name} with "
                f"groups={base.groups}, padding_mode={base.padding_mode!r}"
            )

    def _lora_path(self, x: torch.Tensor) -> torch.Tensor:
        b = self.base_layer
        a_kernel = self.lora_A.view(self.r, b.in_channels, *b.kernel_size)
        h = F.conv2d(x, a_kernel, None, b.stride, b.padding, b.dilation)  # (B, r, H', W')
        return F.conv2d(h, self.lora_B[:, :, None, None])  # (B, out, H', W')


# ---- attaching by name -----------------------------------------------------------------------


def lora_plan(model: nn.Module, config: LoraConfig, linear=LoRALinear, conv=LoRAConv2d) -> list:
    """``[(name, build)]`` for every module to wrap; raises before anything changes.

    On a model that already has LoRA, a wrapped layer counts as its base layer, so the plan is
    the one that applies after the old LoRA is removed. ``linear`` / ``conv``: the layer classes
    (DoRA passes its own).
    """
    kw = dict(r=config.r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
              use_rslora=config.use_rslora)  # fmt: skip
    plan = []
    for name, module in match_unwrapped(model, config.target_modules, "target_modules").items():
        if isinstance(module, nn.Linear):
            plan.append((name, lambda m: linear(m, **kw)))
        elif isinstance(module, nn.Conv2d) and conv is not None:
            LoRAConv2d.check_supported(module, f"target_modules match {name!r}")
            plan.append((name, lambda m: conv(m, **kw)))
        else:
            allowed = "nn.Linear and nn.Conv2d" if conv is not None else "nn.Linear"
            raise ValueError(
                f"target_modules matched {name!r}, a {type(module).__name__}; "
                f"{config.peft_type} supports {allowed} (nothing was changed)"
            )
    return plan


def add_lora(model: nn.Module, config: LoraConfig | None = None) -> nn.Module:
    """Wrap every module matched by ``config.target_modules`` with LoRA, in place; returns model.

    Everything is checked before the model changes: a bad target or ``modules_to_save`` name
    raises and leaves the model as it was. Running it again replaces the LoRA layers (with a
    warning) instead of stacking LoRA on LoRA; a model with another method attached is refused.
    """
    config = config or LoraConfig()
    return tuners.attach_layers(model, config, lora_plan(model, config))


def lora_layers(model: nn.Module) -> list[tuple[str, LoRALayer]]:
    return tuners.tuner_layers(model, LoRALayer)


def mark_only_lora_as_trainable(model: nn.Module, modules_to_save: Sequence[str] = ()) -> None:
    """Freeze everything but ``lora_A``/``lora_B`` and the modules named in ``modules_to_save``."""
    tuners.mark_only_trainable(model, LoraConfig.owns, modules_to_save)


def merge_lora(model: nn.Module) -> nn.Module:
    return tuners.merge(model, LoRALayer)


def unmerge_lora(model: nn.Module) -> nn.Module:
    return tuners.unmerge(model, LoRALayer)


def set_lora_enabled(model: nn.Module, flag: bool) -> nn.Module:
    """Switch every LoRA layer on (True) or off (False: the base model, bit for bit)."""
    return tuners.set_enabled(model, flag, LoRALayer)


def lora_state_dict(model: nn.Module, modules_to_save: Sequence[str] = ()) -> dict:
    """Only the ``lora_A``/``lora_B`` tensors (plus ``modules_to_save``): what a LoRA file holds."""
    owns = getattr(getattr(model, "peft_config", None), "owns", LoraConfig.owns)  # DoRA: + magnitude
    keep = {}
    for key, value in model.state_dict().items():
        if owns(key) or (
            modules_to_save and name_matches(module_of(key), tuple(modules_to_save))
        ):
            keep[key] = value.detach().clone()
    return keep


def remove_lora(model: nn.Module, merge: bool = False) -> nn.Module:
    """Unwrap every LoRA layer back to its plain base layer, folding the delta in if ``merge``."""
    return tuners.remove(model, merge, LoRALayer)
