"""The shipped backbone as a 🤗 transformers checkpoint, and peft adapters tied to their base.

:class:`~ftnotes.models.TinyViT` maps one-to-one onto transformers'
``ViTForImageClassification`` (Dosovitskiy et al. 2021): Conv2d patch embedding, class token,
position embeddings, pre-norm blocks with a GELU MLP, a final LayerNorm and a classifier on the
class token. Only the names differ (``blocks.i.norm1`` is ``vit.layers.i.layernorm_before``,
``head`` is ``classifier``, ...), so :func:`to_hf` and :func:`from_hf` are straight copies of
the same tensors and give the same logits (the tests measure it on real images).

``data/tinyvit-glyphs-hf/`` (``config.json`` with ``id2label``/``label2id``,
``model.safetensors``) is derived from ``data/tinyvit_glyphs.pt`` by :func:`export_hf`
(``python -m ftnotes.pretrain`` at the end of pretraining, or cheaply, from the existing ``.pt``,
``python -m ftnotes.pretrain --export-hf-only``); the ``.pt``'s manifest records the sha256 of
its files, and :func:`load_pretrained_hf` checks them and the declared architecture
(``tinyvit-hf`` in :mod:`ftnotes.registry`, through :mod:`ftnotes.artifacts`) before loading.

Importing this module switches the Hugging Face libraries to offline mode: the course loads
everything from local folders and must never reach for the Hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import warnings
from pathlib import Path


def _go_offline() -> None:
    # Set before transformers/huggingface_hub are imported: huggingface_hub reads the variable
    # once, at import time, into constants.HF_HUB_OFFLINE, so patch that too if it came first.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def _no_library_bars() -> None:
    # The course shows one progress bar per training (ftnotes.hf_trainer.quiet). transformers' own
    # bars ("Loading weights" in every from_pretrained, "Writing model shards" at every
    # checkpoint a Trainer saves) would add one per load and per epoch: switch them off (this
    # also switches off huggingface_hub's). `transformers.utils.logging.enable_progress_bar()`
    # turns them back on.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


_go_offline()
# peft's get_peft_model asks transformers for `is_gradient_checkpointing`, which transformers
# deprecated: the warning comes from inside the libraries, not from our calls (seen with peft
# 0.21 and transformers 5.24 and 5.25; the installed versions: notebook 07's first cell).
warnings.filterwarnings(
    "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
)

import torch  # noqa: E402
from transformers import ViTConfig as HFViTConfig  # noqa: E402
from transformers import ViTForImageClassification  # noqa: E402

from ftnotes import artifacts  # noqa: E402
from ftnotes.checkpoints import load_manifest, load_pretrained, weights_path  # noqa: E402
from ftnotes.models import TinyViT, ViTConfig  # noqa: E402
from ftnotes.utils import write_json  # noqa: E402

_no_library_bars()

_SPEC = artifacts.get("tinyvit-hf")  # the declaration: files, command, architecture
HF_DIR_NAME = _SPEC.location
HF_FILES = _SPEC.files
EXPORT_COMMAND = _SPEC.command
BASE_FILE = "ftnotes_base.json"  # written next to a peft adapter by save_peft_adapter

# TinyViT name -> transformers name (regular expressions over parameter names, in order).
_TO_HF = (
    (r"^patch_embed\.", "vit.embeddings.patch_embeddings.projection."),
    (r"^cls_token$", "vit.embeddings.cls_token"),
    (r"^pos_embed$", "vit.embeddings.position_embeddings"),
    (r"^blocks\.(\d+)\.norm1\.", r"vit.layers.\1.layernorm_before."),
    (r"^blocks\.(\d+)\.norm2\.", r"vit.layers.\1.layernorm_after."),
    (r"^blocks\.(\d+)\.attn\.", r"vit.layers.\1.attention."),
    (r"^blocks\.(\d+)\.mlp\.", r"vit.layers.\1.mlp."),
    (r"^norm\.", "vit.layernorm."),
    (r"^head\.", "classifier."),
)
_FROM_HF = (
    (r"^vit\.embeddings\.patch_embeddings\.projection\.", "patch_embed."),
    (r"^vit\.embeddings\.cls_token$", "cls_token"),
    (r"^vit\.embeddings\.position_embeddings$", "pos_embed"),
    (r"^vit\.layers\.(\d+)\.layernorm_before\.", r"blocks.\1.norm1."),
    (r"^vit\.layers\.(\d+)\.layernorm_after\.", r"blocks.\1.norm2."),
    (r"^vit\.layers\.(\d+)\.attention\.", r"blocks.\1.attn."),
    (r"^vit\.layers\.(\d+)\.mlp\.", r"blocks.\1.mlp."),
    (r"^vit\.layernorm\.", "norm."),
    (r"^classifier\.", "head."),
)


def _rename(key: str, rules) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise ValueError(f"no mapping for parameter {key!r}")


def hf_key(name: str) -> str:
    """transformers' name of a TinyViT parameter: ``blocks.0.attn.q_proj.weight`` ->
    ``vit.layers.0.attention.q_proj.weight``."""
    return _rename(name, _TO_HF)


def tinyvit_key(name: str) -> str:
    """The inverse of :func:`hf_key`."""
    return _rename(name, _FROM_HF)


def hf_config(cfg: ViTConfig, classes) -> HFViTConfig:
    """transformers' ``ViTConfig`` for a TinyViT config, with ``id2label``/``label2id``."""
    classes = [str(c) for c in classes]
    if len(classes) != cfg.num_classes or len(set(classes)) != len(classes):
        raise ValueError(
            f"classes must be {cfg.num_classes} distinct names (one per output), got {classes!r}"
        )
    return HFViTConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, num_channels=cfg.in_chans,
        hidden_size=cfg.dim, num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
        intermediate_size=int(cfg.dim * cfg.mlp_ratio), hidden_act="gelu",
        layer_norm_eps=1e-5,  # torch's nn.LayerNorm default, which TinyViT uses
        hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
        qkv_bias=True, id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
    )  # fmt: skip


