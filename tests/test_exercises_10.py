"""Notebook 10's checkers reject plausible wrong solutions with the right message."""

import math
import re

import numpy as np
import pytest
import torch

from ftnotes.exercises import check, list_exercises
from ftnotes.exercises.nb10 import choose_max_length, compute_metrics, lora_trainable, mean_pool


def test_notebook_10_has_at_least_three_exercises():
    assert len(list_exercises("10")) >= 3


# ---- 10_mean_pool
def pool_all_positions(h, mask):
    return h.mean(1)


def pool_divide_by_t(h, mask):
    return (h * mask.unsqueeze(-1)).sum(1) / h.shape[1]


def pool_sum(h, mask):
    return (h * mask.unsqueeze(-1)).sum(1)


def pool_cls(h, mask):
    return h[:, 0]


def pool_in_place(h, mask):
    h *= mask.unsqueeze(-1)
    return h.sum(1) / mask.sum(1, keepdim=True)


def pool_wrong_axis(h, mask):
    m = mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum()  # the whole batch's token count


# ---- 10_max_length
def length_percentile(lengths, coverage):
    return int(np.percentile(lengths, 100 * coverage))


def length_floor(lengths, coverage):
    ordered = sorted(lengths)
    return ordered[max(int(coverage * len(ordered)) - 1, 0)]


def length_longest(lengths, coverage):
    return max(lengths)


def length_float(lengths, coverage):
    return float(choose_max_length(lengths, coverage))


def length_round(lengths, coverage):
    ordered = sorted(lengths)
    return ordered[max(round(coverage * len(ordered)) - 1, 0)]


# ---- 10_compute_metrics
def metrics(average="macro", tuple_ok=True, cast=float):
    from sklearn.metrics import f1_score

    def fn(eval_pred):
        logits = eval_pred.predictions
        if tuple_ok and isinstance(logits, tuple):
            logits = logits[0]
        pred = np.argmax(logits, axis=-1)
        labels = eval_pred.label_ids
        return {"accuracy": cast((pred == labels).mean()),
                "macro_f1": cast(f1_score(labels, pred, average=average, zero_division=0))}

    return fn


def metrics_present_classes_only(eval_pred):
    from sklearn.metrics import f1_score

    out = compute_metrics(eval_pred)
    pred = np.argmax(eval_pred.predictions if not isinstance(eval_pred.predictions, tuple)
                     else eval_pred.predictions[0], axis=-1)  # fmt: skip
    out["macro_f1"] = float(f1_score(eval_pred.label_ids, pred, average="macro",
                                     labels=np.unique(pred), zero_division=0))
    return out


# ---- 10_lora_count
def count_no_head(config, r, targets, num_labels):
    return lora_trainable(config, r, targets, num_labels) - (
        config.hidden_size ** 2 + config.hidden_size + config.hidden_size * num_labels + num_labels)


def count_no_pooler(config, r, targets, num_labels):
    return lora_trainable(config, r, targets, num_labels) - config.hidden_size ** 2 - config.hidden_size


def count_no_bias(config, r, targets, num_labels):
    return lora_trainable(config, r, targets, num_labels) - config.hidden_size - num_labels


def count_square_mlp(config, r, targets, num_labels):
    d = config.hidden_size
    head = d * d + d + d * num_labels + num_labels
    return config.num_hidden_layers * len(targets) * r * 2 * d + head


def count_six_layers(config, r, targets, num_labels):
    one = lora_trainable(config, r, targets, num_labels)
    d = config.hidden_size
    head = d * d + d + d * num_labels + num_labels
    return (one - head) // config.num_hidden_layers * 6 + head


CASES = [
    ("10_mean_pool", pool_all_positions, "every position, padding included"),
    ("10_mean_pool", pool_divide_by_t, "divided by T"),
    ("10_mean_pool", pool_sum, "masked sum"),
    ("10_mean_pool", pool_cls, r"\[CLS\]"),
    ("10_mean_pool", pool_in_place, "changed its input"),
    ("10_mean_pool", pool_wrong_axis, "rows differ"),
    ("10_max_length", length_percentile, "a smaller one|only .* fit"),
    ("10_max_length", length_floor, "fewer than coverage"),
    ("10_max_length", length_longest, "a smaller one"),
    ("10_max_length", length_float, "return an int"),
    ("10_max_length", length_round, "fewer than coverage"),
    ("10_compute_metrics", metrics(average="weighted"), "weighted F1"),
    ("10_compute_metrics", metrics(average="micro"), "equals accuracy"),
    ("10_compute_metrics", metrics(tuple_ok=False), "."),
    ("10_compute_metrics", metrics(cast=lambda x: x), "Python floats"),
    ("10_compute_metrics", metrics_present_classes_only, "one never predicted"),
    ("10_lora_count", count_no_head, "only LoRA's A and B"),
    ("10_lora_count", count_no_pooler, "leaves out the pooler"),
    ("10_lora_count", count_no_bias, "biases"),
    ("10_lora_count", count_square_mlp, "peft trains"),
    ("10_lora_count", count_six_layers, "peft trains"),
    ("10_lora_count", lambda c, r, t, n: float(lora_trainable(c, r, t, n)), "return an int"),
]


@pytest.mark.parametrize("ex_id, wrong, message", CASES, ids=lambda v: str(v)[:40])
def test_wrong_solutions_get_specific_messages(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed", result
    assert re.search(message, result.message), result.message


def test_references_pass():
    for ex_id, fn in (("10_mean_pool", mean_pool), ("10_max_length", choose_max_length),
                      ("10_compute_metrics", compute_metrics), ("10_lora_count", lora_trainable)):
        assert check(ex_id, fn).passed, ex_id


def test_mean_pool_reference_equals_the_package():
    from ftnotes.text.encoder import mean_pool as package

    h, m = torch.randn(3, 5, 4), torch.tensor([[1, 1, 0, 0, 0], [1] * 5, [1, 1, 1, 0, 0]])
    torch.testing.assert_close(mean_pool(h, m), package(h, m))


def test_max_length_rule_is_the_notebooks():
    lengths = [3, 9, 4, 12, 7]
    assert choose_max_length(lengths, 1.0) == 12 and choose_max_length(lengths, 0.6) == 7
    assert choose_max_length(lengths, 0.61) == 9  # ceil: at least the fraction
    assert math.ceil(0.61 * 5) == 4
