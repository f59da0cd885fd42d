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
import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ftnotes.utils import check_int


@dataclass
class LoraConfig:
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
    r: int = 4
    lora_alpha: float = 8.0
    lora_dropout: float = 0.0
    target_modules: Sequence[str] | str = ("q_proj", "v_proj")
    modules_to_save: Sequence[str] = ("head",)
    use_rslora: bool = False

    def __post_init__(self):
        check_int("LoraConfig.r", self.r)
        if not isinstance(self.use_rslora, bool):
            raise ValueError(f"LoraConfig.use_rslora must be True or False, got {self.use_rslora!r}")
        if (isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, (int, float))
                or not 0 < self.lora_alpha < math.inf):  # fmt: skip
            raise ValueError(
                f"LoraConfig.lora_alpha must be a finite number > 0, got {self.lora_alpha!r}"
            )
        if not isinstance(self.lora_dropout, (int, float)) or not 0 <= self.lora_dropout < 1:
            raise ValueError(
                f"LoraConfig.lora_dropout must be in [0, 1), got {self.lora_dropout!r}"
            )
        if not isinstance(self.target_modules, str):
            self.target_modules = tuple(self.target_modules)
        if not self.target_modules:
            raise ValueError("LoraConfig.target_modules must name at least one module, got ()")
        self.modules_to_save = tuple(self.modules_to_save)

    def to_dict(self) -> dict:
        return asdict(self)


class LoRALayer(nn.Module):
    """What LoRA layers share: ``base_layer`` (frozen here), ``lora_A``, ``lora_B``, merge and
    the on/off flag.

    Subclasses define ``_lora_path(x)`` (the B A x term); :meth:`get_delta_weight` views the
    (out, fan_in) matrix B A in the base weight's shape.
    """

    def __init__(self, base: nn.Module, fan_in: int, fan_out: int, r, lora_alpha, lora_dropout,
                 use_rslora=False):  # fmt: skip
        super().__init__()
        LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                   use_rslora=use_rslora)  # validates the numbers  # fmt: skip
        self.base_layer = base.requires_grad_(False)
        self.r, self.lora_alpha, self.use_rslora = r, lora_alpha, use_rslora
        self.scaling = lora_alpha / math.sqrt(r) if use_rslora else lora_alpha / r
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, fan_in, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.empty(fan_out, r, dtype=w.dtype, device=w.device))
        # Dropout acts on the LoRA input only: the frozen path must stay the pretrained function.
        self.lora_dropout = nn.Dropout(lora_dropout) if lora_dropout > 0 else nn.Identity()
        self.merged = False
        self.disabled = False
        self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
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

    def merge(self) -> None:
        """W <- W + B A * scaling. Merging twice would add the delta twice, so it is a no-op."""
        if self.merged:
            warnings.warn("LoRA layer already merged; merge() ignored", stacklevel=2)
            return
        self._add_delta(+1)
        self.merged = True

    def unmerge(self) -> None:
        """W <- W - B A * scaling (restores W up to float rounding, ~1e-7)."""
        if not self.merged:
            warnings.warn("LoRA layer is not merged; unmerge() ignored", stacklevel=2)
            return
        self._add_delta(-1)
        self.merged = False

    def disable_adapters(self) -> None:
        """Run the base layer alone: outputs are bit-for-bit those of the base layer."""
        if self.merged:
            # The delta is inside W now; subtracting it back is exact only to ~1e-7.
            raise RuntimeError("cannot disable a merged LoRA layer: call unmerge() first")
        self.disabled = True

    def enable(self) -> None:
        self.disabled = False

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


# ---- attaching by name (also used by ftnotes.peft.adapters) ----------------------------------


