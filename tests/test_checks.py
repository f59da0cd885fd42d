"""The validation vocabulary: every check names the parameter, the value and what is allowed,
and a bool is never taken for a number."""

import math

import numpy as np
import pytest

from ftnotes.checks import (
    check_bool,
    check_callable,
    check_choice,
    check_int,
    check_number,
    is_int,
    require,
)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: check_int("epochs", 0), "epochs must be an int >= 1, got 0"),
        (lambda: check_int("epochs", True), "epochs must be an int >= 1, got True"),
        (lambda: check_int("epochs", 2.0), "epochs must be an int >= 1, got 2.0"),
        (lambda: check_int("k", 5, 0, 4), "k must be an int in 0..4, got 5"),
        (lambda: check_int("n", 4, None, 3), "n must be an int <= 3, got 4"),
        (lambda: check_int("patience", 0, optional=True), "patience must be None or an int >= 1"),
        (lambda: check_number("lr", 0, 0, strict=True), "lr must be a finite number > 0, got 0"),
        (lambda: check_number("lr", math.nan), "lr must be a finite number, got nan"),
        (lambda: check_number("lr", math.inf, 0), "lr must be a finite number >= 0, got inf"),
        (lambda: check_number("lr", False, 0), "lr must be a finite number >= 0, got False"),
        (lambda: check_number("lr", "1e-3"), "lr must be a finite number, got '1e-3'"),
        (lambda: check_number("p", 1.5, 0, 1), r"p must be a finite number in \[0, 1\], got 1.5"),
        (lambda: check_number("mfu", 0, 0, 1, strict=True), r"mfu must be a finite number in \(0, 1\]"),
        (lambda: check_number("x", math.nan, finite=False), "x must be a number, got nan"),
        (lambda: check_bool("deep", 1), "deep must be True or False, got 1"),
        (lambda: check_choice("monitor", "loss", ("val_loss", "val_acc")),
         r"monitor must be one of \('val_loss', 'val_acc'\), got 'loss'"),
        (lambda: check_choice("name", [], {"a": 1}), r"name must be one of \('a',\), got \[\]"),
        (lambda: check_callable("loss_fn", "ce", optional=True), "loss_fn must be None or a callable"),
        (lambda: require(False, "hw['dilate']", (2,), "odd ints >= 1"),
         r"hw\['dilate'\] must be odd ints >= 1, got \(2,\)"),
    ],
)  # fmt: skip
def test_each_check_names_parameter_value_and_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_good_values_pass():
    check_int("epochs", 3)
    check_int("seed", 0, 0)
    check_int("patience", None, optional=True)
    check_number("lr", np.float32(1e-3), 0, strict=True)  # numpy scalars are numbers
    check_number("clip", None, 0, strict=True, optional=True)
    check_number("limit", math.inf, 0, finite=False)
    check_bool("deep", False)
    check_choice("monitor", "val_acc", ("val_loss", "val_acc"))
    check_callable("forward", None, optional=True)
    require(True, "x", 1, "anything")
    assert is_int(3) and not is_int(True) and not is_int(np.int64(3))
