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


CASES = [
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
