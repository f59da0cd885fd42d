"""The tiny causal language model of notebook 08: corpus (:mod:`.corpus`), model, tokenizer and
the shipped folder (:mod:`.model`), supervised fine-tuning, generation and exact match
(:mod:`.sft`). ``python -m ftnotes.pretrain_lm`` makes ``data/tiny-lm/``."""

from ftnotes.lm.corpus import SOURCE_SKILLS, TARGET_SKILL, Example
from ftnotes.lm.model import (
    build_tokenizer,
    lm_config,
    load_lm_manifest,
    load_pretrained_lm,
    new_model,
    verify_lm,
)
from ftnotes.lm.sft import (
    encode_examples,
    encode_prompts,
    evaluate,
    evaluate_skills,
    exact_match,
    generate_answers,
    prompt_text,
    train_sft,
)

__all__ = [
    "SOURCE_SKILLS", "TARGET_SKILL", "Example", "build_tokenizer", "encode_examples",
    "encode_prompts", "evaluate", "evaluate_skills", "exact_match", "generate_answers",
    "lm_config", "load_lm_manifest", "load_pretrained_lm", "new_model", "prompt_text",
    "train_sft", "verify_lm",
]  # fmt: skip
