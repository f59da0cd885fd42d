"""The tiny causal language model of notebook 08: corpus (:mod:`.corpus`), model, tokenizer and
the shipped folder (:mod:`.model`), supervised fine-tuning, generation and exact match
(:mod:`.sft`). ``python -m ftnotes.pretrain_lm`` makes ``data/tiny-lm/``."""

import importlib

# name -> the module that defines it, imported on first use (PEP 562): ``from ftnotes.lm import
# corpus`` (the contest task mirror_keep, its starter) then costs no transformers import (~2.5 s).
_WHERE = {
    "corpus": ("SOURCE_SKILLS", "TARGET_SKILL", "Example"),
    "model": ("build_tokenizer", "lm_config", "load_lm_manifest", "load_pretrained_lm",
              "new_model", "verify_lm"),
    "sft": ("encode_examples", "encode_prompts", "evaluate", "evaluate_skills", "exact_match",
            "generate_answers", "prompt_text", "train_sft"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'ftnotes.lm' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ftnotes.lm.{_MODULE_OF[name]}"), name)


__all__ = list(_MODULE_OF)
