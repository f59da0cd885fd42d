"""Notebook 11's checkers reject plausible wrong solutions with the right message, and accept
the reference."""

import re

import pytest

from ftnotes.exercises import check
from ftnotes.exercises.nb11 import (
    LINEAR,
    answer_example,
    chat_tokenizer,
    continuation_prompt,
    lora_budget,
)


def labels_no_eos(tok, messages, answer):
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    a = tok(answer, add_special_tokens=False)["input_ids"]
    return p + a, [-100] * len(p) + a


def labels_pad_masked(tok, messages, answer):  # the pad = EOS trap: masks "padding" by id
    ids, labels = answer_example(tok, messages, answer)
    return ids, [-100 if i == tok.pad_token_id else lab for i, lab in zip(ids, labels)]


def labels_prompt_scored(tok, messages, answer):
    ids, _ = answer_example(tok, messages, answer)
    return ids, list(ids)


def labels_no_generation_prompt(tok, messages, answer):
    prompt = tok.apply_chat_template(messages, tokenize=False)
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    a = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
    return p + a, [-100] * len(p) + a


def labels_hardcoded_im_end(tok, messages, answer):
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    a = tok(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    return p + a, [-100] * len(p) + a


def labels_off_by_one(tok, messages, answer):
    ids, labels = answer_example(tok, messages, answer)
    n = labels.count(-100)
    return ids, [-100] * (n + 1) + ids[n + 1 :]


def labels_as_tensors(tok, messages, answer):
    import torch

    return tuple(torch.tensor(x) for x in answer_example(tok, messages, answer))


def prompt_trailing_space(tok, system, user, prefill):
    return continuation_prompt(tok, system, user, prefill) + " "


def prompt_as_assistant_message(tok, system, user, prefill):
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user},
                {"role": "assistant", "content": prefill}]  # fmt: skip
    return tok.apply_chat_template(messages, tokenize=False)


def prompt_not_opened(tok, system, user, prefill):
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return tok.apply_chat_template(messages, tokenize=False) + prefill


def prompt_no_system(tok, system, user, prefill):
    messages = [{"role": "user", "content": user}]
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefill


def prompt_in_user_turn(tok, system, user, prefill):
    messages = [{"role": "system", "content": system}, {"role": "user", "content": f"{user} {prefill}"}]
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def prompt_token_ids(tok, system, user, prefill):
    return tok(continuation_prompt(tok, system, user, prefill))["input_ids"]


def budget_square_kv(config, r, targets):  # k_proj and v_proj counted as hidden x hidden
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    shapes = {m: (d, d) for m in LINEAR[:4]} | {"gate_proj": (d, f), "up_proj": (d, f),
                                                 "down_proj": (f, d)}  # fmt: skip
    targets = LINEAR if targets == "all-linear" else targets
    trainable = n * sum(r * (i + o) for m, (i, o) in shapes.items() if m in targets)
    return trainable, lora_budget(config, r, targets)[1] - lora_budget(config, r, targets)[0] + trainable


def budget_head_twice(config, r, targets):  # the tied LM head counted as a second matrix
    trainable, total = lora_budget(config, r, targets)
    tied = config.tie_word_embeddings
    return trainable, total + (config.vocab_size * config.hidden_size if tied else 0)


def budget_no_norms(config, r, targets):
    trainable, total = lora_budget(config, r, targets)
    return trainable, total - (2 * config.num_hidden_layers + 1) * config.hidden_size


def budget_swapped(config, r, targets):
    return tuple(reversed(lora_budget(config, r, targets)))


def budget_all_linear_with_head(config, r, targets):
    trainable, total = lora_budget(config, r, targets)
    extra = r * (config.hidden_size + config.vocab_size) if targets == "all-linear" else 0
    return trainable + extra, total + extra


def budget_base_only(config, r, targets):  # total without the LoRA parameters
    trainable, total = lora_budget(config, r, targets)
    return trainable, total - trainable


CASES = [
    ("11_answer_labels", labels_no_eos, "must end with the tokenizer's EOS"),
    ("11_answer_labels", labels_pad_masked, "pad = EOS trap"),
    ("11_answer_labels", labels_prompt_scored, "prompt tokens are scored"),
    ("11_answer_labels", labels_no_generation_prompt, "assistant's turn opened"),
    ("11_answer_labels", labels_hardcoded_im_end, "use tokenizer.eos_token"),
    ("11_answer_labels", labels_off_by_one, "labels should be"),
    ("11_answer_labels", labels_as_tensors, "list of Python ints"),
    ("11_continue_prompt", prompt_trailing_space, "ends with a space"),
    ("11_continue_prompt", prompt_as_assistant_message, "new turn"),
    ("11_continue_prompt", prompt_not_opened, "turn is not opened"),
    ("11_continue_prompt", prompt_no_system, "system turn is missing"),
    ("11_continue_prompt", prompt_in_user_turn, "must end with the prefill itself"),
    ("11_continue_prompt", prompt_token_ids, "as a str"),
    ("11_lora_budget", budget_square_kv, "grouped-query attention"),
    ("11_lora_budget", budget_head_twice, "counted once"),
    ("11_lora_budget", budget_no_norms, "RMSNorms"),
    ("11_lora_budget", budget_swapped, "trainable comes first"),
    ("11_lora_budget", budget_all_linear_with_head, "not the LM head"),
    ("11_lora_budget", budget_base_only, "plus the LoRA parameters"),
    ("11_lora_budget", lambda c, r, t: tuple(float(x) for x in lora_budget(c, r, t)), "two ints"),
]


@pytest.mark.parametrize("ex_id, wrong, message", CASES, ids=lambda v: str(v)[:40])
def test_wrong_solutions_get_specific_messages(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed", result
    assert re.search(message, result.message), result.message


@pytest.mark.parametrize("ex_id, ref", [("11_answer_labels", answer_example),
                                        ("11_continue_prompt", continuation_prompt),
                                        ("11_lora_budget", lora_budget)])  # fmt: skip
def test_the_reference_passes(ex_id, ref):
    assert check(ex_id, ref).passed


def test_the_two_tokenizers_differ_where_the_checkers_need_it():
    a, b = chat_tokenizer("chatml"), chat_tokenizer("tags")
    assert a.eos_token == "<|im_end|>" and b.eos_token == "<|end|>"
    assert a.pad_token_id == a.eos_token_id  # the trap the first checker catches
    # BPE pieces carry their leading space: "of" + " animal" is not "of " + "animal"
    assert a("kind of animal")["input_ids"] != a("kind of ")["input_ids"] + a("animal")["input_ids"]
