"""The fine-tuning methods of notebook 08 on the tiny LM, one recipe each, and one runner that
the notebook and ``python -m ftnotes.lm_bench`` share.

* ``scratch``: the same architecture, randomly initialised, trained on the same examples;
* ``full``: every weight of the pretrained model trains;
* ``lora``: peft's LoRA on ``q_proj`` and ``v_proj`` (Hu et al. 2021, "LoRA: Low-rank
  adaptation of large language models"): ``W x + (α/r) B A x``, ``B = 0`` at the start;
* ``prompt``: peft's prompt tuning (Lester et al. 2021, "The power of scale for
  parameter-efficient prompt tuning"): ``n`` trainable input embeddings prepended to every
  sequence, the model frozen;
* ``prefix`` / ``prefix_mlp``: peft's prefix tuning (Li & Liang 2021, "Prefix-tuning:
  optimizing continuous prompts for generation"): trainable keys and values prepended in every
  layer's attention; ``prefix_mlp`` reparametrises them through a 2-layer MLP while training
  (``prefix_projection=True``, the paper's trick for stable optimisation).
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ftnotes.checks import check_choice
from ftnotes.lm.model import new_model
from ftnotes.lm.sft import evaluate, evaluate_skills, train_sft
from ftnotes.utils import check_int, count_params

METHODS = ("scratch", "full", "lora", "prompt", "prefix", "prefix_mlp")
# One learning rate per method, chosen on the notebook's budget (100 steps, 300 examples, the
# gradient clipped to norm 1) on a validation draw of 100 mirror examples (mean of seeds 0-2;
# exact match; source = mean source exact match after):
#   full lr 2e-3 0.977 (source 0.127), 3e-3 0.997 (0.057), 6e-3 0.910 (0.013); unclipped,
#     one seed in three stalled near 0.4 at every rate from 3e-3 to 8e-3
#   lora r=8 lr 1e-2 0.720, 2e-2 0.793 | r=16 7e-3 0.923, 1e-2 0.950, 1.2e-2 0.923 |
#     r=32 5e-3 0.973, 7e-3 0.977, 1e-2 0.943 | r=64 1e-2 0.827
#   prompt 3e-2 0.000, 1e-1 0.023, 3e-1 0.037 (Lester et al. also trained prompts at 0.3)
#   prefix 1e-2 0.053, 3e-2 0.190, 1e-1 0.483, 2e-1 0.740 | prefix_mlp 3e-3 0.173,
#     1e-2 0.580, 2e-2 0.767, 4e-2 0.613 | scratch 3e-3 0.003, 1e-2 0.000
# The adapters and the scratch model start far from a solution and need larger steps.
LR = {"scratch": 3e-3, "full": 3e-3, "lora": 1e-2, "prompt": 3e-1, "prefix": 2e-1,
      "prefix_mlp": 2e-2}  # fmt: skip
STEPS = 100
BATCH_SIZE = 32
LORA_R = 16
N_VIRTUAL = 8


def peft_config(method: str, size: int | None = None, hidden_size: int = 64):
    """The peft config of an adapter method; ``size`` (None: the default, or an int >= 1) is
    LoRA's rank or the virtual tokens (peft accepts 0 and fails later, inside the model)."""
    import peft

    if size is not None:
        check_int("size", size)

    if method == "lora":
        r = LORA_R if size is None else size
        return peft.LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                               target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")  # fmt: skip
    n = N_VIRTUAL if size is None else size
    if method == "prompt":
        return peft.PromptTuningConfig(num_virtual_tokens=n, task_type="CAUSAL_LM")
    if method in ("prefix", "prefix_mlp"):
        return peft.PrefixTuningConfig(num_virtual_tokens=n, task_type="CAUSAL_LM",
                                       prefix_projection=method == "prefix_mlp",
                                       encoder_hidden_size=hidden_size)  # fmt: skip
    raise ValueError(f"method must be one of {['lora', 'prompt', 'prefix', 'prefix_mlp']} for a "
                     f"peft config, got {method!r}")  # fmt: skip


