"""Notebook 08's checkers reject plausible wrong solutions with the right message."""

import re

import pytest
import torch

from ftnotes.exercises import check
from ftnotes.exercises.nb08 import build_labels, lora_trainable


def labels_keep_prompt(ids, mask, lengths):
    labels = ids.clone()
    labels[mask == 0] = -100
    return labels


def labels_keep_padding(ids, mask, lengths):
    labels = ids.clone()
    for i, n in enumerate(lengths):
        labels[i, :n] = -100
    return labels


def labels_off_by_one(ids, mask, lengths):
    return build_labels(ids, mask, [n + 1 for n in lengths])


def labels_one_short(ids, mask, lengths):
    return build_labels(ids, mask, [n - 1 for n in lengths])


def labels_zero(ids, mask, lengths):
    out = build_labels(ids, mask, lengths)
    out[out == -100] = 0
    return out


def em(strip=True, lower=True, collapse=True, percent=False):
    def fn(preds, answers):
        def norm(t):
            t = re.sub(r"\s+", " ", t) if collapse else t
            t = t.strip() if strip else t
            return t.lower() if lower else t

        share = sum(norm(p) == norm(a) for p, a in zip(preds, answers)) / len(answers)
        return 100 * share if percent else share

    return fn


def lora_one_layer(config, r, targets):
    return lora_trainable(config, r, targets) // config.num_hidden_layers


def lora_square(config, r, targets):
    return config.num_hidden_layers * len(targets) * r * 2 * config.hidden_size


def lora_in_only(config, r, targets):
    return lora_trainable(config, r, targets) // 2


def labels_two_rows(ids, mask, lengths):  # the checker's first batches have 2 rows
    labels = ids.clone()
    for i in range(2):
        labels[i, : lengths[i]] = -100
    labels[mask == 0] = -100
    return labels


def labels_no_return(ids, mask, lengths):
    labels = build_labels(ids, mask, lengths)  # noqa: F841


def em_over_two(preds, answers):  # most of the checker's lists have 2 pairs
    norm = lambda t: " ".join(t.lower().split())  # noqa: E731
    return sum(norm(p) == norm(a) for p, a in zip(preds, answers)) / 2


def lora_true_division(config, r, targets):  # head_dim with / : a float count
    head_dim = config.hidden_size / config.num_attention_heads
    q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    d, f = config.hidden_size, config.intermediate_size
    shapes = {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
              "gate_proj": (d, f), "up_proj": (d, f), "down_proj": (f, d)}  # fmt: skip
    return config.num_hidden_layers * sum(r * sum(shapes[m]) for m in targets)


CASES = [
    ("08_label_mask", labels_two_rows, "batch of 3 rows .*never fixed sizes"),
    ("08_label_mask", labels_no_return, "returned None: did you forget `return`"),
    ("08_exact_match", em_over_two, "1 of 3 right should give 1/3.*true division"),
    ("08_exact_match", lambda p, a: None, "returned None"),
    ("08_exact_match", lambda p, a: round(em()(p, a), 2), "1 of 3 right should give 1/3"),
    ("08_lora_count", lora_true_division, "the float .*// rounds down"),
    ("08_lora_count", lambda c, r, t: None, "returned None"),
    ("08_label_mask", labels_keep_prompt, "prompt tokens keep their ids"),
    ("08_label_mask", labels_keep_padding, "padding at the end of row 1 is scored"),
    ("08_label_mask", labels_off_by_one, "first answer token is -100"),
    ("08_label_mask", labels_one_short, "last prompt token is scored"),
    ("08_label_mask", labels_zero, "you put 0 where"),
    ("08_exact_match", em(strip=False), "strip the ends"),
    ("08_exact_match", em(lower=False), "lowercase both"),
    ("08_exact_match", em(collapse=False), "collapse runs"),
    ("08_exact_match", em(percent=True), "should give 0.5"),
    ("08_exact_match", lambda p, a: sum(x.strip() == y for x, y in zip(p, a)), "Python float"),
    ("08_lora_count", lora_one_layer, "one layer's count"),
    ("08_lora_count", lora_square, "grouped-query"),
    ("08_lora_count", lora_in_only, "peft counts"),
    ("08_lora_count", lambda c, r, t: float(lora_trainable(c, r, t)), "return an int"),
]


@pytest.mark.parametrize("ex_id, wrong, message", CASES, ids=lambda v: str(v)[:40])
def test_wrong_solutions_get_specific_messages(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed", result
    assert re.search(message, result.message), result.message


def test_reference_label_mask_does_not_change_its_input():
    ids = torch.tensor([[5, 6, 7, 4]])
    before = ids.clone()
    build_labels(ids, torch.ones_like(ids), [2])
    assert torch.equal(ids, before)
