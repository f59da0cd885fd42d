"""Task "definitions": name the category of a WordNet definition, probe or fine-tune, against
the clock, scored by macro-F1 over JSON-lines answers.

Pattern: IOAI 2026 "Ghost of the Machine" (a BERT-style encoder in a local folder, frozen
features or fine-tuning within a time limit; issue 32), on real text: all-MiniLM-L6-v2 and the
six abstract categories of notebook 10, where the frozen probe is a strong baseline and
fine-tuning pays if the clock allows it.

The hidden boards are real rows of WordNet (``data/wordnet/hidden.tsv``, 40 definitions per
category and board, disjoint from every public split), so no secret can draw them: the grading
run's secret shuffles them and the grader keeps their labels. The file holding them is one of
the task's ``private_files``, which the sandbox makes unreadable to the graded kernel (and the
repository's git folder with it, which holds every version of that file). WordNet itself is
public: looking a definition up in ``data.noun`` remains possible by design, as a public-data
rule forbids (README).
"""

from __future__ import annotations

import numpy as np
import torch

from ftnotes.artifacts import INSTALLED_DATA_DIR, REPO_DATA_DIR
from ftnotes.checks import check_int
from ftnotes.contest.core import ContestData, ContestTask, check_split, conceal, numbers_line
from ftnotes.contest.formats import JsonlAnswers
from ftnotes.contest.metrics import macro_f1
from ftnotes.text.wordnet import ABSTRACT, FILES, load_definitions, load_hidden

NAME = "definitions"
# on an idle 2-core machine: the probe about 15 s of it, the reference (3 epochs of full
# fine-tuning) about 60 s, so one fine-tuning run fits and a sweep does not
TIME_LIMIT_S = 120.0
MAX_LENGTH = 36  # tokens: keeps 99% of the training definitions whole (notebook 10)
# mean of seeds 0-2 (each with its own secret) per board: python -m ftnotes.contest.measure
# --tasks definitions (2026-12-06; the baseline is deterministic, the reference 0.731-0.744 on
# the live board, 0.741-0.783 on the final one)
BASELINE_SCORE = {"live": 0.667, "final": 0.728}
REFERENCE_SCORE = {"live": 0.739, "final": 0.757}
MARGIN = 0.01  # the reference beats the baseline by more on every seed and board (slow tests)
BOARD_ROWS = {"live": "hidden_live", "final": "hidden_final"}  # rows of hidden.tsv
# every copy of the hidden rows a graded kernel could open: the clone's and an installed wheel's
PRIVATE_FILES = tuple(d / "wordnet" / FILES["hidden"] for d in (REPO_DATA_DIR, INSTALLED_DATA_DIR))

STATEMENT = f"""\
# The Lexicographer's Shelves

A dictionary's editors file every noun sense under one category. Six of them are hard to tell
apart: **{", ".join(ABSTRACT)}**. Given a definition ("a feeling of deep anxiety or dread"),
name its category.

**Data** (`data = task.load()`): `data.train`: 660 labelled definitions as (texts, labels),
`data.val`: 240 more; labels 0-5 index `data.extra["label_names"]` = {list(ABSTRACT)}. Test:
`data.test_ids`, `data.test_x` (a list of definitions, no labels). The model:
all-MiniLM-L6-v2 in a local folder (`ftnotes.text.encoder.load_encoder()`, or
`AutoModel.from_pretrained(ftnotes.text.encoder.model_dir())`).

**Submit**: `submission_definitions.jsonl`, one JSON line per test id:
`{{"id": 100017, "answer": "feeling"}}`, the answer a category name
(`task.write_submission(data.test_ids, names)` writes it). A missing id or an answer that is
not one of the six names scores 0 for its item.

**Time limit**: the whole notebook, from the kernel's start to the last cell, in
**{TIME_LIMIT_S:.0f} s** on the grader's 2-core CPU, one thread, training included. A frozen
probe takes seconds; one epoch of fine-tuning over the 660 definitions takes tens of seconds.
Decide what fits.

**Score**: macro-F1 over the six categories (each category counts alike). Points:
`100 · (score − baseline) / (reference − baseline)`, 0 below the baseline. The baseline: frozen
mean-pooled embeddings + logistic regression.
{numbers_line(BASELINE_SCORE, REFERENCE_SCORE, MARGIN)}

**Public data.** WordNet is public (Debian's `wordnet-base`, NLTK, ...): every hidden
definition is in its `data.noun`, with its category. Looking definitions up there is not a
solution; as at any contest, the public-data rule forbids it.
"""


