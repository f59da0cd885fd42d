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
accuracy, the command and the time. :func:`load_pretrained_lm` checks the files first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ftnotes import hf  # noqa: F401  (first: switches the Hugging Face libraries offline)
from ftnotes.checkpoints import (
    DATA_DIR,
    IN_CLONE,
    USER_WEIGHTS_DIR,
    WeightsError,
    check_files,
    sha256_file,
)
from ftnotes.lm.corpus import alphabet

LM_DIR_NAME = "tiny-lm"
MANIFEST_NAME = "tiny-lm.json"
LM_FILES = ("chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
            "tokenizer.json", "tokenizer_config.json")  # fmt: skip
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

REGENERATE_COMMAND = (
    "python -m ftnotes.pretrain_lm"
    if IN_CLONE
    else f"python -m ftnotes.pretrain_lm --out {USER_WEIGHTS_DIR}` and then "
    f"`export FTNOTES_LM={USER_WEIGHTS_DIR / LM_DIR_NAME}"
)


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
    if path is None:
        path = os.environ.get("FTNOTES_LM") or DATA_DIR / LM_DIR_NAME
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be None, a str or a Path, got {path!r}")
    return Path(path)


def manifest_path(path=None) -> Path:
    """The manifest next to the folder: ``data/tiny-lm`` -> ``data/tiny-lm.json``."""
    folder = lm_path(path)
    return folder.with_name(folder.name + ".json")


def _fail(msg: str) -> WeightsError:
    return WeightsError(f"{msg}. Regenerate the language model with `{REGENERATE_COMMAND}` "
                        "(a few minutes on 2 cores, see README).")  # fmt: skip


def load_lm_manifest(path=None) -> dict:
    """The manifest of the LM folder (``data/tiny-lm.json``)."""
    file = manifest_path(path)
    if not file.is_file():
        raise _fail(f"the manifest {file} is missing")
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise _fail(f"the manifest {file} is unreadable ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise _fail(f"the manifest {file} records no files")
    return data


def verify_lm(path=None) -> Path:
    """Check every file of the LM folder against the manifest's sha256s; returns the folder.

    Raises :class:`~ftnotes.checkpoints.WeightsError` naming what is missing or changed and the
    command that regenerates the folder.
    """
    folder = lm_path(path)
    if not folder.is_dir():
        raise _fail(f"the language model folder {folder} is missing")
    check_files(folder, load_lm_manifest(folder)["files"], _fail)
    return folder


def load_pretrained_lm(path=None, **kwargs):
    """``(model, tokenizer)``: the shipped tiny LM (eval mode) and its tokenizer, checked first.

    ``kwargs`` go to ``AutoModelForCausalLM.from_pretrained`` (e.g. ``dtype=torch.float32``).
    Offline: the folder is local and the Hub is never asked.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = verify_lm(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        if kwargs:
            raise  # the caller's arguments, not the folder, are the problem
        raise _fail(f"{folder} could not be loaded ({str(err).splitlines()[0][:300]})") from None
    return model.eval(), tokenizer


def save_lm(model, tokenizer, out: Path) -> dict[str, str]:
    """``save_pretrained`` of model and tokenizer into ``out``; returns ``{file: sha256}``."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    names = sorted(p.name for p in out.iterdir())
    if names != sorted(LM_FILES):
        raise RuntimeError(f"save_pretrained wrote {names}, expected {sorted(LM_FILES)}")
    for name in names:  # safetensors writes private files; shipped files are shared
        os.chmod(out / name, 0o644)
    return {n: sha256_file(out / n) for n in LM_FILES}
