"""Bottleneck adapters: small residual MLPs inserted into a frozen network.

Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP" (arXiv:1902.00751): an
adapter after the attention and after the MLP of every block ("houlsby").
Pfeiffer et al. 2021, "AdapterFusion" (arXiv:2005.00247): one adapter after the MLP only
("pfeiffer"), half the parameters for about the same accuracy.
He et al. 2022, "Towards a Unified View of Parameter-Efficient Transfer Learning"
(arXiv:2110.04366): the adapter as a *parallel* branch, out = sublayer(x) + adapter(x).

An adapter maps h (..., d) to h + up(f(down(h))) with down: d -> d / reduction_factor and
up: d / reduction_factor -> d. ``up`` starts at zero, so each adapter starts as the identity and
training starts from the pretrained function. Unlike LoRA, the non-linearity stops an adapter
from being merged into the weights: it costs extra compute at every inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ftnotes.checks import check_choice, check_int, check_number
from ftnotes.models import TinyViT
from ftnotes.peft import tuners
from ftnotes.peft.config import PeftConfig
from ftnotes.peft.tuners import TunerLayer, match_unwrapped, modules_unwrapped

NON_LINEARITIES = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "swish": nn.SiLU}
PLACEMENTS = ("houlsby", "pfeiffer", "parallel")


def _check_reduction(value, dim: int | None = None) -> None:
    """reduction_factor: finite, >= 1 (a bottleneck no wider than the layer) and, given the
    layer's ``dim``, at most ``dim`` (a bottleneck of at least one unit)."""
    check_number("reduction_factor", value, 1)  # bottleneck = dim // reduction_factor <= dim
    if dim is not None and dim // value < 1:
        raise ValueError(
            f"reduction_factor={value!r} leaves no bottleneck for a layer of size {dim} "
            f"(dim // reduction_factor = 0); allowed: 1 <= reduction_factor <= {dim}"
        )


def _check_non_linearity(value) -> None:
    check_choice("non_linearity", value, sorted(NON_LINEARITIES))