def to_hf(model: TinyViT, classes) -> ViTForImageClassification:
    """A ``ViTForImageClassification`` holding copies of ``model``'s tensors (eval mode).

    ``classes``: one label per output of ``model.head``, stored as ``id2label``. Input of the
    result: ``pixel_values`` (B, 1, 8, 8); ``.logits`` (B, num_classes) equal ``model(x)``.
    """
    if not isinstance(model, TinyViT):
        raise ValueError(f"model must be a TinyViT, got {type(model).__name__}")
    hf = ViTForImageClassification(hf_config(model.cfg, classes))
    state = {hf_key(k): v.detach().clone() for k, v in model.state_dict().items()}
    hf.load_state_dict(state, strict=True)  # strict: every tensor on both sides is mapped
    return hf.eval()


def _tinyvit_config(config: HFViTConfig) -> ViTConfig:
    """The TinyViT config of a transformers ``ViTConfig``; ValueError if TinyViT cannot hold it."""
    wanted = {"hidden_act": "gelu", "layer_norm_eps": 1e-5, "qkv_bias": True}
    for name, value in wanted.items():
        if getattr(config, name, None) != value:
            raise ValueError(
                f"config.{name}={getattr(config, name, None)!r}; TinyViT needs {value!r}"
            )
    if config.hidden_dropout_prob != config.attention_probs_dropout_prob:
        raise ValueError("TinyViT has one dropout: hidden_dropout_prob must equal "
                         f"attention_probs_dropout_prob, got {config.hidden_dropout_prob} and "
                         f"{config.attention_probs_dropout_prob}")  # fmt: skip
    return ViTConfig(
        image_size=config.image_size, patch_size=config.patch_size,
        in_chans=config.num_channels, dim=config.hidden_size, depth=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        mlp_ratio=config.intermediate_size / config.hidden_size,
        num_classes=config.num_labels, dropout=config.hidden_dropout_prob,
    )  # fmt: skip


def from_hf(hf: ViTForImageClassification) -> tuple[TinyViT, list[str]]:
    """``(TinyViT, classes)`` with copies of ``hf``'s tensors; the inverse of :func:`to_hf`."""
    if not isinstance(hf, ViTForImageClassification):
        raise ValueError(f"hf must be a ViTForImageClassification, got {type(hf).__name__}")
    model = TinyViT(_tinyvit_config(hf.config))
    state = {tinyvit_key(k): v.detach().clone() for k, v in hf.state_dict().items()}
    model.load_state_dict(state, strict=True)
    classes = [hf.config.id2label[i] for i in range(hf.config.num_labels)]
    return model.eval(), classes


# ---- the shipped folder ----------------------------------------------------------------------


def hf_path(path=None, weights=None) -> Path:
    """The HF folder: ``path``, else ``$FTNOTES_VIT_HF``, else ``tinyvit-glyphs-hf`` beside the
    ``.pt`` weights (``weights``, else the located ones)."""
    if path is None and weights is not None and not os.environ.get(_SPEC.env):
        return weights_path(weights).parent / HF_DIR_NAME
    return artifacts.locate("tinyvit-hf", path)


def _explicit(path, weights):
    """The folder the caller named (``None``: the declaration's default, whose manifest is the
    located ``.pt``'s)."""
    return None if path is None and weights is None else hf_path(path, weights)


def export_hf(weights=None, out=None) -> Path:
    """Write the HF folder for the ``.pt`` weights and record its files in their manifest.

    The folder is built beside the final one and swapped in at the end
    (:func:`ftnotes.artifacts.building`), so a failed export leaves the previous folder as it
    was. Returns the folder.
    """
    weights = weights_path(weights)
    model = load_pretrained(weights)  # checks the .pt against its manifest first
    manifest = load_manifest(weights)
    out = weights.parent / HF_DIR_NAME if out is None else Path(out)
    with artifacts.building(out) as tmp:
        to_hf(model, manifest["classes"]).save_pretrained(tmp)
        names = sorted(p.name for p in tmp.iterdir())
        if names != sorted(HF_FILES):
            raise RuntimeError(f"save_pretrained wrote {names}, expected {sorted(HF_FILES)}")
        files = artifacts.hash_files(tmp, HF_FILES)
    manifest["hf"] = {"folder": out.name, "files": files, "command": EXPORT_COMMAND}
    artifacts.write_manifest(weights.with_suffix(".json"), manifest)
    return out


