"""Task "new_digits": learn 10 new classes without forgetting 34 old ones, ONE softmax over all.

Pattern: IOAI 2026 at-home "Night Watch" (a model that knew 16 classes learns 13 more, scored
½·acc_old + ½·acc_new over one classifier), as described in issue 19; we found no public page
for the 2026 tasks to cite.
"""

from __future__ import annotations

import torch

from ftnotes.contest import oldnew
from ftnotes.contest.core import ContestTask, numbers_line
from ftnotes.contest.metrics import old_new_score
from ftnotes.contest.toolbox import expand_head
from ftnotes.data import subset_per_class
from ftnotes.evaluate import predict
from ftnotes.train import fit
from ftnotes.utils import set_seed

NAME = "new_digits"
TIME_LIMIT_S = 40.0
LABELS_PER_CLASS = 50
# mean of seeds 0-2 (each with its own secret) per board: python -m ftnotes.contest.measure
BASELINE_SCORE = {"live": 0.416, "final": 0.414}
REFERENCE_SCORE = {"live": 0.871, "final": 0.865}
MARGIN = 0.35  # the reference beats the baseline by more on every seed and board (tests)

STATEMENT = f"""\
# The Night Archive

The archive's scanner model reads the 34 printed characters of old catalogue cards ("0"-"9",
"A"-"Z" without I and O). Now the archivists add handwritten notes: the scanner must also read
the **10 handwritten digits**, as 10 *new* classes, and still read the printed cards. A
handwritten "3" (class `hand-3`, label 37) and a printed "3" (label 3) are different classes.

**Data** (`data = task.load()`): `data.train`: {LABELS_PER_CLASS} labelled handwritten digits
per class (labels 34-43); `data.val`: validation digits; `data.extra["old_train"]` (6,000) and
`data.extra["old_val"]` (1,000): printed glyphs (labels 0-33) you may replay or distil on.
The model: `load_pretrained(PRINTED_WEIGHTS)` (both from `ftnotes.checkpoints`), a TinyViT
with a 34-class head pretrained on printed glyphs only: it has never seen handwriting.
Test: 1,000 printed glyphs and the test digits, shuffled: `data.test_ids`, `data.test_x`.

**Submit**: `submission_new_digits.csv`, header `id,label`, one row per test id, label 0-43
(`task.write_submission(data.test_ids, labels)`).

**Time limit**: the whole notebook, from the kernel's start to the last cell, in
**{TIME_LIMIT_S:.0f} s** on the grader's 2-core CPU, fine-tuning included. Offline, in a sandbox;
the grader swaps in a hidden test split.

**Score**: `½ · accuracy on the printed glyphs + ½ · accuracy on the handwritten digits`, each
prediction the argmax over **all 44 classes**. Points: `100 · (score − baseline) / (reference −
baseline)`, 0 below the baseline. The baseline (full fine-tuning on the digits only, with a fresh
random head for them) forgets every glyph. {numbers_line(BASELINE_SCORE, REFERENCE_SCORE, MARGIN)}
"""


def build(seed: int = 0, split: str = "public", secret=None):
    return oldnew.build(NAME, split, seed, LABELS_PER_CLASS, secret=secret)


def score(pred, y) -> dict:
    return old_new_score(pred, y, oldnew.NUM_OLD)


def baseline(data, seed: int = 0) -> torch.Tensor:
    """Expand the head by 10 random rows; fully fine-tune on the new digits only (lr 3e-3)."""
    set_seed(seed)  # the new rows start from random draws
    model = expand_head(oldnew.backbone(), oldnew.NUM_NEW)
    fit(model, data.train, epochs=5, lr=3e-3, batch_size=32, seed=seed, progress=False)
    return predict(model, data.test_x)


def reference(data, seed: int = 0) -> torch.Tensor:
    """Head expansion with the digit rows started from the glyph rows "0"-"9" (aligned), then
    full fine-tuning at a lower rate on the new digits *mixed with 30 replayed glyphs per old
    class*, with one cross-entropy over all 44 classes: the replayed glyphs keep the old rows
    answering for printed characters, and teach the model what separates print from hand."""
    set_seed(seed)
    model = expand_head(oldnew.backbone(), oldnew.NUM_NEW, init_from_rows=range(10))
    gx, gy = data.extra["old_train"]
    keep = torch.as_tensor(subset_per_class(gy.numpy(), 30, seed, NAME))
    x = torch.cat([data.train[0], gx[keep]])
    y = torch.cat([data.train[1], gy[keep]])
    fit(model, (x, y), epochs=6, lr=1e-3, batch_size=32, seed=seed, progress=False)
    return predict(model, data.test_x)


TASK = ContestTask(NAME, "The Night Archive: new classes without forgetting", STATEMENT,
                   TIME_LIMIT_S, "submission_new_digits.csv", oldnew.NUM_OLD + oldnew.NUM_NEW,
                   build, score, baseline, reference, BASELINE_SCORE, REFERENCE_SCORE,
                   MARGIN)  # fmt: skip