def build(seed: int = 0, split: str = "public", secret=None):
    """(ContestData, test labels (N,)) of the six abstract categories; ``seed`` seeds only the
    solution (the public splits are fixed; a board is shuffled by the grading run's secret)."""
    check_int("seed", seed, 0)
    check_split(split, secret)
    train, val = load_definitions(ABSTRACT, "train"), load_definitions(ABSTRACT, "validation")
    test = (load_definitions(ABSTRACT, "test") if split == "public"
            else load_hidden(ABSTRACT, BOARD_ROWS[split]))  # fmt: skip
    ids, texts, y = conceal(test.texts, torch.as_tensor(test.labels), split, secret,
                            f"{NAME}:{split}", seed=11)  # fmt: skip
    data = ContestData(NAME, (train.texts, torch.as_tensor(train.labels)),
                       (val.texts, torch.as_tensor(val.labels)), ids, texts, split,
                       {"label_names": ABSTRACT})  # fmt: skip
    return data, y


def to_labels(answers) -> torch.Tensor:
    """Category names -> indices into ABSTRACT; anything else (None, another name) is -1."""
    index = {c: i for i, c in enumerate(ABSTRACT)}
    return torch.as_tensor([index.get(a, -1) if isinstance(a, str) else -1 for a in answers])


def score(pred, y) -> dict:
    """Macro-F1 (the mean of the six per-category F1s; an invalid answer is a miss) and, for
    information, accuracy. ``pred``: category names (a submission) or label indices."""
    pred = list(pred)
    labels = to_labels(pred) if any(isinstance(p, str) or p is None for p in pred) else pred
    return macro_f1(torch.as_tensor(labels), y, len(ABSTRACT))


def baseline(data, seed: int = 0) -> list[str]:
    """Frozen encoder: mean-pooled embeddings -> scikit-learn logistic regression."""
    from sklearn.linear_model import LogisticRegression

    from ftnotes.text.encoder import embed, load_encoder

    encoder, tok = load_encoder()
    x_train, x_test = (embed(encoder, tok, t, MAX_LENGTH).numpy()
                       for t in (data.train[0], data.test_x))  # fmt: skip
    clf = LogisticRegression(max_iter=3000).fit(x_train, data.train[1].numpy())
    return [ABSTRACT[i] for i in clf.predict(x_test).tolist()]


def reference(data, seed: int = 0) -> list[str]:
    """Full fine-tuning with ``Trainer``: a new head, 3 epochs over the 660 training definitions
    at notebook 10's rate (``methods.LR["full"]``, chosen on validation), batch 16."""
    from ftnotes.text import finetune
    from ftnotes.text.encoder import load_encoder
    from ftnotes.text.methods import LR

    _, tok = load_encoder()
    model = finetune.new_classifier(ABSTRACT, "full", seed=seed)
    train = finetune.tokenize(tok, data.train[0], data.train[1].tolist(), MAX_LENGTH)
    trainer, _ = finetune.train(model, tok, train, lr=LR["full"], epochs=3, seed=seed, desc=NAME)
    logits = trainer.predict(finetune.tokenize(tok, data.test_x, max_length=MAX_LENGTH)).predictions
    return [ABSTRACT[i] for i in np.argmax(logits, axis=-1).tolist()]


TASK = ContestTask(NAME, "The Lexicographer's Shelves: probe or fine-tune, by macro-F1", STATEMENT,
                   TIME_LIMIT_S, "submission_definitions.jsonl", None, build, score, baseline,
                   reference, BASELINE_SCORE, REFERENCE_SCORE, MARGIN,
                   answers_format=JsonlAnswers("text", max_item_bytes=64),
                   private_files=PRIVATE_FILES)  # fmt: skip
