"""Notebook 02's checkers reject plausible wrong solutions with the right message."""

import math
import re

import pytest
from torch import nn

from ftnotes.exercises import check
from ftnotes.exercises.nb02 import Adapter


def adapter_class(forward=None, zero_up=True, zero_down=False, bottleneck=None):
    class WrongAdapter(nn.Module):
        def __init__(self, dim, reduction_factor=4):
            super().__init__()
            m = bottleneck(dim, reduction_factor) if bottleneck else dim // reduction_factor
            self.down, self.act, self.up = nn.Linear(dim, m), nn.ReLU(), nn.Linear(m, dim)
            if zero_up:
                nn.init.zeros_(self.up.weight)
                nn.init.zeros_(self.up.bias)
            if zero_down:
                nn.init.zeros_(self.down.weight)

        def forward(self, x):
            if forward:
                return forward(self, x)
            return x + self.up(self.act(self.down(x)))

    return WrongAdapter


def wrapper_class(forward, freeze=True, plain_forward=False):
    class WrongWrapper(nn.Module):
        def __init__(self, sublayer, dim, reduction_factor=4):
            super().__init__()
            self.sublayer, self.adapter = sublayer, Adapter(dim, reduction_factor)
            for p in sublayer.parameters():
                p.requires_grad = not freeze

        def forward(self, x, *args, **kwargs):
            return forward(self, x, *args, **kwargs)

    if plain_forward:
        WrongWrapper.forward = lambda self, x: self.adapter(self.sublayer(x))
    return WrongWrapper


def right(self, x, *a, **k):
    return self.adapter(self.sublayer(x, *a, **k))


class AdapterFixedFactor(nn.Module):  # the stub's default 4, whatever the argument
    def __init__(self, dim, reduction_factor=4):
        super().__init__()
        self.down, self.act, self.up = nn.Linear(dim, dim // 4), nn.ReLU(), nn.Linear(dim // 4, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return x + self.up(self.act(self.down(x)))


class AdapterFrozenDown(AdapterFixedFactor):
    def __init__(self, dim, reduction_factor=4):
        nn.Module.__init__(self)
        m = dim // reduction_factor
        self.down, self.act, self.up = nn.Linear(dim, m), nn.ReLU(), nn.Linear(m, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.down.requires_grad_(False)  # "the projection down is pretrained-like": it is not


class AdapterNoReturn(AdapterFrozenDown):
    def __init__(self, dim, reduction_factor=4):
        super().__init__(dim, reduction_factor)
        self.down.requires_grad_(True)

    def forward(self, x):
        x + self.up(self.act(self.down(x)))


class AdapterDefaultTwo(AdapterNoReturn):
    def __init__(self, dim, reduction_factor=2):  # a default unlike the docstring's
        super().__init__(dim, reduction_factor)

    def forward(self, x):
        return x + self.up(self.act(self.down(x)))


def wrapper_building(make_adapter, freeze_all=False):
    class Wrapper(nn.Module):
        def __init__(self, sublayer, dim, reduction_factor=4):
            super().__init__()
            self.sublayer, self.adapter = sublayer, make_adapter(dim, reduction_factor)
            for p in (self.parameters() if freeze_all else sublayer.parameters()):
                p.requires_grad = False

        def forward(self, x, *args, **kwargs):
            return self.adapter(self.sublayer(x, *args, **kwargs))

    return Wrapper


class WrapperNoReturn(wrapper_building(Adapter)):
    def forward(self, x, *args, **kwargs):
        self.adapter(self.sublayer(x, *args, **kwargs))


WRONG = [
    ("02_adapter", AdapterFixedFactor, "use the reduction_factor argument, not a fixed factor"),
    ("02_adapter", adapter_class(bottleneck=lambda d, rf: round(d / rf)), "rounded down.*20/3"),
    ("02_adapter", adapter_class(bottleneck=lambda d, rf: math.ceil(d / rf)), "rounded down"),
    ("02_adapter", AdapterFrozenDown, "frozen: down.bias, down.weight; every parameter"),
    ("02_adapter", AdapterNoReturn, "forward returned None: did you forget `return`"),
    ("02_adapter", AdapterDefaultTwo, "default reduction_factor is 4"),
    ("02_adapter_params", lambda d, rf, n=1: n * (2 * d * round(d / rf) + round(d / rf) + d),
     "m = 7; the bottleneck is dim // reduction_factor = 6, rounded down"),
    ("02_adapter_params", lambda d, rf, n=1: n * (2 * d * -(-d // rf) + -(-d // rf) + d),
     "rounded down"),
    ("02_adapter_params", lambda d, rf, n=1: n * (2 * d * d / rf + d / rf + d), "the float"),
    ("02_adapter_params", lambda d, rf, n=1: n * (2 * d * (d // 4) + d // 4 + d),
     "reduction factor 4"),
    ("02_adapter_params", lambda d, rf, n=0: n * (2 * d * (d // rf) + d // rf + d),
     r"adapter_param_count\(22, 4\) = 0, expected 247"),
    ("02_adapter_params", lambda d, rf, n=1: None, "returned None"),
    ("02_insert_adapter", wrapper_building(lambda d, rf: Adapter(d)), "build it with the dim"),
    ("02_insert_adapter", wrapper_building(lambda d, rf: Adapter(16, rf)), "not a fixed width"),
    ("02_insert_adapter", wrapper_building(Adapter, freeze_all=True), "must all train"),
    ("02_insert_adapter", WrapperNoReturn, "forward returned None"),
    ("02_adapter", adapter_class(zero_up=False), "not initialised to zero"),
    ("02_adapter", adapter_class(zero_down=True), "down is all zeros"),
    ("02_adapter", adapter_class(lambda s, x: s.up(s.act(s.down(x)))), "residual is missing"),
    ("02_adapter", adapter_class(lambda s, x: x + s.up(s.down(x))), "no non-linearity"),
    ("02_adapter", adapter_class(bottleneck=lambda d, rf: d * rf), "down should be 16->4"),
    ("02_adapter", adapter_class(lambda s, x: x + 2 * s.up(s.act(s.down(x)))), "non-zero `up`"),
    ("02_adapter_params", lambda d, rf, n=1: n * 2 * d * (d // rf), "forgot the biases"),
    ("02_adapter_params", lambda d, rf, n=1: 2 * d * (d // rf) + d + d // rf, "num_adapters"),
    ("02_adapter_params", lambda d, rf, n=1: n * (2 * d * d * rf + d * rf + d), "m = dim // rf"),
    ("02_insert_adapter", wrapper_class(right, plain_forward=True), "prefix"),
    ("02_insert_adapter", wrapper_class(right, freeze=False), "still trainable"),
    (
        "02_insert_adapter",
        wrapper_class(lambda s, x, *a, **k: s.sublayer(s.adapter(x), *a, **k)),
        "runs before the sub-layer",
    ),  # fmt: skip
    (
        "02_insert_adapter",
        wrapper_class(lambda s, x, *a, **k: x + right(s, x, *a, **k)),
        "equal the original",
    ),  # fmt: skip
    (
        "02_insert_adapter",
        wrapper_class(lambda s, x, *a, **k: s.sublayer(x, *a, **k)),
        "never used",
    ),  # fmt: skip
]


@pytest.mark.parametrize("ex_id, wrong, message", WRONG)
def test_wrong_solution_is_rejected_with_its_message(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed"
    assert re.search(message, result.message), result.message


def test_relu_adapter_is_accepted():
    assert check("02_adapter", adapter_class()).passed