def wrap(model, config):
    """``peft.get_peft_model(model, config)``; a ``target_modules`` entry that matches nothing
    becomes a ValueError that names the module names this model really has."""
    import peft
    from torch import nn

    try:
        return peft.get_peft_model(model, config)
    except ValueError as err:
        if "not found in the base model" not in str(err) and "Target modules" not in str(err):
            raise
        leaves = sorted({n.rpartition(".")[2] for n, m in model.named_modules()
                         if isinstance(m, nn.Linear)})  # fmt: skip
        raise ValueError(f"target_modules={sorted(config.target_modules)!r} matches no module of "
                         f"this {type(model).__name__}; its nn.Linear names are {leaves}") from None  # fmt: skip


def make(method: str, base, size: int | None = None, seed: int = 0):
    """The model to train for ``method``: a copy of ``base`` (never ``base`` itself), wrapped
    with peft for the adapter methods, or a fresh model for ``scratch``."""
    check_choice("method", method, METHODS)
    torch.manual_seed(seed)  # the adapters' random starts
    if method == "scratch":
        return new_model(seed)
    model = copy.deepcopy(base)
    if method == "full":
        return model
    return wrap(model, peft_config(method, size, base.config.hidden_size))


def saved_bytes(model) -> int:
    """Bytes on disk of what this method must store: the adapter file for a peft model, the
    whole ``model.safetensors`` otherwise."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        name = "adapter_model.safetensors" if hasattr(model, "peft_config") else "model.safetensors"
        return (Path(tmp) / name).stat().st_size


@dataclass
class Run:
    """One fine-tuning run, measured."""

    method: str
    size: int | None
    lr: float
    steps: int
    n_train: int
    target_em: float
    source_em: dict
    trainable: int
    bytes: int
    seconds: float
    final_loss: float

    def as_dict(self) -> dict:
        return asdict(self)


def run(method, base, tokenizer, train, test, source_sets, size=None, lr=None, steps=STEPS,
        batch_size=BATCH_SIZE, seed=0, mask_prompt=True):  # fmt: skip
    """Train ``method`` on ``train`` and measure exact match on ``test`` (the target) and on
    ``source_sets`` (``{skill: examples}``, forgetting). Returns ``(model, Run)``."""
    lr = LR[method] if lr is None else lr
    model = make(method, base, size, seed)
    trainable = count_params(model, trainable_only=True)
    hist = train_sft(model, tokenizer, train, steps=steps, lr=lr, batch_size=batch_size,
                     seed=seed, mask_prompt=mask_prompt)  # fmt: skip
    target = evaluate(model, tokenizer, test)
    source = evaluate_skills(model, tokenizer, source_sets)
    tail = hist["loss"][-10:]
    rec = Run(method, size, lr, steps, len(train), target, source, trainable, saved_bytes(model),
              hist["seconds"], sum(tail) / len(tail))  # fmt: skip
    return model, rec


def prompt_tuning_forward(base, prompt, input_ids, attention_mask, labels=None):
    """Prompt tuning typed out (Lester et al. 2021): the frozen ``base`` run on
    ``[prompt; embed(input_ids)]``.

    ``prompt``: ``(n, d)`` virtual-token embeddings; ``input_ids``, ``attention_mask``,
    ``labels``: ``(B, T)``. The virtual tokens are always attended to (mask 1) and never scored
    (label -100). Returns the base model's output: ``.logits`` ``(B, n + T, vocab)``, ``.loss``.
    """
    n = prompt.shape[0]
    B = input_ids.shape[0]
    embeds = base.get_input_embeddings()(input_ids)  # (B, T, d)
    embeds = torch.cat([prompt.unsqueeze(0).expand(B, -1, -1).to(embeds.dtype), embeds], dim=1)
    mask = torch.cat([attention_mask.new_ones(B, n), attention_mask], dim=1)  # (B, n + T)
    if labels is not None:
        labels = torch.cat([labels.new_full((B, n), -100), labels], dim=1)
    return base(inputs_embeds=embeds, attention_mask=mask, labels=labels)
