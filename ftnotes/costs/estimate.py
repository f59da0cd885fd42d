"""The memory and time of one fine-tuning step, predicted from the model and the setup.

Four terms (Rajbhandari et al. 2020, "ZeRO", arXiv:1910.02054, Sec. 3.1, count the first three
as "model states"): **weights** (every parameter, float32: autocast keeps float32 master
weights), **gradients** (one float32 per trained parameter), **optimizer state** (AdamW keeps
two float32 moments ``exp_avg`` and ``exp_avg_sq`` per trained parameter and a ``step`` scalar
per tensor; SGD with momentum one buffer; plain SGD nothing) and **activations** (what autograd
saves in the forward for the backward, see :mod:`ftnotes.costs.tape`). A fifth, **loss
backward**, is what the cross-entropy's backward holds for a moment next to the activations:
two float32 copies of the logits' shape, which matters for a causal LM (one logit per token and
vocabulary entry) and is negligible for a classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..checks import check_bool, check_choice, check_int, check_number
from ..memory import adamw_bytes
from .devices import PRECISIONS
from .families import DECODERS, FAMILIES
from .tape import Tape

METHODS = ("full", "lora", "probe")
OPTIMIZERS = ("adamw", "sgd", "sgd-momentum")
TASKS = ("classification", "causal-lm")
HEADS = ("classifier", "score")  # the new task head of the *ForSequenceClassification models
GB = 1e9
# config fields that are sizes: a value below 1 is a typo, not a model
SIZES = ("hidden_size", "num_hidden_layers", "num_layers", "intermediate_size", "vocab_size",
         "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "image_size",
         "patch_size", "num_channels", "num_labels", "d_model", "d_ff", "d_kv", "num_heads")  # fmt: skip



@dataclass(frozen=True)
class Setup:
    """One fine-tuning setup. ``target_modules`` and ``r`` are used by ``method="lora"`` only.

    ``method``: "full" (every weight trains), "lora" (peft LoRA on ``target_modules``; a
    classifier's head in ``modules_to_save``), "probe" (frozen encoder, only the head trains).
    ``task``: "classification" (``*ForSequenceClassification`` / ``*ForImageClassification``,
    ``num_labels`` outputs) or "causal-lm" (``*ForCausalLM``: the next-token loss over the
    vocabulary at every position, as in supervised fine-tuning; Qwen2 and Llama only).
    ``precision``: "fp32", "bf16-autocast", or "fp16-autocast" (with a GradScaler: the T4 has
    no bf16); both autocasts keep the same bytes.
    """

    method: str = "full"
    batch_size: int = 8
    seq_len: int = 128
    precision: str = "fp32"
    optimizer: str = "adamw"
    gradient_checkpointing: bool = False
    r: int = 8
    target_modules: tuple[str, ...] = ("query", "value", "q_proj", "v_proj")
    task: str = "classification"

    def __post_init__(self):
        for name, allowed in (("method", METHODS), ("precision", PRECISIONS),
                              ("optimizer", OPTIMIZERS), ("task", TASKS)):  # fmt: skip
            check_choice(name, getattr(self, name), allowed)
        for name in ("batch_size", "seq_len", "r"):
            check_int(name, getattr(self, name))
        check_bool("gradient_checkpointing", self.gradient_checkpointing)  # "no" is truthy
        if not isinstance(self.target_modules, tuple) or not self.target_modules:
            raise ValueError(f"target_modules must be a non-empty tuple of module names, "
                             f"got {self.target_modules!r}")  # fmt: skip
        if self.task == "causal-lm" and self.method == "probe":
            raise ValueError("method='probe' trains a new head on a frozen encoder; a causal "
                             "LM's head is its vocabulary projection (tied to the input "
                             "embeddings in Qwen2.5 and SmolLM2): use method 'full' or 'lora' "
                             "with task='causal-lm'")  # fmt: skip

    @property
    def heads(self) -> tuple[str, ...]:
        """Names of the new task head's modules (a causal LM keeps its own head: none)."""
        return HEADS if self.task == "classification" else ()


@dataclass
class Estimate:
    """Bytes of the five terms, FLOPs of one step, and the counts they come from."""

    weights: int
    gradients: int
    optimizer: int
    activations: int | None  # None: estimated with states_only=True
    params: int
    trainable: int
    tokens: int
    flops: dict = field(default_factory=dict)
    recompute_peak: int = 0
    loss_backward: int = 0
    weight_copies: int = 0  # of the activations: autocast's 16-bit weight copies (any batch)

    @property
    def model_states(self) -> int:
        """Weights + gradients + optimizer state: what a step costs before any activation."""
        return self.weights + self.gradients + self.optimizer

    @property
    def total(self) -> int:
        if self.activations is None:
            raise ValueError("this estimate has no activations (states_only=True): its total "
                             "would say a step fits when it may not; use .model_states")  # fmt: skip
        return self.model_states + self.activations + self.loss_backward

    @property
    def step_flops(self) -> int:
        return sum(self.flops.values())

    def terms(self) -> dict[str, int]:
        return {"weights": self.weights, "gradients": self.gradients,
                "optimizer state": self.optimizer, "activations": self.activations or 0,
                "loss backward": self.loss_backward}  # fmt: skip


def matches(name: str, targets) -> bool:
    """peft's rule: a module is targeted if its name is a target or ends with '.' + target."""
    return any(name == t or name.endswith("." + t) for t in targets)


def meta_model(config, cls=None, task: str = "classification") -> nn.Module:
    """The transformers model of ``config`` on the meta device: shapes only, no memory.
    ``cls`` (an ``Auto*`` class) wins over ``task``."""
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForImageClassification,
        AutoModelForSequenceClassification,
    )

    check_choice("task", task, TASKS)
    if cls is None:
        vision = config.model_type == "vit"
        cls = AutoModelForImageClassification if vision else AutoModelForSequenceClassification
        cls = AutoModelForCausalLM if task == "causal-lm" else cls
    with torch.device("meta"):
        return cls.from_config(config)


