"""The memory and time of one fine-tuning step, predicted from the model and the setup.

Four terms (Rajbhandari et al. 2020, "ZeRO", arXiv:1910.02054, Sec. 3.1, count the first three
as "model states"): **weights** (every parameter, float32: autocast keeps float32 master
weights), **gradients** (one float32 per trained parameter), **optimizer state** (AdamW keeps
two float32 moments ``exp_avg`` and ``exp_avg_sq`` per trained parameter and a ``step`` scalar
per tensor; SGD with momentum one buffer; plain SGD nothing) and **activations** (what autograd
saves in the forward for the backward, see :mod:`ftnotes.costs.tape`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..train import adamw_bytes
from .families import CAUSAL_FAMILIES, FAMILIES
from .tape import Tape

METHODS = ("full", "lora", "probe")
PRECISIONS = ("fp32", "bf16-autocast")
OPTIMIZERS = ("adamw", "sgd", "sgd-momentum")
HEADS = ("classifier", "score")  # the new task head of the *ForSequenceClassification models
GB = 1e9


@dataclass(frozen=True)
class Setup:
    """One fine-tuning setup. ``target_modules`` and ``r`` are used by ``method="lora"`` only.

    ``method``: "full" (every weight trains), "lora" (peft LoRA on ``target_modules``, the head
    in ``modules_to_save``), "probe" (frozen encoder, only the head trains).
    """

    method: str = "full"
    batch_size: int = 8
    seq_len: int = 128
    precision: str = "fp32"
    optimizer: str = "adamw"
    gradient_checkpointing: bool = False
    r: int = 8
    target_modules: tuple[str, ...] = ("query", "value", "q_proj", "v_proj")

    def __post_init__(self):
        for name, allowed in (("method", METHODS), ("precision", PRECISIONS),
                              ("optimizer", OPTIMIZERS)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("batch_size", "seq_len", "r"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.target_modules, tuple) or not self.target_modules:
            raise ValueError(f"target_modules must be a non-empty tuple of module names, "
                             f"got {self.target_modules!r}")  # fmt: skip


@dataclass
class Estimate:
    """Bytes of the four terms, FLOPs of one step, and the counts they come from."""

    weights: int
    gradients: int
    optimizer: int
    activations: int | None  # None: no symbolic forward for this architecture
    params: int
    trainable: int
    tokens: int
    flops: dict = field(default_factory=dict)
    recompute_peak: int = 0

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + (self.activations or 0)

    @property
    def step_flops(self) -> int:
        return sum(self.flops.values())

    def terms(self) -> dict[str, int]:
        return {"weights": self.weights, "gradients": self.gradients,
                "optimizer state": self.optimizer, "activations": self.activations or 0}  # fmt: skip


def matches(name: str, targets) -> bool:
    """peft's rule: a module is targeted if its name is a target or ends with '.' + target."""
    return any(name == t or name.endswith("." + t) for t in targets)


def meta_model(config, cls=None) -> nn.Module:
    """The transformers model of ``config`` on the meta device: shapes only, no memory."""
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    if cls is None:
        vision = config.model_type == "vit"
        cls = AutoModelForImageClassification if vision else AutoModelForSequenceClassification
    with torch.device("meta"):
        return cls.from_config(config)


def _lora_layers(model: nn.Module, targets) -> list[tuple[str, nn.Linear]]:
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and matches(n, targets) and not matches(n, HEADS)]  # fmt: skip


def _counts(model: nn.Module, setup: Setup) -> tuple[int, int, int, int]:
    """(stored parameters, trained parameters, trained tensors, parameters LoRA adds)."""
    params = sum(p.numel() for p in model.parameters())
    head = [p for n, p in model.named_parameters() if matches(n.rsplit(".", 1)[0], HEADS)]
    if setup.method == "full":
        return params, params, len(list(model.parameters())), 0
    head_n = sum(p.numel() for p in head)
    if setup.method == "probe":
        return params, head_n, len(head), 0
    layers = _lora_layers(model, setup.target_modules)
    if not layers:
        raise ValueError(f"target_modules must name nn.Linear layers of the model, got "
                         f"{setup.target_modules!r} (e.g. {[n for n, _ in model.named_modules()][-3:]})")  # fmt: skip
    added = sum(setup.r * (m.in_features + m.out_features) for _, m in layers)
    # peft's modules_to_save keeps the original head and trains a copy of it: both are stored.
    return params + added + head_n, added + head_n, 2 * len(layers) + len(head), added


