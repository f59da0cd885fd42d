"""Careless habits that every checker refuses, whatever the exercise (issue 14, item 7).

Per class, a wrong solution written for a real exercise: changing the caller's tensors in place,
reseeding the global random generators, returning a tensor or a rounded number where a float is
asked, hard-coding the checker's test-model sizes, a bias-less head wrongly refused, numpy ints.
"""

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ftnotes.exercises import check


def accuracy_sorts_labels_in_place(logits, labels):
    right = (logits.argmax(1) == labels).float().mean().item()
    labels[:] = labels.flip(0)  # scribbles on the caller's tensor
    return right


def flag_noisy_in_place(model, images, labels, k):
    model.eval()
    with torch.no_grad():
        images -= images.mean()  # "normalising" writes into the caller's images
        losses = F.cross_entropy(model(images), labels, reduction="none")
    return losses.topk(k).indices


def split_with_global_seed(labels, val_fraction, seed=0):
    torch.manual_seed(seed)  # resets the notebook's random stream
    train, val = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx))]
        n = round(len(idx) * val_fraction)
        val.append(idx[:n])
        train.append(idx[n:])
    return torch.cat(train), torch.cat(val)


def split_with_python_seed(labels, val_fraction, seed=0):
    random.seed(seed)
    np.random.seed(seed)
    return split_with_global_seed.__wrapped__(labels, val_fraction, seed)


def _split_plain(labels, val_fraction, seed=0):
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n = round(len(idx) * val_fraction)
        val.append(idx[:n])
        train.append(idx[n:])
    return torch.cat(train), torch.cat(val)


split_with_global_seed.__wrapped__ = _split_plain


def probe_hard_coded_width(model, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Linear(16, num_classes)  # the checker's first model happens to be 16 wide
    return model


def probe_hard_coded_classes(model, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Linear(model.head.in_features, 10)
    return model


def probe_without_bias(model, num_classes):  # correct: a linear probe may have no bias
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Linear(model.head.in_features, num_classes, bias=False)
    return model


def test_changing_an_input_in_place_is_refused():
    for ex_id, wrong in (("00_accuracy", accuracy_sorts_labels_in_place),
                         ("05_flag_noisy", flag_noisy_in_place)):  # fmt: skip
        result = check(ex_id, wrong)
        assert not result.passed and "in place" in result.message, (ex_id, result.message)


def test_reseeding_the_global_generators_is_refused_and_leaves_them_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for wrong, name in ((split_with_global_seed, "torch.manual_seed"),
                        (split_with_python_seed, "random.seed")):  # fmt: skip
        result = check("05_stratified_split", wrong)
        assert not result.passed and name in result.message, result.message
    assert torch.equal(torch.rand(3), expected)  # the student's own stream goes on untouched
    assert check("05_stratified_split", _split_plain).passed  # the same code with a Generator


def test_a_tensor_or_a_rounded_number_where_a_float_is_asked():
    result = check("00_accuracy", lambda lo, y: (lo.argmax(1) == y).float().mean())
    assert not result.passed and ".item()" in result.message
    result = check("00_accuracy", lambda lo, y: round((lo.argmax(1) == y).float().mean().item(), 2))
    assert not result.passed and "rounded to 2 decimals" in result.message, result.message
    result = check("00_ioai_score", lambda old, new: round(0.5 * old + 0.5 * new, 3))
    assert not result.passed and "rounded to 3 decimals" in result.message, result.message


def test_hard_coded_test_model_sizes_are_refused():
    result = check("00_linear_probe", probe_hard_coded_width)
    assert not result.passed and "model.head.in_features" in result.message, result.message
    result = check("00_linear_probe", probe_hard_coded_classes)
    assert not result.passed and "hard-code" in result.message, result.message


def test_false_rejections_fixed():
    assert check("00_linear_probe", probe_without_bias).passed

    def blocks_numpy(epoch, depth, epochs_per_stage=1):
        n = min(depth, epoch // epochs_per_stage)
        return list(np.arange(depth - n, depth))  # numpy ints index like ints

    assert check("01_gradual_unfreezing", blocks_numpy).passed


def test_no_last_hint_is_the_literal_solution_line():
    import inspect

    from ftnotes.exercises.core import _REGISTRY

    for ex in _REGISTRY.values():
        source = "\n".join(inspect.getsource(s) for s in ex.solution)
        lines = {line.strip() for line in source.splitlines() if len(line.strip()) > 12}
        last = ex.hints[-1]
        parts = {p.strip().rstrip(".") for p in last.replace(";", "\n").splitlines()}
        given = [line for line in lines if line in last or line in parts]
        assert not given, f"{ex.id}: the last hint gives away {given[0]!r}"
