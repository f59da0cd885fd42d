"""Supervised fine-tuning of SmolLM2 with the loss on the answer only: typed out, and through
TRL's ``SFTTrainer`` (whose completion-only loss it must equal).

A training row is TRL's prompt-completion format, ``{"prompt": str, "completion": str}``; the
sequence is ``prompt_ids + completion_ids + [EOS]`` and ``labels`` are ``-100`` on the prompt
(and on padding), the ids on the completion and on the EOS::

    ... <|im_start|>assistant\\nThis noun names a kind of | Ġanimal <|im_end|> | <|im_end|> <|im_end|>
    '---------------- prompt: -100 --------------------' '-- labels ---'  '-- padding: -100 --'

The **pad = EOS trap**: SmolLM2's pad token *is* its EOS (``<|im_end|>``, id 2). A collator that
masks the loss wherever ``input_ids == pad_token_id`` (transformers'
``DataCollatorForLanguageModeling``) also masks the one EOS that ends each answer, so the model
never learns to stop. Padding must be masked by position (the attention mask), never by id.
"""

from __future__ import annotations

import math
import warnings

import torch

IGNORE = -100  # the label the causal-LM loss skips


def answer_only_batch(tokenizer, rows) -> dict:
    """Right-padded ``input_ids``, ``attention_mask``, ``labels``, each ``(N, T)`` int64, for
    prompt-completion ``rows``: labels are the ids on the completion and its EOS, ``-100`` on
    the prompt and on the padding (masked by position: the pad id is the EOS id)."""
    rows = list(rows)
    if not rows:
        raise ValueError("rows must not be empty")
    ids, labels = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"prompt", "completion"} <= set(row):
            raise ValueError(f"rows[{i}] must be a dict with 'prompt' and 'completion', got {row!r:.80}")
        p = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        c = tokenizer(row["completion"] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        ids.append(p + c)
        labels.append([IGNORE] * len(p) + c)
    T = max(map(len, ids))
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([r + [pad] * (T - len(r)) for r in ids]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in ids]),
        "labels": torch.tensor([r + [IGNORE] * (T - len(r)) for r in labels]),
    }


def answer_only_loss(logits, labels) -> torch.Tensor:
    """Mean cross-entropy of the tokens whose label is not -100: position t predicts token
    t + 1, so logits ``(N, T, V)`` lose their last column and labels ``(N, T)`` their first."""
    logits, labels = _at_least_fp32(logits[:, :-1]), labels[:, 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             labels.reshape(-1), ignore_index=IGNORE)  # fmt: skip


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """bfloat16 / float16 logits in float32 (as transformers' loss does); float64 stays float64
    (the exact reference the notebook compares TRL's loss against)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


@torch.no_grad()
def answer_logprobs(model, batch) -> torch.Tensor:
    """Log-probability the model gives each labelled token, ``(N, T - 1)`` (0 elsewhere).

    Only the positions that predict a labelled token go through the LM head and the softmax
    (transformers' ``logits_to_keep`` with a boolean ``(N, T)`` mask): with a 49,152-token
    vocabulary the prompt positions' logits and their softmax were about a fifth of the pass
    (:func:`ftnotes.reallm.forgetting.answer_loglik` on SmolLM2, one EPYC core: 3.1 s, now 2.5 s)."""
    labels = batch["labels"][:, 1:]  # position t predicts token t + 1
    scored = labels != IGNORE  # (N, T - 1)
    keep = torch.nn.functional.pad(scored, (0, 1), value=False)  # (N, T): the last predicts nothing
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=keep).logits  # (number of scored tokens, V)  # fmt: skip
    logp = torch.log_softmax(_at_least_fp32(logits), -1)
    out = torch.zeros(labels.shape, dtype=logp.dtype, device=logp.device)
    out[scored] = logp.gather(-1, labels[scored].unsqueeze(-1)).squeeze(-1)
    return out


def sft_config(steps: int, lr: float, batch_size: int = 8, seed: int = 0, device=None,
               output_dir=None, **changes):  # fmt: skip
    """TRL's ``SFTConfig`` for a short run on this course's machines: the loss on the
    completion only, ``steps`` optimizer steps of ``batch_size``, a linear decay after 10%
    warmup, no checkpoints, no logging service.

    Two of TRL's defaults are switched off on a CPU: ``bf16=True`` (bfloat16 matmuls are emulated
    there, about 15x slower) and activation checkpointing (``gradient_checkpointing=True`` in
    TRL: it recomputes the forward pass to save memory we do not lack). On a GPU with bfloat16
    they stay on. ``device``: a ``torch.device`` (default ``ftnotes.utils.get_device()``).
    """
    from trl import SFTConfig

    from ftnotes.checks import check_int
    from ftnotes.utils import get_device, scratch_dir

    check_int("steps", steps)
    check_int("batch_size", batch_size)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    device = get_device() if device is None else torch.device(device)
    gpu_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    kw = dict(
        output_dir=output_dir or scratch_dir(), max_steps=steps,
        per_device_train_batch_size=batch_size, learning_rate=lr, lr_scheduler_type="linear",
        warmup_steps=max(1, steps // 10), weight_decay=0.0, max_grad_norm=1.0, seed=seed,
        data_seed=seed, completion_only_loss=True, max_length=None, save_strategy="no",
        report_to="none", logging_steps=1, use_cpu=device.type == "cpu", bf16=gpu_bf16,
        activation_checkpointing=device.type != "cpu", dataloader_num_workers=0,
    )  # fmt: skip
    kw.update(changes)
    return SFTConfig(**kw)


def make_trainer(model, tokenizer, rows, config, peft_config=None):
    """``SFTTrainer`` on prompt-completion ``rows`` with one progress bar (TRL's dataset
    preparation bars and the per-step log lines are switched off)."""
    import datasets
    from trl import SFTTrainer

    from ftnotes.hf_trainer import quiet

    datasets.disable_progress_bars()  # "Tokenizing train dataset" etc.: not a training's bar
    data = datasets.Dataset.from_list(list(rows))
    with warnings.catch_warnings():  # peft 0.21 wrapping the model reads a deprecated name
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
        trainer = SFTTrainer(model=model, args=config, train_dataset=data,
                             processing_class=tokenizer, peft_config=peft_config)  # fmt: skip
    return quiet(trainer)


def trl_batch(trainer, n: int) -> dict:
    """The first ``n`` rows of ``trainer.train_dataset`` as TRL prepared them (its tokenisation
    and labels) and collated by ``trainer.data_collator`` (its padding), on the model's device."""
    from ftnotes.checks import check_int

    check_int("n", n)
    data = trainer.train_dataset
    batch = trainer.data_collator([data[i] for i in range(min(n, len(data)))])
    return {k: v.to(trainer.model.device) for k, v in batch.items() if torch.is_tensor(v)}


def trl_loss(trainer, batch) -> torch.Tensor:
    """TRL's completion-only loss of ``trainer.model`` on ``batch`` (``trainer.compute_loss``:
    its fused LM head projects the hidden states in tiles and sums the label tokens'
    log-probabilities), in eval mode, without gradients."""
    trainer.model.eval()
    with torch.no_grad():
        return trainer.compute_loss(trainer.model, dict(batch))
