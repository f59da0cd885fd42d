"""Notebook 06's exercise: head expansion by hand (the reference, bad input, wrong answers)."""

import pytest
import torch
from torch import nn

from ftnotes.exercises import check
from ftnotes.exercises.nb06 import expand_rows


def test_reference_keeps_old_rows_and_aligns_new_ones():
    head = nn.Linear(4, 3)
    new = expand_rows(head, 2, [2, 0])
    assert torch.equal(new.weight[:3], head.weight) and torch.equal(new.weight[3:], head.weight[[2, 0]])
    assert new.weight.data_ptr() != head.weight.data_ptr()


@pytest.mark.parametrize("kw, name", [({"num_new": 0}, "num_new"),
                                      ({"num_new": 2, "init_from_rows": [0]}, "init_from_rows"),
                                      ({"num_new": 1, "init_from_rows": [7]}, "init_from_rows")])  # fmt: skip
def test_bad_input_names_the_parameter(kw, name):
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got "):
        expand_rows(nn.Linear(4, 3), **kw)


def test_wrong_answers_fail():
    def shares(head, num_new, init_from_rows=None):  # reuses the old tensor: storage shared
        new = nn.Linear(head.in_features, head.out_features + num_new)
        new.weight = nn.Parameter(torch.cat([head.weight, head.weight[:num_new]]))
        return new

    def random_new(head, num_new, init_from_rows=None):  # forgets to copy the old rows
        return nn.Linear(head.in_features, head.out_features + num_new)

    for wrong in (shares, random_new):
        assert not check("06_expand_rows", wrong).passed
