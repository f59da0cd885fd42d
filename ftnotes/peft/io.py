"""Saving and loading only what a PEFT method trained, tied to the backbone it was trained on.

An adapter file holds the adapter tensors, the task head, the method's config and a
*fingerprint* of the frozen backbone: a LoRA delta B A only means something added to the exact
W it was trained against, so loading it onto another backbone would silently give garbage.
:func:`load_adapter` therefore checks the fingerprint before anything else.

File format: safetensors (the ``safetensors`` library; what peft writes as
``adapter_model.safetensors``): a JSON header (per tensor: dtype, shape, byte offsets; plus
string-to-string ``__metadata__``), then the raw tensor bytes. Loading it unpickles nothing, so
an adapter file from a stranger cannot run code. Metadata keys: ``format``,
``peft_type``, ``config``, ``fingerprint``, ``wrapper``, ``num_classes``, ``extra`` (JSON).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import safetensors
import safetensors.torch
import torch
from torch import nn

from ftnotes.peft.config import PeftConfig, is_adapter_param
from ftnotes.peft.tuners import (
    WRAPPERS,
    attached_method,
    module_of,
    name_matches,
    replace_module,
    tuner_layers,
)
from ftnotes.utils import atomic_write

FORMAT = "ftnotes-adapter/1"


def _in_adapter_file(name: str, heads: tuple) -> bool:
    """True for what an adapter file holds (and the fingerprint leaves out): adapter tensors and
    the head modules, also when the head itself is wrapped (``head.base_layer.weight``)."""
    return is_adapter_param(name) or name_matches(module_of(name), heads)


def _body(model: nn.Module) -> nn.Module:
    return model.base if getattr(model, "is_peft_wrapper", False) else model


def _head_names(model: nn.Module, config=None) -> tuple:
    config = config if config is not None else getattr(model, "peft_config", None)
    return tuple(getattr(config, "modules_to_save", ("head",)))


def fingerprint(model: nn.Module, exclude=("head",)) -> str:
    """sha256 over the frozen backbone's parameter names, shapes and values.

    Adapter tensors and the modules in ``exclude`` (the head) are left out, and wrapper names
    (``base_layer``) are dropped, so a backbone has the same fingerprint before and after a
    PEFT method is attached. Buffers (e.g. BatchNorm statistics) are not included.
    """
    if any(layer.merged for _, layer in tuner_layers(model)):
        raise ValueError(
            "model has merged PEFT layers: call peft.unmerge(model) before fingerprinting"
        )
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    rows = []
    for name, p in _body(model).named_parameters():
        canonical = ".".join(s for s in name.split(".") if s != "base_layer")
        if not _in_adapter_file(name, exclude):
            rows.append((canonical, p))
    digest = hashlib.sha256()
    for name, p in sorted(rows, key=lambda r: r[0]):
        digest.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode())
        digest.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors an adapter file holds: adapter parameters plus the head(s)."""
    wrapper = getattr(model, "is_peft_wrapper", False)
    heads = _head_names(model)
    out = {}
    for key, value in model.state_dict().items():
        if wrapper:
            keep = not key.startswith("base.")
        else:
            keep = _in_adapter_file(key, heads)
        if keep:
            out[key] = value.detach().cpu().clone()
    return out


def save_adapter(model: nn.Module, path, extra: dict | None = None) -> Path:
    """Write the adapter file (adapter + head tensors, config, base fingerprint) atomically.

    ``extra``: a JSON-serialisable dict stored alongside (e.g. the validation accuracy).
    """
    config = getattr(model, "peft_config", None)
    if not isinstance(config, PeftConfig):
        raise ValueError(
            "model has no PEFT method attached (no model.peft_config); nothing to save"
        )
    try:
        extra_json = json.dumps(extra or {})
    except TypeError as err:
        raise ValueError(f"extra must be JSON-serialisable, got {extra!r} ({err})") from None
    wrapper = type(model).__name__ if getattr(model, "is_peft_wrapper", False) else None
    metadata = {
        "format": FORMAT,
        "peft_type": config.peft_type,
        "config": json.dumps(config.to_dict()),
        "fingerprint": fingerprint(model, _head_names(model)),
        "wrapper": json.dumps(wrapper),
        "num_classes": json.dumps(getattr(model, "num_classes", None)),
        "extra": extra_json,
    }
    path = Path(path)
    atomic_write(path, safetensors.torch.save(adapter_state_dict(model), metadata))
    return path


