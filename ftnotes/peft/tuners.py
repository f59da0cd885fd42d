"""What every PEFT method shares: finding modules by name, wrapping them, one on/off protocol.

peft calls this layer of the library ``tuners_utils`` (``BaseTunerLayer``, ``inject_adapter``).
Two kinds of method:

* **layer methods** (LoRA, DoRA, adapters, IA3, BitFit) replace some modules in place by a
  :class:`TunerLayer` that holds the frozen ``base_layer`` and the method's tensors;
  :func:`attach_layers` does it for all of them, checking everything before the model changes;
* **wrapper methods** (prompt and prefix tuning) wrap the whole backbone in a
  :class:`PeftWrapper` that feeds it extra tokens.

Either kind switches off the same way (:func:`set_enabled`: the base model's outputs, bit for
bit) and layer methods that can merge do so through :func:`merge` / :func:`unmerge`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import ClassVar

from torch import nn

# ---- names ----------------------------------------------------------------------------------


def name_matches(name: str, targets: Sequence[str] | str) -> bool:
    """peft's rule: a string is a full regex; a list matches names equal or ending in ``.t``."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def _no_match(field: str, targets, existing: list[str]) -> None:
    sample = ", ".join(existing[:12]) + (", ..." if len(existing) > 12 else "")
    raise ValueError(f"{field}={targets!r} matches no module; modules include: {sample}")


def find_modules(model: nn.Module, targets: Sequence[str] | str, field: str) -> list[str]:
    """Qualified names of the modules matching ``targets``; ValueError listing real names if none."""
    names = [n for n, _ in model.named_modules() if n and name_matches(n, targets)]
    if not names:
        _no_match(field, targets, [n for n, _ in model.named_modules() if n])
    return names


def modules_unwrapped(model: nn.Module, wrapper: type | None = None) -> dict[str, nn.Module]:
    """``{name: module}`` as the model will be once every ``wrapper`` layer (default: every
    :class:`TunerLayer`) is removed.

    A wrapper's name maps to its ``base_layer``, the names below a base layer lose their
    ``base_layer`` segment, and a wrapper's own parts (its adapter, its dropout) are left out:
    so matching targets on a model that already has the method plans the same change as on the
    bare model.
    """
    wrapper = wrapper or TunerLayer
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


def match_unwrapped(model: nn.Module, targets, field: str, wrapper: type | None = None) -> dict:
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


# ---- the two kinds of method ------------------------------------------------------------------


class TunerLayer(nn.Module):
    """A frozen ``base_layer`` plus a method's trainable tensors (peft's ``BaseTunerLayer``).

    Subclasses set ``peft_type`` and ``mergeable``, define ``forward`` (which must return
    ``self.base_layer(...)`` unchanged while ``self.disabled``) and, if mergeable,
    ``_merge`` / ``_unmerge``; ``reset_parameters`` gives fresh method tensors (used by
    ``TaskBank`` for a new task).
    """

    peft_type: ClassVar[str] = ""
    mergeable: ClassVar[bool] = False

    def __init__(self, base_layer: nn.Module):
        super().__init__()
        self.base_layer = base_layer.requires_grad_(False)
        self.merged = False
        self.disabled = False

    def reset_parameters(self) -> None:
        raise NotImplementedError(f"{type(self).__name__}.reset_parameters")

    def enable_adapters(self, enabled: bool = True) -> None:
        """On (the method's output) or off (the base layer alone, bit for bit)."""
        if not enabled and self.merged:
            # The delta is inside the base weights now; taking it out again is exact only to
            # float rounding, so "off" could not be the base layer bit for bit.
            raise RuntimeError(
                f"cannot disable a merged {self.peft_type} layer: call unmerge() first"
            )
        self.disabled = not enabled

    def merge(self) -> None:
        """Fold the method into ``base_layer``'s weights. Merging twice is a no-op (warning)."""
        if not self.mergeable:
            raise ValueError(f"{self.peft_type} cannot be merged into the weights")
        if self.merged:
            warnings.warn(f"{self.peft_type} layer already merged; merge() ignored", stacklevel=2)
            return
        self._merge()
        self.merged = True

    def unmerge(self) -> None:
        """Take the method back out of the weights (exact up to float rounding)."""
        if not self.merged:
            warnings.warn(f"{self.peft_type} layer is not merged; unmerge() ignored", stacklevel=2)
            return
        self._unmerge()
        self.merged = False

    def _merge(self) -> None:
        raise NotImplementedError

    def _unmerge(self) -> None:
        raise NotImplementedError


class PeftWrapper(nn.Module):
    """A frozen backbone ``base`` inside a wrapper that adds tokens (prompt, prefix tuning).

    Subclasses set ``peft_config``, ``base`` and their head(s), and implement
    :meth:`for_loading`. Subclasses are registered by name in :data:`WRAPPERS` (adapter files
    record the name). ``disabled``: the base features without the method's tokens.
    """

    is_peft_wrapper = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        WRAPPERS[cls.__name__] = cls

    def __init__(self):
        super().__init__()
        self.disabled = False

    def enable_adapters(self, enabled: bool = True) -> None:
        self.disabled = not enabled

    @classmethod
    def for_loading(cls, base, config, state_dict: dict, num_classes) -> PeftWrapper:
        """A fresh wrapper shaped for an adapter file's ``state_dict`` (values loaded after)."""
        raise NotImplementedError(f"{cls.__name__}.for_loading")


