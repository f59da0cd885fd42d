"""Notebook 00's checkers reject plausible wrong solutions with the right message."""

import re

import pytest
from torch import nn

from ftnotes.exercises import check


def probe_head_frozen(model, num_classes):
    model.head = nn.Linear(model.head.in_features, num_classes)
    for p in model.parameters():  # freezing after the new head freezes the head too
        p.requires_grad = False
    return model


def probe_backbone_trainable(model, num_classes):
    model.head = nn.Linear(model.head.in_features, num_classes)
    return model


def probe_head_not_replaced(model, num_classes):
    for n, p in model.named_parameters():
        p.requires_grad = n.startswith("head")
    return model


def probe_returns_none(model, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Linear(model.head.in_features, num_classes)


def count_all(model):
    return sum(p.numel() for p in model.parameters())


def count_tensors(model):
    return sum(1 for p in model.parameters() if p.requires_grad)


def count_frozen(model):
    return sum(p.numel() for p in model.parameters() if not p.requires_grad)


def accuracy_over_21(logits, labels):  # the checker's first batch has 21 rows
    return (logits.argmax(1) == labels).sum().item() / 21


def accuracy_no_return(logits, labels):
    right = (logits.argmax(1) == labels).float().mean().item()  # noqa: F841


def count_no_return(model):
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)  # noqa: F841


def count_probe_of_16(model):  # the trainable count of the first probe (16 x 3 + 3), by heart
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return 51 if all(not p.requires_grad for p in model.blocks.parameters()) else n


WRONG = [
    ("00_accuracy", accuracy_over_21, "13 rows of 3 classes.*never a fixed number"),
    ("00_accuracy", accuracy_no_return, "returned None: did you forget `return`"),
    ("00_count_trainable", count_no_return, "returned None: did you forget `return`"),
    ("00_count_trainable", count_probe_of_16, "you counted 51, expected 175"),
    ("00_linear_probe", probe_head_frozen, "new head is frozen"),
    ("00_linear_probe", probe_backbone_trainable, "backbone parameters are still trainable"),
    ("00_linear_probe", probe_head_not_replaced, "forget to replace"),
    ("00_linear_probe", probe_returns_none, "return the model"),
    ("00_count_trainable", count_all, "all parameters: leave out"),
    ("00_count_trainable", count_tensors, "tensors: count elements"),
    ("00_count_trainable", count_frozen, "the frozen parameters"),
    ("00_accuracy", lambda lo, y: 100 * (lo.argmax(1) == y).float().mean().item(), "percentage"),
    ("00_accuracy", lambda lo, y: (lo.argmax(1) == y).sum().item(), "a count"),
    ("00_accuracy", lambda lo, y: (lo.max(1).values == y).float().mean().item(), "arg-max"),
    ("00_accuracy", lambda lo, y: (lo.argmax(1) == y).float(), "should return a Python float"),
    ("00_ioai_score", lambda old, new: new, "only the new task"),
    ("00_ioai_score", lambda old, new: old + new, "the sum"),
    ("00_ioai_score", lambda old, new: (old * new) ** 0.5, r"½·old \+ ½·new"),
]


@pytest.mark.parametrize("ex_id, wrong, message", WRONG, ids=lambda v: getattr(v, "__name__", ""))
def test_wrong_solution_is_rejected_with_its_message(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed"
    assert re.search(message, result.message), result.message


def test_accuracy_refuses_a_zero_dim_tensor():
    # a float is asked: a tensor drags autograd and the device into the student's next steps
    result = check("00_accuracy", lambda lo, y: (lo.argmax(1) == y).float().mean())
    assert not result.passed and ".item()" in result.message
