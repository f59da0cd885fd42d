"""IA3: learned vectors that rescale the keys, the values and the MLP's hidden units.

Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context
Learning" (arXiv:2205.05638), Sec. 3.3: "(IA)^3", Infused Adapter by Inhibiting and Amplifying
Inner Activations. Three learned vectors per block multiply activations element-wise:

    keys:   k = l_k * (W_k x + b_k)          l_k: (dim,)
    values: v = l_v * (W_v x + b_v)          l_v: (dim,)
    MLP:    y = W_2 (l_ff * f(W_1 x + b_1)) + b_2,   l_ff: (mlp_hidden,)

so a TinyViT block costs ``dim + dim + mlp_hidden`` trainable numbers (LoRA r=4 on q and v costs
``4 * 4 * dim``). The vectors start at one: training starts from the pretrained function.

In a layer: a module named in ``feedforward_modules`` (``fc2``) scales its *input*
(``ia3_l``: (in,), the MLP hidden units), any other target its *output* (``ia3_l``: (out,)).
Both are linear in the activations, so IA3 merges into the weights (:meth:`IA3Linear.merge`):
output scaling multiplies the rows of W and the bias, input scaling the columns of W. Names
follow peft (``IA3Config``, ``target_modules``, ``feedforward_modules``, ``ia3_l``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ftnotes.peft import tuners
from ftnotes.peft.config import PeftConfig
from ftnotes.peft.tuners import TunerLayer, match_unwrapped, name_matches


def _as_targets(value):
    return value if value is None or isinstance(value, str) else tuple(value)


@dataclass
class IA3Config(PeftConfig):
    """Which layers get an IA3 vector, and which of them scale their input (peft's field names).

    ``target_modules``: names or one regex (matching rules of ``LoraConfig``); the defaults are
    the paper's keys, values and MLP hidden units. ``feedforward_modules``: the targets whose
    *input* is scaled (the MLP's second linear layer, so its input is the hidden units); it
    must name only target modules. ``modules_to_save``: modules kept fully trainable (the head).
    """

    peft_type: ClassVar[str] = "ia3"
    tensor_names: ClassVar[tuple[str, ...]] = ("ia3_l",)
    mergeable: ClassVar[bool] = True
    target_modules: Sequence[str] | str = ("k_proj", "v_proj", "fc2")
    feedforward_modules: Sequence[str] | str = ("fc2",)
    modules_to_save: Sequence[str] = ("head",)

    def __post_init__(self):
        self.feedforward_modules = _as_targets(self.feedforward_modules)
        super().__post_init__()

    def validate(self):
        name = type(self).__name__
        for field in ("target_modules", "feedforward_modules"):
            value = getattr(self, field)
            if not isinstance(value, (str, tuple)) or not all(isinstance(t, str) for t in value):
                raise ValueError(
                    f"{name}.{field} must be a sequence of module names or one regex string, "
                    f"got {value!r}"
                )
        if not self.target_modules:
            raise ValueError(f"{name}.target_modules must name at least one module, got ()")
        ff, targets = self.feedforward_modules, self.target_modules
        if isinstance(ff, tuple) and isinstance(targets, tuple):
            extra = [f for f in ff if f not in targets]
            if extra:
                raise ValueError(
                    f"{name}.feedforward_modules must be a subset of target_modules="
                    f"{targets!r}; not targets: {extra!r}"
                )
        # With a regex on either side the subset rule is checked on the modules it matches.

    def attach(self, model, **kwargs):
        return add_ia3(model, self)


class IA3Linear(TunerLayer):
    """IA3 around an ``nn.Linear``. Shapes: x (..., in) -> (..., out).

    ``is_feedforward=False``: ``out = ia3_l * base(x)``, ``ia3_l``: (out,);
    ``is_feedforward=True``: ``out = base(ia3_l * x)``, ``ia3_l``: (in,).
    The base layer is frozen; ``ia3_l`` starts at ones (the base layer's function).
    """

    peft_type = "ia3"
    mergeable = True

    def __init__(self, base: nn.Linear, is_feedforward: bool = False):
        if not isinstance(base, nn.Linear):
            raise ValueError(f"base must be an nn.Linear, got {type(base).__name__}")
        super().__init__(base)
        self.is_feedforward = bool(is_feedforward)
        size = base.in_features if self.is_feedforward else base.out_features
        w = base.weight
        self.ia3_l = nn.Parameter(torch.empty(size, dtype=w.dtype, device=w.device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """ia3_l = 1: the layer computes exactly what the base layer computes."""
        nn.init.ones_(self.ia3_l)

    @torch.no_grad()
    def _scale(self, inverse: bool) -> None:
        # In float64, then rounded once (like LoRA's _add_delta): unmerge restores W to ~1 ulp.
        base = self.base_layer
        vec = self.ia3_l.double()
        if inverse and bool((vec == 0).any()):
            raise ValueError(
                "cannot unmerge IA3: ia3_l has zero entries, so the weights they scaled are lost"
            )
        factor = 1 / vec if inverse else vec
        w = base.weight
        scale = factor[None, :] if self.is_feedforward else factor[:, None]  # columns / rows
        w.copy_((w.double() * scale).to(w.dtype))
        if base.bias is not None and not self.is_feedforward:  # l * (W x + b): b scales too
            base.bias.copy_((base.bias.double() * factor).to(base.bias.dtype))

    def _merge(self) -> None:
        """W <- W diag(l) (feedforward: columns) or diag(l) W, b <- l * b (rows)."""
        self._scale(inverse=False)

    def _unmerge(self) -> None:
        """Divide back out (ValueError if an entry of ``ia3_l`` is zero)."""
        self._scale(inverse=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.disabled or self.merged:  # merged: the scaling is already inside base_layer
            return self.base_layer(x)
        if self.is_feedforward:
            return self.base_layer(x * self.ia3_l)
        return self.base_layer(x) * self.ia3_l

    def extra_repr(self) -> str:
        return f"is_feedforward={self.is_feedforward}, merged={self.merged}"


# ---- attaching by name -----------------------------------------------------------------------


def ia3_plan(model: nn.Module, config: IA3Config) -> list:
    """``[(name, build)]`` for every target, all checked; raises before anything changes."""
    targets = match_unwrapped(model, config.target_modules, "target_modules", IA3Linear)
    ff = config.feedforward_modules
    if ff:
        # Every module the feedforward names match must be a target (peft's subset rule).
        matched = match_unwrapped(model, ff, "feedforward_modules", IA3Linear)
        outside = sorted(set(matched) - set(targets))
        if outside:
            raise ValueError(
                f"IA3Config.feedforward_modules must be a subset of target_modules; "
                f"feedforward_modules={ff!r} matches {outside[:5]}, which target_modules="
                f"{config.target_modules!r} does not (nothing was changed)"
            )
    plan = []
    for name, module in targets.items():
        if not isinstance(module, nn.Linear):
            raise ValueError(
                f"target_modules matched {name!r}, a {type(module).__name__}; ia3 supports "
                "nn.Linear (nothing was changed)"
            )
        is_ff = bool(ff) and name_matches(name, ff)
        plan.append((name, lambda m, is_ff=is_ff: IA3Linear(m, is_feedforward=is_ff)))
    return plan


def add_ia3(model: nn.Module, config: IA3Config | None = None) -> nn.Module:
    """Wrap every module matched by ``config.target_modules`` with IA3, in place; returns model.

    Checked before the model changes; running it again replaces the IA3 layers (with a
    warning) instead of stacking them; a model with another method attached is refused.
    """
    config = config or IA3Config()
    tuners.refuse_other_method(model, config.peft_type)  # before the plan blames the layer types
    return tuners.attach_layers(model, config, ia3_plan(model, config))


def ia3_layers(model: nn.Module) -> list[tuple[str, IA3Linear]]:
    return tuners.tuner_layers(model, IA3Linear)