def _base_name(model: nn.Module, name: str) -> str:
    prefix = getattr(model, "base_model_prefix", "")
    return name[len(prefix) + 1:] if prefix and name.startswith(prefix + ".") else name


def estimate(model, setup: Setup) -> Estimate:
    """Predict one training step of ``model`` (an nn.Module, e.g. on the meta device, or a
    transformers config) under ``setup``. Activations: batch_size x seq_len tokens (ViT: the
    image's patches + CLS, whatever ``seq_len`` says). A causal LM (``meta_model(config,
    AutoModelForCausalLM)``) is trained with the causal-LM loss over every position, its
    ``vocab_size`` logits included."""
    if not isinstance(setup, Setup):
        raise ValueError(f"setup must be an ftnotes.costs.Setup, got {setup!r}")
    if not isinstance(model, nn.Module):
        model = meta_model(model)
    cfg = model.config
    causal = getattr(model, "lm_head", None) is not None  # a *ForCausalLM: the LM loss
    if causal and setup.method == "probe":
        raise ValueError("method='probe' trains a classification head; a causal LM has none "
                         "(its lm_head is the tied embedding): use 'full' or 'lora'")  # fmt: skip
    stored, trained, tensors, _ = _counts(model, setup)
    state = {"adamw": adamw_bytes(trained, tensors), "sgd": 0, "sgd-momentum": 4 * trained}
    family = (CAUSAL_FAMILIES if causal else FAMILIES).get(cfg.model_type)
    est = Estimate(4 * stored, 4 * trained, state[setup.optimizer], None, stored, trained, 0)
    if family is None:
        return est
    targets = setup.target_modules
    head = {"full": lambda n: True, "lora": lambda n: matches(n, HEADS),
            "probe": lambda n: matches(n, HEADS)}[setup.method]  # fmt: skip

    def lora_rank(name: str) -> int:
        return setup.r if matches(name, targets) and not matches(name, HEADS) else 0

    tape = Tape(0, setup.precision == "bf16-autocast", head,
                lora_rank if setup.method == "lora" else (lambda n: 0))  # fmt: skip
    text = cfg.model_type != "vit"
    tape.input_grad = setup.gradient_checkpointing and (setup.method == "lora" or text)
    seq = _sequence(cfg, setup)
    tape.tokens = setup.batch_size * seq
    family(tape, cfg, setup.batch_size, seq, setup.gradient_checkpointing)
    est.activations, est.tokens = sum(tape.saved.values()), tape.tokens
    est.flops, est.recompute_peak = dict(tape.flops), tape.recompute_peak
    return est


def _sequence(cfg, setup: Setup) -> int:
    if cfg.model_type == "vit":
        return (cfg.image_size // cfg.patch_size) ** 2 + 1
    return setup.seq_len


def step_seconds(est: Estimate, peak_tflops: float, mfu: float) -> float:
    """FLOPs of one step / (peak x MFU). MFU (model FLOPs utilisation, Chowdhery et al. 2022,
    PaLM, arXiv:2204.02311, App. B) is an *assumption* you pass in: 0.3-0.5 is typical."""
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu!r}")
    if not peak_tflops > 0:
        raise ValueError(f"peak_tflops must be > 0, got {peak_tflops!r}")
    return est.step_flops / (peak_tflops * 1e12 * mfu)


def steps_in(seconds: float, est: Estimate, peak_tflops: float, mfu: float) -> int:
    """How many optimizer steps fit in ``seconds`` at that throughput."""
    return math.floor(seconds / step_seconds(est, peak_tflops, mfu))