def _lora_layers(model: nn.Module, setup: Setup) -> list[tuple[str, nn.Linear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)
            and matches(n, setup.target_modules) and not matches(n, setup.heads)]  # fmt: skip


def _counts(model: nn.Module, setup: Setup) -> tuple[int, int, int, int]:
    """(stored parameters, trained parameters, trained tensors, parameters LoRA adds)."""
    params = sum(p.numel() for p in model.parameters())
    head = [p for n, p in model.named_parameters() if matches(n.rsplit(".", 1)[0], setup.heads)]
    if setup.method == "full":
        return params, params, len(list(model.parameters())), 0
    head_n = sum(p.numel() for p in head)
    if setup.method == "probe":
        return params, head_n, len(head), 0
    layers = _lora_layers(model, setup)
    if not layers:
        raise ValueError(f"target_modules must name nn.Linear layers of the model, got "
                         f"{setup.target_modules!r} (e.g. {[n for n, _ in model.named_modules()][-3:]})")  # fmt: skip
    added = sum(setup.r * (m.in_features + m.out_features) for _, m in layers)
    # peft's modules_to_save keeps the original head and trains a copy of it: both are stored.
    return params + added + head_n, added + head_n, 2 * len(layers) + len(head), added


def check_config(cfg) -> None:
    """ValueError naming the field if a size of ``cfg`` (layers, widths, ...) is not an int >= 1."""
    for name in SIZES:
        value = getattr(cfg, name, None)
        if value is not None:  # a size this family does not have
            check_int(f"{type(cfg).__name__}.{name}", value)


def _task_of(model: nn.Module) -> str | None:
    name = type(model).__name__
    if name.endswith("ForCausalLM"):
        return "causal-lm"
    return "classification" if name.endswith("Classification") else None


def _check_model(model: nn.Module, setup: Setup, states_only: bool) -> None:
    cfg = model.config
    check_config(cfg)
    found = _task_of(model)
    if found is not None and found != setup.task:
        raise ValueError(f"setup.task is {setup.task!r} but the model is a "
                         f"{type(model).__name__} (task {found!r}): pass Setup(task={found!r})")  # fmt: skip
    if states_only:
        return
    if cfg.model_type not in FAMILIES:
        raise ValueError(
            f"no symbolic forward for model_type {cfg.model_type!r} ({type(model).__name__}): "
            f"activations can be estimated for {sorted(FAMILIES)}; pass states_only=True for "
            f"the weights, gradients and optimizer state alone (Estimate.model_states)")
    if setup.task == "causal-lm" and cfg.model_type not in DECODERS:
        raise ValueError(f"task='causal-lm' needs a decoder ({list(DECODERS)}), got "
                         f"model_type {cfg.model_type!r}")  # fmt: skip
    limit = getattr(cfg, "max_position_embeddings", None)
    if cfg.model_type != "vit" and limit is not None and setup.seq_len > limit:
        raise ValueError(f"seq_len must be <= the model's max_position_embeddings ({limit}), "
                         f"got {setup.seq_len}")  # fmt: skip


