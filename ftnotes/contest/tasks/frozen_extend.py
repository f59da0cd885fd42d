"""Task "frozen_extend": extend a frozen classifier by 10 classes from 5 examples each, with no
gradient steps; ½·old + ½·new over one softmax.

Pattern: IOAI 2024 on-site NLP task ("Help BOBAI"): two new classes with very few examples
were added to a 5-way classifier whose original head could not be retrained (summarised at
https://barryhan.net/usaaio/problems/ioai-2024-nlp-ciphered.html, which links the official
ioai-official.org/2024-tasks page). Method: weight imprinting (Qi, Brown & Lowe 2018, "Low-Shot
Learning with Imprinted Weights"): a new class's row is its normalised mean feature.
"""

from __future__ import annotations

import torch

from ftnotes.contest import oldnew
from ftnotes.contest.core import ContestTask, numbers_line
from ftnotes.contest.metrics import old_new_score

NAME = "frozen_extend"
TIME_LIMIT_S = 15.0
SHOTS, VAL_SHOTS = 5, 10
# mean of seeds 0-2 (each with its own secret) per board: python -m ftnotes.contest.measure
BASELINE_SCORE = {"live": 0.581, "final": 0.609}
REFERENCE_SCORE = {"live": 0.74, "final": 0.73}
MARGIN = 0.1  # the reference beats the baseline by more on every seed and board (tests)

STATEMENT = f"""\
# The Sealed Scanner

The museum's scanner reads 34 printed characters and its model is sealed: its weights, and its
34 output rows, must not change. The curators want it to read **10 handwritten digits** as well
(10 new classes, labels 34-43), but they could label only **{SHOTS} examples of each**.

**Data** (`data = task.load()`): `data.train`: {SHOTS} labelled handwritten digits per class;
`data.val`: {VAL_SHOTS} per class; `data.extra["old_val"]`: 1,000 printed glyphs (labels 0-33) to
check what the old classes keep. The model: `load_pretrained(PRINTED_WEIGHTS)` (both from
`ftnotes.checkpoints`), pretrained on printed glyphs only: it has never seen handwriting.
Test: 1,000 printed glyphs and the test digits, shuffled: `data.test_ids`, `data.test_x`.

**Rules**: add 10 rows to the head; the backbone and the 34 old rows stay exactly as shipped; no
gradient steps (as in IOAI 2024's task, the grader does not check this: it is the rule).

**Submit**: `submission_frozen_extend.csv`, header `id,label`, one row per test id, label 0-43.

**Time limit**: the whole notebook, from the kernel's start to the last cell, in
**{TIME_LIMIT_S:.0f} s** on the grader's 2-core CPU.

**Score**: `½ · accuracy on the printed glyphs + ½ · accuracy on the handwritten digits`, the
argmax over all 44 classes. Points: `100 · (score − baseline) / (reference − baseline)`, 0 below
the baseline. The baseline: the new rows copied from the glyph rows "0"-"9", a hair higher so
that they win ties. {numbers_line(BASELINE_SCORE, REFERENCE_SCORE, MARGIN)}
"""


def build(seed: int = 0, split: str = "public", secret=None):
    return oldnew.build(NAME, split, seed, SHOTS, VAL_SHOTS, secret=secret)


def score(pred, y) -> dict:
    return old_new_score(pred, y, oldnew.NUM_OLD)


def extended_predict(model, new_w: torch.Tensor, new_b: torch.Tensor, x) -> torch.Tensor:
    """Argmax over the frozen 34 rows plus the 10 new rows ``new_w`` (10, D), ``new_b`` (10,)."""
    with torch.no_grad():
        f = model.eval().forward_features(x)  # (N, D)
        w = torch.cat([model.head.weight, new_w])
        b = torch.cat([model.head.bias, new_b])
        return (f @ w.T + b).argmax(1)


def baseline(data, seed: int = 0) -> torch.Tensor:
    """New rows = the glyph rows "0"-"9" (+1e-3 bias so a tie goes to the new class)."""
    model = oldnew.backbone()
    w, b = model.head.weight.detach()[:10], model.head.bias.detach()[:10] + 1e-3
    return extended_predict(model, w, b, data.test_x)


def imprint(model, x, y, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Imprinted rows (10, D): each new class's mean feature, normalised to ``scale`` times the
    mean norm of the old rows; bias = the old rows' mean bias (Qi et al. 2018)."""
    with torch.no_grad():
        f = model.eval().forward_features(x)
        mu = torch.stack([f[y == c].mean(0) for c in range(oldnew.NUM_OLD, oldnew.NUM_OLD + 10)])
        w_old, b_old = model.head.weight, model.head.bias
        w = mu / mu.norm(dim=1, keepdim=True) * w_old.norm(dim=1).mean() * scale
        return w, torch.full((10,), b_old.mean().item())


def reference(data, seed: int = 0) -> torch.Tensor:
    """Imprinting, with the one free knob (the row scale: how loud the new classes speak against
    the old ones) chosen on the validation digits and glyphs by the ½·old + ½·new score."""
    model = oldnew.backbone()
    vx = torch.cat([data.val[0], data.extra["old_val"][0]])
    vy = torch.cat([data.val[1], data.extra["old_val"][1]])
    best = max((score(extended_predict(model, *imprint(model, *data.train, s), vx), vy)["score"],
                s) for s in (0.8, 0.9, 1.0, 1.1, 1.2, 1.3))  # fmt: skip
    return extended_predict(model, *imprint(model, *data.train, best[1]), data.test_x)


TASK = ContestTask(NAME, "The Sealed Scanner: extend a frozen classifier, no gradient steps",
                   STATEMENT, TIME_LIMIT_S, "submission_frozen_extend.csv",
                   oldnew.NUM_OLD + oldnew.NUM_NEW, build, score, baseline, reference,
                   BASELINE_SCORE, REFERENCE_SCORE, MARGIN)  # fmt: skip