def name_matches(name: str, targets: Sequence[str] | str) -> bool:
    """peft's rule: a string is a full regex; a list matches names equal or ending in ``.t``."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def find_modules(model: nn.Module, targets: Sequence[str] | str, field: str) -> list[str]:
    """Qualified names of the modules matching ``targets``; ValueError listing real names if none."""
    names = [n for n, _ in model.named_modules() if n and name_matches(n, targets)]
    if not names:
        _no_match(field, targets, [n for n, _ in model.named_modules() if n])
    return names


def _no_match(field: str, targets, existing: list[str]) -> None:
    sample = ", ".join(existing[:12]) + (", ..." if len(existing) > 12 else "")
    raise ValueError(f"{field}={targets!r} matches no module; modules include: {sample}")


def modules_unwrapped(model: nn.Module, wrapper: type) -> dict[str, nn.Module]:
    """``{name: module}`` as the model will be once every ``wrapper`` layer is removed.

    A wrapper's name maps to its ``base_layer``, the names below a base layer lose their
    ``base_layer`` segment, and a wrapper's own parts (its adapter, its dropout) are left out:
    so matching targets on a model that already has the method plans the same change as on the
    bare model.
    """
    wrappers = [n for n, m in model.named_modules() if n and isinstance(m, wrapper)]
    out = {}
    for name, module in model.named_modules():
        if not name:
            continue
        if any(name.startswith(w + ".") and not name.startswith(w + ".base_layer") for w in wrappers):
            continue  # a part of the wrapper, not of the model it wraps
        canonical = ".".join(s for s in name.split(".") if s != "base_layer")
        out.setdefault(canonical, module.base_layer if isinstance(module, wrapper) else module)
    return out


def match_unwrapped(model: nn.Module, targets, field: str, wrapper: type) -> dict[str, nn.Module]:
    """The entries of :func:`modules_unwrapped` whose names match ``targets`` (ValueError if none)."""
    modules = modules_unwrapped(model, wrapper)
    found = {n: m for n, m in modules.items() if name_matches(n, targets)}
    if not found:
        _no_match(field, targets, list(modules))
    return found


def module_of(key: str) -> str:
    """The module a parameter belongs to, wrapper names dropped: ``head.base_layer.weight`` -> ``head``."""
    return ".".join(s for s in key.split(".")[:-1] if s != "base_layer")


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` at the qualified ``name`` inside ``model``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def lora_layers(model: nn.Module) -> list[tuple[str, LoRALayer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALayer)]


def mark_only_lora_as_trainable(model: nn.Module, modules_to_save: Sequence[str] = ()) -> None:
    """Freeze everything but ``lora_A``/``lora_B`` and the modules named in ``modules_to_save``."""
    for p in model.parameters():
        p.requires_grad_(False)
    for _, layer in lora_layers(model):
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    if modules_to_save:
        for name in find_modules(model, tuple(modules_to_save), "modules_to_save"):
            model.get_submodule(name).requires_grad_(True)


def attached_method(model: nn.Module) -> str | None:
    """The ``peft_type`` of the method ``model`` carries ("lora", "adapter", ...), else None:
    its ``peft_config``, or failing that the layers it has."""
    attached = getattr(getattr(model, "peft_config", None), "peft_type", None)
    if attached is None and lora_layers(model):
        attached = "lora"
    if attached is None:
        from ftnotes.peft.adapters import adapter_layers  # adapters imports this module

        attached = "adapter" if adapter_layers(model) else None
    return attached


def refuse_other_method(model: nn.Module, method: str) -> None:
    """ValueError if ``model`` already carries a PEFT method other than ``method``.

    Attaching a second method would freeze the first one's tensors without a word (each
    method's ``mark_only_*_as_trainable`` freezes everything it does not own).
    """
    other = attached_method(model)
    if other is not None and other != method:
        undo = {"lora": "remove_lora(model) (merge=True keeps what it learned)",
                "adapter": "remove_adapters(model)"}.get(other, "start from load_pretrained()")  # fmt: skip
        raise ValueError(
            f"model already has {other} attached; cannot add {method} on top (it would freeze "
            f"the {other} tensors): call {undo} first, or start from a fresh backbone"
        )


def _lora_targets(model: nn.Module, config: LoraConfig) -> list[tuple[str, type]]:
    """(name, LoRA layer class) for every module to wrap; raises before anything changes.

    On a model that already has LoRA, a wrapped layer counts as its base layer, so the plan is
    the one that applies after the old LoRA is removed.
    """
    plan = []
    for name, module in match_unwrapped(model, config.target_modules, "target_modules",
                                        LoRALayer).items():  # fmt: skip
        if isinstance(module, nn.Linear):
            plan.append((name, LoRALinear))
        elif isinstance(module, nn.Conv2d):
            LoRAConv2d.check_supported(module, f"target_modules match {name!r}")
            plan.append((name, LoRAConv2d))
        else:
            raise ValueError(
                f"target_modules matched {name!r}, a {type(module).__name__}; LoRA supports "
                "nn.Linear and nn.Conv2d (nothing was changed)"
            )
    if config.modules_to_save:
        match_unwrapped(model, tuple(config.modules_to_save), "modules_to_save", LoRALayer)
    return plan


def add_lora(model: nn.Module, config: LoraConfig | None = None) -> nn.Module:
    """Wrap every module matched by ``config.target_modules`` with LoRA, in place; returns model.

    Everything is checked before the model changes: a bad target or ``modules_to_save`` name
    raises and leaves the model as it was. Running it again replaces the LoRA layers (with a
    warning) instead of stacking LoRA on LoRA; a model with another method attached is refused.
    """
    config = config or LoraConfig()
    refuse_other_method(model, "lora")
    plan = _lora_targets(model, config)
    if lora_layers(model):
        warnings.warn(
            "model already has LoRA layers: removing them before adding new ones", stacklevel=2
        )
        remove_lora(model, merge=False)
    for name, layer_cls in plan:
        module = model.get_submodule(name)
        replace_module(
            model, name, layer_cls(module, config.r, config.lora_alpha, config.lora_dropout,
                                   config.use_rslora)  # fmt: skip
        )
    mark_only_lora_as_trainable(model, config.modules_to_save)
    model.peft_config = config
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    for _, layer in lora_layers(model):
        if not layer.merged:
            layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    for _, layer in lora_layers(model):
        if layer.merged:
            layer.unmerge()
    return model


def set_lora_enabled(model: nn.Module, flag: bool) -> nn.Module:
    """Switch every LoRA layer on (True) or off (False: the base model, bit for bit)."""
    for _, layer in lora_layers(model):
        layer.enable() if flag else layer.disable_adapters()
    return model


def lora_state_dict(model: nn.Module, modules_to_save: Sequence[str] = ()) -> dict:
    """Only the ``lora_A``/``lora_B`` tensors (plus ``modules_to_save``): what a LoRA file holds."""
    keep = {}
    for key, value in model.state_dict().items():
        if key.split(".")[-1].startswith("lora_") or (
            modules_to_save and name_matches(module_of(key), tuple(modules_to_save))
        ):
            keep[key] = value.detach().clone()
    return keep


def remove_lora(model: nn.Module, merge: bool = False) -> nn.Module:
    """Unwrap every LoRA layer back to its plain base layer, folding the delta in if ``merge``."""
    for name, layer in lora_layers(model):
        if merge and not layer.merged:
            layer.merge()
        elif not merge and layer.merged:
            layer.unmerge()
        replace_module(model, name, layer.base_layer)
    if hasattr(model, "peft_config") and isinstance(model.peft_config, LoraConfig):
        del model.peft_config
    return model