class BottleneckAdapter(nn.Module):
    """h -> h + up(f(down(h))) (or just the branch if ``residual=False``, for parallel use).

    Shapes: ``channel_dim=-1``: (..., dim) -> (..., dim) (transformer tokens);
    ``channel_dim=1``: (B, dim, H, W) -> (B, dim, H, W) (conv feature maps).
    Parameters: down (dim x m + m), up (m x dim + dim), m = dim // reduction_factor
    (1 <= reduction_factor <= dim, so 1 <= m <= dim).
    """

    def __init__(
        self,
        dim: int,
        reduction_factor: float = 16,
        non_linearity: str = "relu",
        channel_dim: int = -1,
        residual: bool = True,
    ):
        super().__init__()
        check_int("dim", dim)
        _check_reduction(reduction_factor, dim)
        _check_non_linearity(non_linearity)
        if channel_dim not in (-1, 1):
            raise ValueError(
                f"channel_dim must be -1 (tokens) or 1 (conv maps), got {channel_dim!r}"
            )
        hidden = int(dim // reduction_factor)
        self.channel_dim, self.residual = channel_dim, residual
        self.down = nn.Linear(dim, hidden)
        self.act = NON_LINEARITIES[non_linearity]()
        self.up = nn.Linear(hidden, dim)
        self.reset_adapter_parameters()

    def reset_adapter_parameters(self) -> None:
        """down as nn.Linear's default; up = 0 so the branch outputs 0 and the adapter starts
        as the identity (Houlsby et al. 2019, Sec. 2.1: "near-identity initialization")."""
        self.down.reset_parameters()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = h.movedim(1, -1) if self.channel_dim == 1 else h
        branch = self.up(self.act(self.down(z)))
        if self.channel_dim == 1:
            branch = branch.movedim(-1, 1)
        return h + branch if self.residual else branch


class AdapterLayer(TunerLayer):
    """A sub-layer with an adapter: serial ``adapter(base_layer(x, ...))`` or parallel
    ``base_layer(x, ...) + adapter(x)``. Extra args (e.g. the attention ``prefix``) pass through.
    """

    peft_type = "adapter"

    def __init__(self, base_layer: nn.Module, adapter: BottleneckAdapter, parallel: bool = False):
        super().__init__(base_layer)
        self.adapter, self.parallel = adapter, parallel

    def reset_parameters(self) -> None:
        self.adapter.reset_adapter_parameters()

    def forward(self, x, *args, **kwargs):
        out = self.base_layer(x, *args, **kwargs)
        if self.disabled:
            return out
        return out + self.adapter(x) if self.parallel else self.adapter(out)


@dataclass
class AdapterConfig(PeftConfig):
    """Where adapters go and how big they are (adapter-hub field names).

    ``placement``: "houlsby" (after every block's attn and mlp), "pfeiffer" (after mlp only),
    "parallel" (beside attn and mlp). For a model that is not a TinyViT, ``target_modules``
    names the modules to wrap (peft matching rules, see ``LoraConfig``); serial unless parallel.
    The defaults are the recipe's (``ftnotes.recipes``, tuned on validation): reduction factor 6.
    """

    peft_type: ClassVar[str] = "adapter"
    tensor_names: ClassVar[tuple[str, ...]] = ("adapter",)
    reduction_factor: float = 6
    non_linearity: str = "relu"
    placement: str = "houlsby"
    target_modules: Sequence[str] | str | None = None
    modules_to_save: Sequence[str] = ("head",)

    def validate(self):
        try:
            _check_reduction(self.reduction_factor)
            _check_non_linearity(self.non_linearity)
        except ValueError as err:
            raise ValueError(f"AdapterConfig.{err}") from None
        check_choice("AdapterConfig.placement", self.placement, PLACEMENTS)

    def attach(self, model, **kwargs):
        return add_adapters(model, self)


def _targets(model: nn.Module, config: AdapterConfig) -> dict[str, nn.Module]:
    """``{name: module}`` to wrap, named as in the model without adapters (see
    :func:`~ftnotes.peft.tuners.modules_unwrapped`)."""
    if config.target_modules is not None:
        return match_unwrapped(model, config.target_modules, "target_modules", AdapterLayer)
    if not isinstance(model, TinyViT):
        raise ValueError(
            f"target_modules=None only works for TinyViT; for a {type(model).__name__} name the "
            "modules to wrap, e.g. target_modules=('layer4',)"
        )
    subs = ("attn", "mlp") if config.placement in ("houlsby", "parallel") else ("mlp",)
    modules = modules_unwrapped(model, AdapterLayer)
    return {n: modules[n] for n in (f"blocks.{i}.{s}" for i in range(len(model.blocks)) for s in subs)}


def _feature_dim(module: nn.Module, name: str) -> tuple[int, int]:
    """(output dim, channel_dim) of ``module``: its own out size, else its last layer's."""
    for m in [module, *reversed(list(module.modules()))]:
        for attr, channel_dim in (("out_features", -1), ("out_channels", 1), ("num_features", 1)):
            if isinstance(getattr(m, attr, None), int):
                return getattr(m, attr), channel_dim
    raise ValueError(f"cannot infer the feature size of {name!r} ({type(module).__name__})")


def _plan(model: nn.Module, config: AdapterConfig) -> list:
    """``[(name, build)]`` for every module to wrap, all checked; raises before any change.

    On a model that already has adapters, a wrapped sub-layer counts as its base layer.
    """
    parallel = config.placement == "parallel"
    plan = []
    for name, module in _targets(model, config).items():
        dim, channel_dim = _feature_dim(module, name)
        in_dim = getattr(module, "in_features", getattr(module, "in_channels", dim))
        if parallel and in_dim != dim:
            raise ValueError(
                f"placement='parallel' needs in size == out size; {name!r} maps {in_dim} -> {dim}"
            )
        _check_reduction(config.reduction_factor, dim)

        def build(module, dim=dim, channel_dim=channel_dim):
            adapter = BottleneckAdapter(dim, config.reduction_factor, config.non_linearity,
                                        channel_dim, residual=not parallel)  # fmt: skip
            ref = next(module.parameters(), None)
            if ref is not None:
                adapter.to(device=ref.device, dtype=ref.dtype)
            return AdapterLayer(module, adapter, parallel)

        plan.append((name, build))
    return plan


def adapter_layers(model: nn.Module) -> list[tuple[str, AdapterLayer]]:
    return tuners.tuner_layers(model, AdapterLayer)


def mark_only_adapters_as_trainable(model: nn.Module, modules_to_save: Sequence[str] = ()) -> None:
    """Freeze everything but the adapters and the modules named in ``modules_to_save``."""
    tuners.mark_only_trainable(model, AdapterConfig.owns, modules_to_save)


def add_adapters(model: nn.Module, config: AdapterConfig | None = None) -> nn.Module:
    """Insert bottleneck adapters in place (see :class:`AdapterConfig`); returns ``model``.

    Running it again replaces the adapters (with a warning) instead of stacking them.
    """
    config = config or AdapterConfig()
    return tuners.attach_layers(model, config, _plan(model, config))


def remove_adapters(model: nn.Module) -> nn.Module:
    """Unwrap every adapter, leaving the original sub-layers (adapters cannot be merged)."""
    return tuners.remove(model, False, AdapterLayer)


def set_adapters_enabled(model: nn.Module, flag: bool) -> nn.Module:
    """Switch every adapter on or off (off: the base model's outputs, bit for bit)."""
    return tuners.set_enabled(model, flag, AdapterLayer)
