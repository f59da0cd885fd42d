"""Task "keep_glyphs" (notebook 06): learn 10 handwritten digits without forgetting 34 printed
glyphs, each half scored on its own output rows (task-aware).

Pattern: IOAI 2026 at-home task 1 (a model that knew 16 classes learns 13 more, scored
½·acc_old + ½·acc_new; hints: head expansion, replay, distillation, freezing, LoRA, per-module
rates). Here the test tells which group each item belongs to, so an old image is read on the old
rows only; the IOAI task used one softmax over all classes, which is the task ``new_digits``.
"""

from __future__ import annotations

import functools

import torch

from ftnotes.contest import oldnew
from ftnotes.contest.core import ContestTask, numbers_line
from ftnotes.contest.metrics import old_new_score
from ftnotes.contest.toolbox import make_solution, predict_task_aware

NAME = "keep_glyphs"
TIME_LIMIT_S = 60.0
LABELS_PER_CLASS = 50
# mean of seeds 0-2 (each with its own secret) per board: python -m ftnotes.contest.measure
BASELINE_SCORE = {"live": 0.605, "final": 0.587}
REFERENCE_SCORE = {"live": 0.963, "final": 0.975}
MARGIN = 0.3  # the reference beats the baseline by more on every seed and board (tests)

STATEMENT = f"""\
# The Two-Row Scanner

The scanner model reads the 34 printed characters of catalogue cards ("0"-"9", "A"-"Z" without
I and O). It must learn to read **10 handwritten digits** too, as 10 *new* output rows (labels
34-43), and keep reading the printed cards. Every test item comes with its group: a printed
card is read on the 34 old rows, a handwritten note on the 10 new rows.

**Data** (`data = task.load()`): `data.train`: {LABELS_PER_CLASS} labelled handwritten digits
per class (labels 34-43); `data.val`: validation digits; `data.extra["old_train"]` (6,000) and
`data.extra["old_val"]` (1,000): printed glyphs (labels 0-33) you may replay or distil on. The
model: `ftnotes.checkpoints.load_pretrained()`, the TinyViT with a 34-class head pretrained on
printed glyphs and pen-drawn digits. Test: printed glyphs and handwritten digits, shuffled:
`data.test_ids`, `data.test_x`, and `data.extra["test_is_old"]` (True for a printed glyph).

**Submit**: `submission_{NAME}.csv`, header `id,label`, one row per test id: for a printed
glyph the argmax of rows 0-33, for a handwritten digit the argmax of rows 34-43
(`ftnotes.contest.toolbox.predict_task_aware` does it).

**Time limit**: the whole notebook, from the kernel's start to the last cell, in
**{TIME_LIMIT_S:.0f} s** on the grader's 2-core CPU.

**Score**: `½ · accuracy on the printed glyphs + ½ · accuracy on the handwritten digits`.
Points: `100 · (score − baseline) / (reference − baseline)`, 0 below the baseline. The baseline
(full fine-tuning on the digits only at a high-ish rate, with random digit rows) learns the
digits and forgets most glyphs. {numbers_line(BASELINE_SCORE, REFERENCE_SCORE, MARGIN)}
"""


def build(seed: int = 0, split: str = "public", secret=None):
    return oldnew.build(NAME, split, seed, LABELS_PER_CLASS, task_aware=True, secret=secret)


score = functools.partial(old_new_score, num_old=oldnew.NUM_OLD, task_aware=True)


def baseline_solution(model, data, seed: int = 0):
    """The naive answer: full fine-tuning at a high-ish rate, fresh random digit rows, digits
    only. It learns the digits and forgets the glyphs: the body drifts under the glyph rows."""
    solve = make_solution("full_ft", lr=3e-3, head_lr=3e-3, epochs=5, align_head=False,
                          seed=seed)  # fmt: skip
    return solve(model, data)


def reference_solution(model, data, seed: int = 0):
    """Expanded head with aligned digit rows + the top block and the head trained (the lower
    blocks frozen) at per-module rates + replay of 20 glyphs per class + distillation from the
    frozen original: the digits are learned while the glyph rows stay right."""
    solve = make_solution("partial_ft", k=1, lr=1e-3, head_lr=1e-2, epochs=5,
                          replay_per_class=20, distill_weight=1.0, seed=seed)  # fmt: skip
    return solve(model, data)


def _predict(solution, data, seed: int) -> torch.Tensor:
    model = solution(oldnew.backbone(printed_only=False), data, seed)
    return predict_task_aware(model, data.test_x, data.extra["test_is_old"])


def baseline(data, seed: int = 0) -> torch.Tensor:
    """:func:`baseline_solution`, then each test item's argmax over its own rows."""
    return _predict(baseline_solution, data, seed)


def reference(data, seed: int = 0) -> torch.Tensor:
    """:func:`reference_solution` (built with :func:`~ftnotes.contest.toolbox.make_solution`),
    then each test item's argmax over its own rows."""
    return _predict(reference_solution, data, seed)


TASK = ContestTask(NAME, "The Two-Row Scanner: new rows, old rows kept (task-aware)", STATEMENT,
                   TIME_LIMIT_S, f"submission_{NAME}.csv", oldnew.NUM_OLD + oldnew.NUM_NEW,
                   build, score, baseline, reference, BASELINE_SCORE, REFERENCE_SCORE,
                   MARGIN, reference_code=(reference_solution, make_solution))  # fmt: skip
