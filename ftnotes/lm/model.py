"""The tiny causal LM in Hugging Face format: tokenizer, config, the shipped folder and its check.

The model is transformers' ``LlamaForCausalLM`` (Touvron et al. 2023) made tiny: width 64,
3 layers, 4 heads, RoPE positions, RMSNorm, a SwiGLU MLP, tied input/output embeddings. Its
modules carry the names students meet on Llama and Qwen checkpoints: ``q_proj``, ``k_proj``,
``v_proj``, ``o_proj`` in ``self_attn``, ``gate_proj``, ``up_proj``, ``down_proj`` in ``mlp``.
(Why Llama and not Qwen2: transformers 5 loads a folder whose config says ``qwen2`` with
``Qwen2Tokenizer``, whose byte-level pre-tokenizer replaces ours and drops the spaces of a
character-level vocabulary; with ``llama`` the folder's own ``tokenizer.json`` is used as is.)

The tokenizer is character level, built offline with the ``tokenizers`` library: one token per
character of :func:`ftnotes.lm.corpus.alphabet`, plus the special tokens ``<pad>``, ``<unk>``,
``<|user|>``, ``<|assistant|>`` and ``<|end|>`` (the end of a turn, also the EOS token that stops
generation). Its chat template writes a turn as ``<|user|>PROMPT<|end|><|assistant|>ANSWER<|end|>``.

``data/tiny-lm/`` is written by ``python -m ftnotes.pretrain_lm``; ``data/tiny-lm.json`` (the
manifest) records config, seed, the sha256 of every file in the folder, the per-skill held-out
accuracy, the command and the time. It is declared as ``tiny-lm`` in :mod:`ftnotes.registry`;
:func:`load_pretrained_lm` checks it (files, sha256s, architecture) through
:mod:`ftnotes.artifacts` first.
"""

from __future__ import annotations

from pathlib import Path

from ftnotes import (
    artifacts,
    hf,  # noqa: F401  (first: switches the Hugging Face libraries offline)
)
from ftnotes.lm.corpus import alphabet

_SPEC = artifacts.get("tiny-lm")  # the declaration: files, command, architecture, tolerances
LM_DIR_NAME = _SPEC.location
MANIFEST_NAME = f"{LM_DIR_NAME}.json"
LM_FILES = _SPEC.files
PAD, UNK, USER, ASSISTANT, END = "<pad>", "<unk>", "<|user|>", "<|assistant|>", "<|end|>"
SPECIAL_TOKENS = (PAD, UNK, USER, ASSISTANT, END)
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}<|end|>"
    "{% elif m['role'] == 'assistant' %}<|assistant|>{{ m['content'] }}<|end|>"
    "{% else %}{{ raise_exception('role must be user or assistant, got ' + m['role']) }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
MAX_CONTEXT = 64  # tokens: the longest example is 29
REGENERATE_COMMAND = artifacts.fix_command("tiny-lm")


def lm_config(**changes):
    """The tiny ``LlamaConfig`` (``changes`` override fields, e.g. ``num_hidden_layers=2``)."""
    from transformers import LlamaConfig

    vocab = vocabulary()
    kw = dict(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=192, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=MAX_CONTEXT,
        rms_norm_eps=1e-5, tie_word_embeddings=True, pad_token_id=vocab[PAD],
        eos_token_id=vocab[END], bos_token_id=None, attention_dropout=0.0,
    )  # fmt: skip
    kw.update(changes)
    return LlamaConfig(**kw)


def vocabulary() -> dict[str, int]:
    """Token -> id: the special tokens first (``<pad>`` is 0), then one id per character."""
    return {t: i for i, t in enumerate([*SPECIAL_TOKENS, *alphabet()])}


def build_tokenizer():
    """A ``PreTrainedTokenizerFast``: one token per character, the special tokens whole, the
    chat template, left padding (generation continues every row from its last real token)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocabulary(), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # characters
    tok.decoder = decoders.Fuse()  # join characters back without spaces between them
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, unk_token=UNK, eos_token=END,
        chat_template=CHAT_TEMPLATE, model_max_length=MAX_CONTEXT, padding_side="left",
    )  # fmt: skip


def new_model(seed: int = 0, **changes):
    """A freshly initialised ``LlamaForCausalLM`` of :func:`lm_config` (the scratch baseline)."""
    from transformers import LlamaForCausalLM

    from ftnotes.utils import set_seed

    set_seed(seed)
    return LlamaForCausalLM(lm_config(**changes))


# ---- the shipped folder ----------------------------------------------------------------------


def lm_path(path=None) -> Path:
    """The LM folder: ``path``, else ``$FTNOTES_LM``, else ``data/tiny-lm``."""
    return artifacts.locate("tiny-lm", path)


def manifest_path(path=None) -> Path:
    """The manifest next to the folder: ``data/tiny-lm`` -> ``data/tiny-lm.json``."""
    return artifacts.manifest_path("tiny-lm", path)


def load_lm_manifest(path=None) -> dict:
    """The manifest of the LM folder (``data/tiny-lm.json``), its fields checked."""
    return artifacts.read_manifest("tiny-lm", path)


def verify_lm(path=None) -> Path:
    """Check every file of the LM folder against the manifest's sha256s and the declared
    architecture; returns the folder.

    Raises :class:`~ftnotes.artifacts.WeightsError` naming what is missing or changed and the
    command that regenerates the folder.
    """
    return artifacts.verify("tiny-lm", path)


def load_pretrained_lm(path=None, **kwargs):
    """``(model, tokenizer)``: the shipped tiny LM (eval mode) and its tokenizer, checked first.

    ``kwargs`` go to ``AutoModelForCausalLM.from_pretrained`` (e.g. ``dtype=torch.float32``).
    Offline: the folder is local and the Hub is never asked.
    """
    return artifacts.load("tiny-lm", path, **kwargs)


def save_lm(model, tokenizer, out) -> dict[str, str]:
    """``save_pretrained`` of model and tokenizer into the folder ``out``, built beside it and
    swapped in whole (:func:`ftnotes.artifacts.building`); returns ``{file: sha256}``."""
    with artifacts.building(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        names = sorted(p.name for p in tmp.iterdir())
        if names != sorted(LM_FILES):
            raise RuntimeError(f"save_pretrained wrote {names}, expected {sorted(LM_FILES)}")
        return artifacts.hash_files(tmp, LM_FILES)