def verify_hf(path=None, weights=None) -> Path:
    """Check the HF folder against the record in the ``.pt``'s manifest and the declared
    architecture (:func:`ftnotes.artifacts.verify`); returns the folder. ``weights``: the
    ``.pt`` beside which the folder lies, when ``path`` is not given.

    Raises :class:`~ftnotes.artifacts.WeightsError` naming what is missing or changed.
    """
    return artifacts.verify("tinyvit-hf", _explicit(path, weights))


def load_pretrained_hf(path=None, weights=None, **kwargs) -> ViTForImageClassification:
    """The shipped backbone as ``ViTForImageClassification`` (eval mode), integrity-checked.

    ``path``: the HF folder (default ``data/tinyvit-glyphs-hf``); ``weights``: the ``.pt``
    beside which it lies. ``kwargs`` go to ``from_pretrained`` (``dtype=``, ``num_labels=``,
    ...). Offline: the folder is local and the Hub is never asked.
    """
    return artifacts.load("tinyvit-hf", _explicit(path, weights), **kwargs)


# ---- peft adapters tied to their base -----------------------------------------------------------


def _adapter_names(model) -> set[str]:
    """Parameter-name parts that peft's tuner layers add (``lora_A``, ``ia3_l``, ``hada_w1_a``)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    names = {"modules_to_save"}
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            if getattr(module, "merged", False):
                raise ValueError("the model has merged adapter layers: fingerprint it unmerged")
            names.update(module.adapter_layer_names)
    return names


def base_fingerprint(model, exclude=("classifier",)) -> str:
    """sha256 over the frozen backbone's parameter names, shapes and values.

    Works on a plain ``ViTForImageClassification`` and on the same model inside a peft
    ``PeftModel``: adapter tensors, the modules in ``exclude`` (the task head) and wrapper
    names (``base_model.model.``, ``base_layer``, ``original_module``) are left out, so the
    fingerprint is the same before and after an adapter is attached.
    """
    skip = _adapter_names(model) | set(exclude)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    digest = hashlib.sha256()
    rows = []
    for name, p in base.named_parameters():
        parts = [s for s in name.split(".") if s not in ("base_layer", "original_module")]
        if not skip.intersection(parts):
            rows.append((".".join(parts), p))
    for name, p in sorted(rows, key=lambda r: r[0]):
        digest.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode())
        digest.update(p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _describe(config) -> dict:
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_labels")
    return {k: getattr(config, k, None) for k in keys}


def save_peft_adapter(peft_model, folder) -> Path:
    """``peft_model.save_pretrained(folder)`` plus ``ftnotes_base.json``: the base's fingerprint
    and config, which :func:`load_peft_adapter` checks before loading."""
    folder = Path(folder)
    peft_model.save_pretrained(folder)
    record = {"fingerprint": base_fingerprint(peft_model),
              "base_config": _describe(peft_model.get_base_model().config)}  # fmt: skip
    write_json(folder / BASE_FILE, record)
    return folder


def load_peft_adapter(model, folder, check_base: bool = True, **kwargs):
    """``PeftModel.from_pretrained(model, folder)``, refused if the adapter was trained on
    another base (a LoRA delta only means something added to the exact W it was trained on).

    ``model``: the plain base model (no adapter attached). ``kwargs`` go to
    ``PeftModel.from_pretrained``. ``check_base=False`` skips the fingerprint check (for
    folders saved by plain ``save_pretrained``).
    """
    from peft import PeftModel

    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise ValueError(f"folder={str(folder)!r} holds no peft adapter (no adapter_config.json)")
    if hasattr(model, "peft_config"):
        raise ValueError("model already has a peft adapter: pass the plain base model")
    if check_base:
        record_file = folder / BASE_FILE
        if not record_file.is_file():
            raise ValueError(
                f"{folder} has no {BASE_FILE}, so its base model is unknown (save it with "
                "ftnotes.hf.save_peft_adapter, or pass check_base=False to load it unchecked)"
            )
        record = json.loads(record_file.read_text())
        mine = base_fingerprint(model)
        if record["fingerprint"] != mine:
            raise ValueError(
                f"the adapter in {folder} was trained on another base model "
                f"(saved on {record['base_config']}, fingerprint {record['fingerprint'][:12]}; "
                f"this model is {_describe(model.config)}, fingerprint {mine[:12]}): its "
                "weight updates would be added to weights they were not trained against"
            )
    return PeftModel.from_pretrained(model, folder, **kwargs)


def collate_images(batch) -> dict:
    """``Trainer``'s ``data_collator`` for a ``TensorDataset`` of (image, label) pairs:
    ``{"pixel_values": (B, 1, 8, 8), "labels": (B,)}``, the keyword names the model takes."""
    xs, ys = zip(*batch)
    return {"pixel_values": torch.stack(xs), "labels": torch.stack(ys)}