def read_adapter(path) -> dict:
    """An adapter file as a dict: the metadata keys (JSON decoded) plus ``state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path={str(path)!r} is not a file")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
        if meta.get("format") != FORMAT:
            raise ValueError
        payload = {k: meta[k] for k in ("format", "peft_type", "fingerprint")}
        payload.update(
            {k: json.loads(meta[k]) for k in ("config", "wrapper", "num_classes", "extra")}
        )
    except Exception:  # safetensors raises its own SafetensorError on a damaged file
        raise ValueError(f"{path} is not an ftnotes adapter file (format {FORMAT})") from None
    return {**payload, "state_dict": tensors}


def _attach(model: nn.Module, payload: dict, config: PeftConfig) -> nn.Module:
    """Give ``model`` the structure the file expects (if it lacks it) and resize its head(s)."""
    wrapper = payload["wrapper"]
    if wrapper is not None:
        cls = WRAPPERS[wrapper]
        if isinstance(model, cls):
            return model
        return cls.for_loading(model, config, payload["state_dict"], payload["num_classes"])
    if not tuner_layers(model):
        config.attach(model)
    for key, value in payload["state_dict"].items():
        module_name, _, leaf = key.rpartition(".")
        module = model.get_submodule(module_name) if module_name else model
        if (
            isinstance(module, nn.Linear)
            and leaf == "weight"
            and module.weight.shape != value.shape
        ):
            # A task head of another size (e.g. 10 digits on a 36-glyph backbone): replace it,
            # on the old head's device and dtype (its values come from the file just below).
            w = module.weight
            new = nn.Linear(value.shape[1], value.shape[0], bias=module.bias is not None,
                            device=w.device, dtype=w.dtype)  # fmt: skip
            replace_module(model, module_name, new)
    return model


#: TinyViT's attention projections before they took transformers' names (q_proj, k_proj, ...).
_OLD_PROJECTIONS = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "o_proj"}


def _refuse_old_names(path, payload: dict) -> None:
    """A file saved before the rename would otherwise fail as 'another base model'."""
    targets = payload["config"].get("target_modules") or []
    names = list(payload["state_dict"]) + ([targets] if isinstance(targets, str) else targets)
    old = sorted({p for n in names for p in n.split(".") if p in _OLD_PROJECTIONS
                  and (n == p or ".attn." + p in "." + n)})  # fmt: skip
    if old:
        new = ", ".join(f"{o} -> {_OLD_PROJECTIONS[o]}" for o in old)
        raise ValueError(
            f"adapter file {path} uses TinyViT's old projection names ({new}); ftnotes now uses "
            "transformers' names q_proj/k_proj/v_proj/o_proj: train and save the adapter again"
        )


def load_adapter(model: nn.Module, path) -> nn.Module:
    """Load an adapter file onto ``model``; returns the model (a new wrapper for prompt/prefix).

    ``model`` may be the bare backbone (the method is attached from the saved config) or one
    that already has the method. Fails with ValueError if the backbone differs from the one the
    adapter was trained on, or on missing/unexpected keys or shape mismatches.
    """
    payload = read_adapter(path)
    _refuse_old_names(path, payload)
    try:  # from_dict names what is wrong (an unknown method or field); say which file
        config = PeftConfig.from_dict(payload["peft_type"], payload["config"])
    except ValueError as err:
        raise ValueError(f"adapter file {path}: {err}") from None
    theirs = payload["fingerprint"]
    ours = fingerprint(model, _head_names(model, config))
    if ours != theirs:
        raise ValueError(
            f"this adapter was trained on base {theirs[:16]}, this model is {ours[:16]}: "
            "load the backbone it was trained on"
        )
    _refuse_other_method(model, payload, path)
    # Attach to a copy first: a file that does not fit raises and leaves ``model`` as it was.
    _check_fits(_attach(copy.deepcopy(model), payload, config), payload, path)
    model = _attach(model, payload, config)
    model.load_state_dict(payload["state_dict"], strict=False)
    return model


def _refuse_other_method(model: nn.Module, payload: dict, path) -> None:
    attached = attached_method(model)
    if attached is not None and attached != payload["peft_type"]:
        raise ValueError(
            f"adapter file {path} holds a {payload['peft_type']} adapter, but this model has "
            f"{attached} attached: load it onto the bare backbone (load_pretrained()); "
            "the model was not changed"
        )


def _check_fits(model: nn.Module, payload: dict, path) -> None:
    expected = adapter_state_dict(model)
    saved = payload["state_dict"]
    missing, unexpected = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    wrong = [k for k in saved if k in expected and saved[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(
            f"adapter file {path} does not fit this model: missing keys {missing[:5]}, "
            f"unexpected keys {unexpected[:5]}, shape mismatches {wrong[:5]} "
            "(the model was not changed)"
        )
