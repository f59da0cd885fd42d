"""The fine-tuning methods of notebook 11 on SmolLM2, one recipe each, and one runner that the
notebook and ``python -m ftnotes.reallm_bench`` share. Every method trains through TRL's
``SFTTrainer`` with the loss on the completion only (:mod:`ftnotes.reallm.sft`).

* ``lora_qv``: peft's LoRA (Hu et al. 2021, arXiv:2106.09685) on ``q_proj`` and ``v_proj``, the
  paper's choice and the usual starting point;
* ``lora_all``: LoRA on every linear layer of the blocks (``target_modules="all-linear"``: q, k,
  v, o, gate, up, down; the LM head is left out), as QLoRA (Dettmers et al. 2023) recommends;
* ``top_layers``: full fine-tuning of the last ``top_k`` decoder layers and the final norm,
  everything below frozen (the embeddings too, and with them the tied LM head). Full fine-tuning
  of all 134.5M weights does not fit the notebook's time on a CPU; ``ftnotes.costs`` says what
  it would need.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import torch

from ftnotes.checks import check_int
from ftnotes.reallm import forgetting, sft, task
from ftnotes.utils import count_params, set_seed

METHODS = ("lora_qv", "lora_all", "top_layers")
TARGETS = {"lora_qv": ["q_proj", "v_proj"], "lora_all": "all-linear"}
# One rate per method, chosen on the validation split at the notebook's budget (8 steps of 4, 16
# training definitions per category, seed 0, accuracy on 60 validation definitions; zero-shot
# 0.200; `python -m ftnotes.reallm_bench --seeds 1 --split validation --n-test 10 --lr M=RATE`):
#   lora_qv    4e-3 0.567 | 8e-3 0.650 | 1.6e-2 0.650 (more forgetting: log-lik -4.07 vs -2.39)
#   lora_all   2e-3 0.483 | 4e-3 0.700 | 8e-3 0.567; seeds 0-2: 2e-3 mean 0.544 (0.483-0.583),
#              4e-3 mean 0.605 (0.483-0.700): better on average, less steady
#   top_layers 1e-3 0.683 | 2e-3 0.683 (more forgetting: -3.72 vs -3.08); at batch 8: 3e-5 0.300,
#              1e-4 0.367, 3e-4 0.617, 1e-3 0.900
# A tie goes to the smaller rate (it forgets less). 60 answers: one seed's differences under about
# 10 points are noise (standard error about 6 points).
LR = {"lora_qv": 8e-3, "lora_all": 4e-3, "top_layers": 1e-3}
STEPS = 8
BATCH_SIZE = 4
R = 8
TOP_K = 4


def lora_config(r: int = R, target_modules=TARGETS["lora_all"]):
    """peft's ``LoraConfig``: rank ``r``, ``lora_alpha = 2 r`` (scaling 2), no dropout."""
    import peft

    check_int("r", r)
    return peft.LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=target_modules,
                           task_type="CAUSAL_LM")  # fmt: skip


def freeze_except_top(model, top_k: int = TOP_K) -> list[str]:
    """Freeze every parameter but those of the last ``top_k`` decoder layers and the final
    norm; returns the names left trainable."""
    layers = model.model.layers
    check_int("top_k", top_k)
    if top_k > len(layers):
        raise ValueError(f"top_k must be <= {len(layers)} (the model's layers), got {top_k}")
    first = len(layers) - top_k
    keep = tuple(f"model.layers.{i}." for i in range(first, len(layers))) + ("model.norm.",)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(keep))
    return [n for n, p in model.named_parameters() if p.requires_grad]


@dataclass
class Run:
    """One fine-tuning run, measured."""

    method: str
    r: int | None
    top_k: int | None
    lr: float
    steps: int
    batch_size: int
    seed: int
    n_train: int
    accuracy: float
    loglik: float
    trainable: int
    seconds: float
    step_seconds: float
    final_loss: float

    def as_dict(self) -> dict:
        return asdict(self)


def train(method, base, tokenizer, rows, steps=STEPS, lr=None, r=R, top_k=TOP_K,
          batch_size=BATCH_SIZE, seed=0, device=None):  # fmt: skip
    """Train a copy of ``base`` (never ``base`` itself) by ``method`` on prompt-completion
    ``rows``; returns the ``SFTTrainer`` (``trainer.model`` is the trained model)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    lr = LR[method] if lr is None else lr
    config = sft.sft_config(steps, lr, batch_size, seed, device)
    set_seed(seed)  # LoRA's A matrices and the batch order
    model = copy.deepcopy(base)
    peft_config = None
    if method == "top_layers":
        freeze_except_top(model, top_k)
    else:
        peft_config = lora_config(r, TARGETS[method])
    trainer = sft.make_trainer(model, tokenizer, rows, config, peft_config)
    trainer.train()
    trainer.model.eval()
    return trainer


def run(method, base, tokenizer, train_examples, test_examples, steps=STEPS, lr=None, r=R,
        top_k=TOP_K, batch_size=BATCH_SIZE, seed=0, device=None):  # fmt: skip
    """Train ``method`` on ``train_examples`` and measure it: accuracy on ``test_examples``,
    :func:`ftnotes.reallm.forgetting.answer_loglik` after, trainable parameters, time.
    Returns ``(trainer, Run)``."""
    rows = task.prompt_completion(tokenizer, train_examples)
    t0 = time.perf_counter()
    trainer = train(method, base, tokenizer, rows, steps, lr, r, top_k, batch_size, seed, device)
    seconds = time.perf_counter() - t0
    model = trainer.model
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    tail = losses[-3:] or [float("nan")]
    rec = Run(method, r if method != "top_layers" else None, top_k if method == "top_layers" else None,
              trainer.args.learning_rate, steps, batch_size, seed, len(rows),
              task.accuracy(task.predict(model, tokenizer, test_examples), test_examples),
              forgetting.answer_loglik(model, tokenizer),
              count_params(model, trainable_only=True), seconds,
              trainer.state.log_history[-1]["train_runtime"] / steps, sum(tail) / len(tail))  # fmt: skip
    return trainer, rec


@torch.no_grad()
def zero_shot(model, tokenizer, test_examples, shots=()) -> float:
    """Accuracy of the model as it is, prompted with ``shots`` solved examples (few-shot)."""
    return task.accuracy(task.predict(model, tokenizer, test_examples, shots), test_examples)
