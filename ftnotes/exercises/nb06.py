"""Exercises of notebook 06 (olympiad practice): head expansion by hand (the contest toolbox's
``expand_head`` does it on a model; a test checks that the two agree)."""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_int
from .core import exercise
from .fixtures import randn, require


def expand_rows(head: nn.Linear, num_new: int, init_from_rows=None) -> nn.Linear:
    """A new ``nn.Linear`` with ``num_new`` more output rows than ``head``: (D -> C + num_new).

    The old rows (weight and bias) are copied exactly, so the old classes' logits do not change;
    new row ``j`` copies old row ``init_from_rows[j]`` when given (an aligned start), else it
    starts small and random. ``head`` itself is left unchanged.
    """
    check_int("num_new", num_new)
    old = head.out_features
    if init_from_rows is not None:
        rows = list(init_from_rows)
        require(len(rows) == num_new and all(0 <= r < old for r in rows), "init_from_rows",
                init_from_rows, f"{num_new} row indices in [0, {old})")  # fmt: skip
    new = nn.Linear(head.in_features, old + num_new).to(head.weight.device, head.weight.dtype)
    with torch.no_grad():
        nn.init.normal_(new.weight, std=0.02)
        new.bias.zero_()
        new.weight[:old] = head.weight  # copies: training the new head leaves the old alone
        new.bias[:old] = head.bias
        if init_from_rows is not None:
            new.weight[old:] = head.weight[rows]
            new.bias[old:] = head.bias[rows]
    return new


@exercise(
    "06_expand_rows",
    title="Head expansion by hand",
    kind="function",
    reference=expand_rows,
    stub='''
    def expand_rows(head, num_new, init_from_rows=None):
        """A new nn.Linear with num_new more output rows than `head` (an nn.Linear): the old rows
        (weight and bias) copied exactly; new row j copied from old row init_from_rows[j] when
        given, else small random. Leave `head` itself unchanged."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Make a fresh nn.Linear(head.in_features, head.out_features + num_new), then fill it "
        "inside torch.no_grad().",
        "Slice assignment copies values: the first out_features rows of the new weight and bias "
        "take the old ones; the last num_new take the rows named by init_from_rows.",
        "Never reuse head.weight itself in the new layer (that shares storage: training the new "
        "head would change the old one); copy it into the new layer's own tensor.",
    ],
)
def _check_expand_rows(fn, ctx):
    with torch.random.fork_rng():
        head = nn.Linear(16, 6)
    with torch.no_grad():
        head.weight.copy_(randn(6, 16, seed=3))
        head.bias.copy_(randn(6, seed=4))
    before = (head.weight.detach().clone(), head.bias.detach().clone())
    new = fn(head, 3, [0, 2, 4])
    ctx.expect(isinstance(new, nn.Linear), f"return an nn.Linear, got {type(new).__name__}.")
    ctx.expect((new.in_features, new.out_features) == (16, 9),
               f"head (16 -> 6) plus 3 rows must be (16 -> 9), got ({new.in_features} -> "
               f"{new.out_features}).")  # fmt: skip
    ctx.expect(torch.equal(head.weight, before[0]) and torch.equal(head.bias, before[1])
               and head.out_features == 6, "you changed `head` itself; leave it as it was.")  # fmt: skip
    ctx.expect(new.weight.data_ptr() != head.weight.data_ptr(),
               "the new weight shares storage with the old head: copy, do not reuse.")  # fmt: skip
    x = randn(5, 16, seed=5)
    with torch.no_grad():
        same_old = torch.allclose(new(x)[:, :6], head(x), atol=1e-6)
        aligned = torch.allclose(new(x)[:, 6:], head(x)[:, [0, 2, 4]], atol=1e-6)
    ctx.expect(same_old, "the old classes' logits changed: copy the old rows and biases exactly.")
    ctx.ok("the old rows answer exactly as before, and `head` is untouched")
    ctx.expect(aligned, "new rows 0, 1, 2 must copy old rows 0, 2, 4 (weights and biases).")
    ctx.ok("aligned new rows copy the rows named in init_from_rows")
    fresh = fn(head, 2)
    ctx.expect(isinstance(fresh, nn.Linear) and fresh.out_features == 8,
               "with init_from_rows=None, still add num_new rows.")  # fmt: skip
    ctx.expect(torch.equal(fresh.weight[:6], head.weight), "old rows must be copied then too.")
    ctx.expect(all(p.requires_grad for p in fresh.parameters()), "the new head must be trainable.")
    ctx.ok("without init_from_rows: new trainable rows, old rows kept")
