"""Notebook 07's checkers reject plausible wrong solutions with the right message."""

import re

import numpy as np
import pytest
import torch
from peft import LoraConfig
from torch import nn

from ftnotes.exercises import check
from ftnotes.exercises.nb07 import grow_classifier, pick_targets


def lora_cfg(**changes):
    kw = dict(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"],
              modules_to_save=["classifier"])  # fmt: skip
    kw.update(changes)
    return lambda: LoraConfig(**kw)


def grow(copy_bias=True, update_config=True, keep_rows=True):
    def fn(model, new_labels):
        if not keep_rows:  # what ignore_mismatched_sizes=True does: every row new
            model.classifier = nn.Linear(model.classifier.in_features, 13)
        elif not copy_bias:
            old = model.classifier
            head = nn.Linear(old.in_features, 13)
            with torch.no_grad():
                head.weight[:10] = old.weight
            model.classifier = head
        else:
            config = model.config
            out = grow_classifier(model, new_labels)
            if not update_config:
                out.config = config
                out.config.id2label = {i: str(i) for i in range(10)}
            return out
        return model

    return fn


def metrics(axis=-1, key="accuracy", wrong=False, first=True, as_float=True):
    def fn(eval_pred):
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        if first and isinstance(logits, tuple):
            logits = logits[0]
        hits = np.argmax(logits, axis=axis) == labels
        acc = (~hits if wrong else hits).mean()
        return {key: float(acc) if as_float else torch.tensor(acc)}

    return fn


def targets_first_k(model, k):
    return [n for n in pick_targets(model, model.config.num_hidden_layers)
            if int(n.split(".")[2]) < k]  # fmt: skip


def grow_fixed(out_features=None, in_features=None, freeze=False):
    def fn(model, new_labels):
        old = model.classifier
        n_old = old.out_features
        head = nn.Linear(in_features or old.in_features, out_features or n_old + len(new_labels))
        with torch.no_grad():
            head.weight[:n_old] = old.weight if head.in_features == old.in_features else 0
            head.bias[:n_old] = old.bias
        head.requires_grad_(not freeze)
        model.classifier = head
        labels = [model.config.id2label[i] for i in range(n_old)] + list(new_labels)
        model.config.id2label = dict(enumerate(labels))
        model.config.label2id = {c: i for i, c in enumerate(labels)}
        model.num_labels = model.config.num_labels = len(labels)
        return model

    return fn


def grow_no_return(model, new_labels):
    grow_classifier(model, new_labels)


def metrics_over_6(eval_pred):  # the first batch has 6 examples
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {"accuracy": float((np.argmax(logits, -1) == labels).sum() / 6)}


CASES = [
    ("07_lora_config", lora_cfg(layers_to_transform=[0, 1]), "3-layer model .* got no LoRA"),
    ("07_lora_config", lambda: None, "returned None: did you forget `return`"),
    ("07_pick_targets", lambda m, k: pick_targets(m, k) * 2, "appear twice"),
    ("07_pick_targets", lambda m, k: None, "returned None"),
    ("07_compute_metrics", metrics_over_6, "10 examples of 3 classes.*not a fixed number"),
    ("07_compute_metrics", lambda p: None, "returned None"),
    ("07_grow_classifier", grow_fixed(out_features=13), r"nn.Linear\(24 -> 7\)"),
    ("07_grow_classifier", grow_fixed(in_features=16), r"nn.Linear\(24 -> 7\)"),
    ("07_grow_classifier", grow_fixed(freeze=True), "weight, bias is frozen: the new rows"),
    ("07_grow_classifier", grow_no_return, "returned None"),
    ("07_lora_config", lora_cfg(target_modules=["q_proj", "k_proj", "v_proj"]), "also put on"),
    ("07_lora_config", lora_cfg(target_modules=["q_proj"]), "got no LoRA"),
    ("07_lora_config", lora_cfg(target_modules=["query", "value"]), "peft refused.*q_proj"),
    ("07_lora_config", lora_cfg(r=16, lora_alpha=8), "rank r is 16"),
    ("07_lora_config", lora_cfg(lora_alpha=4), "swapped r and lora_alpha"),
    ("07_lora_config", lora_cfg(lora_alpha=8), "should be 2"),
    ("07_lora_config", lora_cfg(lora_dropout=0.0), "dropout is 0"),
    ("07_lora_config", lora_cfg(modules_to_save=None), "classifier does not train"),
    ("07_lora_config", lambda: {"r": 8}, "peft config object"),
    ("07_pick_targets", targets_first_k, "not in the last"),
    ("07_pick_targets", lambda m, k: pick_targets(m, k) + ["classifier"], "classifier is in"),
    (
        "07_pick_targets",
        lambda m, k: ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
        "full names",
    ),
    (
        "07_pick_targets",
        lambda m, k: [n for n in pick_targets(m, k) if "attention" in n],
        "are missing",
    ),
    (
        "07_pick_targets",
        lambda m, k: pick_targets(m, k + 1) if k < 2 else pick_targets(m, k),
        "not in the last",
    ),
    ("07_compute_metrics", metrics(axis=0), "axis 0"),
    ("07_compute_metrics", metrics(key="acc"), "key should be 'accuracy'"),
    ("07_compute_metrics", metrics(wrong=True), "wrong predictions"),
    ("07_compute_metrics", metrics(as_float=False), "Python float"),
    ("07_compute_metrics", metrics(first=False), "raised"),
    ("07_compute_metrics", lambda p: 0.5, "return a dict"),
    ("07_grow_classifier", grow(keep_rows=False), "first 10 weight rows"),
    ("07_grow_classifier", grow(copy_bias=False), "copy the old bias"),
    ("07_grow_classifier", grow(update_config=False), "id2label should list"),
]


@pytest.mark.parametrize("ex_id, wrong, message", CASES, ids=lambda v: str(v)[:40])
def test_wrong_solutions_get_specific_messages(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed", result
    assert re.search(message, result.message), result.message