#: wrapper class name -> class, filled by subclassing :class:`PeftWrapper`.
WRAPPERS: dict[str, type[PeftWrapper]] = {}


# ---- the model-level operations every method shares ----------------------------------------


def tuner_layers(model: nn.Module, layer_type: type | None = None) -> list[tuple[str, TunerLayer]]:
    """``(name, layer)`` of every :class:`TunerLayer` (or of ``layer_type``) in ``model``."""
    layer_type = layer_type or TunerLayer
    return [(n, m) for n, m in model.named_modules() if isinstance(m, layer_type)]


def attached_method(model: nn.Module) -> str | None:
    """The ``peft_type`` of the method ``model`` carries ("lora", "adapter", ...), else None:
    its ``peft_config``, or failing that the layers it has."""
    attached = getattr(getattr(model, "peft_config", None), "peft_type", None)
    if attached is None:
        types = {layer.peft_type for _, layer in tuner_layers(model)}
        attached = types.pop() if len(types) == 1 else (", ".join(sorted(types)) or None)
    return attached


def refuse_other_method(model: nn.Module, method: str) -> None:
    """ValueError if ``model`` already carries a PEFT method other than ``method``.

    Attaching a second method would freeze the first one's tensors without a word (each
    method marks only its own tensors trainable).
    """
    other = attached_method(model)
    if other is not None and other != method:
        undo = ("remove_lora(model) (merge=True keeps what it learned)" if other == "lora"
                else "remove_adapters(model)" if other == "adapter"
                else "peft.remove(model)" if tuner_layers(model)
                else "start from load_pretrained()")  # fmt: skip
        raise ValueError(
            f"model already has {other} attached; cannot add {method} on top (it would freeze "
            f"the {other} tensors): call {undo} first, or start from a fresh backbone"
        )


def mark_only_trainable(model: nn.Module, owns, modules_to_save: Sequence[str] = ()) -> None:
    """Freeze everything but the parameters for which ``owns(name)`` is true and the modules
    named in ``modules_to_save`` (the new task head)."""
    for name, p in model.named_parameters():
        p.requires_grad_(owns(name))
    if modules_to_save:
        for name in find_modules(model, tuple(modules_to_save), "modules_to_save"):
            model.get_submodule(name).requires_grad_(True)


def attach_layers(model: nn.Module, config, plan: list) -> nn.Module:
    """Replace modules by tuner layers in place: the shared part of every ``add_*``.

    ``plan``: ``[(name, build)]`` from the method, every name already checked, where
    ``build(module)`` returns the :class:`TunerLayer` for that module. ``modules_to_save`` is
    checked too before anything changes. A model that has another method is refused; one that
    has this method gets its old layers removed first (with a warning), so running a cell twice
    never stacks a second set.
    """
    refuse_other_method(model, config.peft_type)
    if config.modules_to_save:
        match_unwrapped(model, tuple(config.modules_to_save), "modules_to_save")
    if tuner_layers(model):
        warnings.warn(
            f"model already has {config.peft_type} layers: removing them before adding new ones",
            stacklevel=3,
        )
        remove(model)
    for name, build in plan:
        replace_module(model, name, build(model.get_submodule(name)))
    mark_only_trainable(model, config.owns, config.modules_to_save)
    model.peft_config = config
    return model


def set_enabled(model: nn.Module, flag: bool, layer_type: type | None = None) -> nn.Module:
    """Switch the method on (True) or off (False: the base model's outputs, bit for bit), for
    tuner layers and wrappers alike."""
    if isinstance(model, PeftWrapper):
        model.enable_adapters(flag)
    for _, layer in tuner_layers(model, layer_type):
        layer.enable_adapters(flag)
    return model


def _refuse_wrapper(model: nn.Module) -> None:
    if isinstance(model, PeftWrapper):  # without this, merge() found no layer and did nothing
        raise ValueError(
            f"{model.peft_config.peft_type} cannot be merged into the weights: its learned "
            "tokens are extra inputs to attention, not a change of a weight (peft #1030); "
            "keep using the wrapper"
        )


def merge(model: nn.Module, layer_type: type | None = None) -> nn.Module:
    """Merge every (not yet merged) tuner layer; ValueError if the method cannot merge."""
    _refuse_wrapper(model)
    for _, layer in tuner_layers(model, layer_type):
        if not layer.merged:
            layer.merge()
    return model


def unmerge(model: nn.Module, layer_type: type | None = None) -> nn.Module:
    for _, layer in tuner_layers(model, layer_type):
        if layer.merged:
            layer.unmerge()
    return model


def remove(model: nn.Module, merge: bool = False, layer_type: type | None = None) -> nn.Module:
    """Unwrap every tuner layer back to its plain base layer, folding the method in if
    ``merge`` (mergeable methods only) and taking it out of merged layers otherwise."""
    if merge:
        _refuse_wrapper(model)
    layers = tuner_layers(model, layer_type)
    if merge and any(not layer.mergeable for _, layer in layers):
        raise ValueError(f"{attached_method(model)} cannot be merged: use merge=False")
    for name, layer in layers:
        if merge and not layer.merged:
            layer.merge()
        elif not merge and layer.merged:
            layer.unmerge()
        replace_module(model, name, layer.base_layer)
    config = getattr(model, "peft_config", None)
    if config is not None and not tuner_layers(model) and not isinstance(model, PeftWrapper):
        del model.peft_config
    return model
