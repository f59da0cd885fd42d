"""What every PEFT method declares, once: its config class, registered by subclassing.

In the spirit of peft's ``PeftConfig`` and ``register_peft_method``: a method is one module that
defines a :class:`PeftConfig` subclass with

* ``peft_type``: the method's name ("lora", "adapter", ...), the key of :data:`CONFIGS`;
* ``tensor_names``: name patterns (``fnmatch``, one dotted segment each) of the tensors the
  method adds and trains (``lora_A``, ``adapter``, ``prefix_*``). Adapter files, the base
  fingerprint, :class:`~ftnotes.peft.tasks.TaskBank` and the recipes find a method's tensors
  through this declaration only, so a new method cannot be left out of any of them;
* ``mergeable``: whether the trained tensors can be folded into the base weights;
* :meth:`PeftConfig.attach`: put the method on a model (in place for layer methods, a new
  wrapper model for prompt and prefix tuning);
* :meth:`PeftConfig.validate`: clear errors naming the field, the value and what is allowed.

Defining the subclass registers it: ``CONFIGS["lora"] is LoraConfig``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

#: peft_type -> config class, filled by subclassing :class:`PeftConfig`.
CONFIGS: dict[str, type[PeftConfig]] = {}


@dataclass
class PeftConfig:
    """Base of every method's config: registration, validation, ``to_dict`` / ``from_dict``."""

    peft_type: ClassVar[str] = ""
    tensor_names: ClassVar[tuple[str, ...]] = ()
    mergeable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "peft_type" in cls.__dict__:  # a method of its own (not a helper subclass)
            if not cls.peft_type or not cls.tensor_names:
                raise TypeError(f"{cls.__name__} must declare peft_type and tensor_names")
            CONFIGS[cls.peft_type] = cls

    def __post_init__(self):
        for name in ("target_modules", "modules_to_save"):
            value = getattr(self, name, None)
            if value is not None and not isinstance(value, str):
                try:
                    setattr(self, name, tuple(value))
                except TypeError:
                    raise ValueError(
                        f"{type(self).__name__}.{name} must be a list of module names or one "
                        f"regular expression string, got {value!r}"
                    ) from None
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming ``<Config>.<field>``, the value and what is allowed."""

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(peft_type: str, values: dict) -> PeftConfig:
        """The config of ``peft_type`` from its :meth:`to_dict` (e.g. read from an adapter file)."""
        if peft_type not in CONFIGS:
            raise ValueError(f"peft_type must be one of {sorted(CONFIGS)}, got {peft_type!r}")
        cls = CONFIGS[peft_type]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown}; fields: {sorted(known)}")
        return cls(**values)

    @classmethod
    def owns(cls, name: str) -> bool:
        """True if parameter ``name`` (e.g. ``blocks.0.attn.q_proj.lora_A``) is one of this
        method's tensors: one of its dotted segments matches a pattern of ``tensor_names``."""
        return any(fnmatch.fnmatchcase(s, p) for s in name.split(".") for p in cls.tensor_names)

    def attach(self, model, **kwargs):
        """Put this method on ``model``; returns the model to train."""
        raise NotImplementedError(f"{type(self).__name__}.attach")


def is_adapter_param(name: str) -> bool:
    """True for a tensor that some registered method adds (``lora_A``, ``adapter.*``, ...)."""
    return any(cls.owns(name) for cls in CONFIGS.values())


def config_fields(cls: type[PeftConfig], values: dict) -> dict:
    """The entries of ``values`` that are fields of ``cls`` (a recipe holds training keys too)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}