def estimate(model, setup: Setup, states_only: bool = False) -> Estimate:
    """Predict one training step of ``model`` (an nn.Module, e.g. on the meta device, or a
    transformers config) under ``setup``. Activations: batch_size x seq_len tokens (ViT: the
    image's patches + CLS, whatever ``seq_len`` says). An architecture without a symbolic
    forward (:data:`~ftnotes.costs.families.FAMILIES`) is refused unless ``states_only``: then
    the estimate has weights, gradients and optimizer state only (``activations=None``, no
    FLOPs, and ``.total`` refuses)."""
    if not isinstance(setup, Setup):
        raise ValueError(f"setup must be an ftnotes.costs.Setup, got {setup!r}")
    check_bool("states_only", states_only)
    if not isinstance(model, nn.Module):
        check_config(model)
        model = meta_model(model, task=setup.task)
    _check_model(model, setup, states_only)
    cfg = model.config
    stored, trained, tensors, _ = _counts(model, setup)
    state = {"adamw": adamw_bytes(trained, tensors), "sgd": 0, "sgd-momentum": 4 * trained}
    est = Estimate(4 * stored, 4 * trained, state[setup.optimizer], None, stored, trained, 0)
    if states_only:
        return est
    tape = _tape(setup, cfg.model_type != "vit")
    seq = _sequence(cfg, setup)
    tape.tokens = setup.batch_size * seq
    FAMILIES[cfg.model_type](tape, cfg, setup.batch_size, seq, setup.gradient_checkpointing,
                             setup.task)  # fmt: skip
    est.activations, est.tokens = sum(tape.saved.values()), tape.tokens
    est.flops, est.recompute_peak = dict(tape.flops), tape.recompute_peak
    est.loss_backward, est.weight_copies = tape.loss_backward, tape.weight_copies
    return est


def _tape(setup: Setup, text: bool) -> Tape:
    targets, heads = setup.target_modules, setup.heads
    trained = {"full": lambda n: True, "lora": lambda n: matches(n, heads),
               "probe": lambda n: matches(n, heads)}[setup.method]  # fmt: skip

    def lora_rank(name: str) -> int:
        return setup.r if matches(name, targets) and not matches(name, heads) else 0

    tape = Tape(0, setup.precision != "fp32", trained,
                lora_rank if setup.method == "lora" else (lambda n: 0))  # fmt: skip
    tape.input_grad = setup.gradient_checkpointing and (setup.method == "lora" or text)
    return tape


def _sequence(cfg, setup: Setup) -> int:
    if cfg.model_type == "vit":
        return (cfg.image_size // cfg.patch_size) ** 2 + 1
    return setup.seq_len


def step_seconds(est: Estimate, peak_tflops: float, mfu: float) -> float:
    """FLOPs of one step / (peak x MFU). MFU (model FLOPs utilisation, Chowdhery et al. 2022,
    PaLM, arXiv:2204.02311, App. B) is an *assumption* you pass in: 0.3-0.5 is typical."""
    check_number("mfu", mfu, 0, 1, strict=True)
    check_number("peak_tflops", peak_tflops, 0, strict=True)
    if not isinstance(est, Estimate) or est.step_flops <= 0:
        raise ValueError(f"est must be an Estimate with FLOPs (not states_only), got "
                         f"{type(est).__name__} with flops={getattr(est, 'flops', None)!r}")  # fmt: skip
    return est.step_flops / (peak_tflops * 1e12 * mfu)


def steps_in(seconds: float, est: Estimate, peak_tflops: float, mfu: float) -> int:
    """How many optimizer steps fit in ``seconds`` (finite, >= 0) at that throughput."""
    check_number("seconds", seconds, 0)
    return math.floor(seconds / step_seconds(est, peak_tflops, mfu))
