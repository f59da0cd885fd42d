"""Every method of notebook 10 on a WordNet task, one runner: baselines and fine-tuning.

* ``tfidf``: TF-IDF of words and word pairs + ``LogisticRegression`` (no pretrained model);
* ``zero_shot``: the class whose description (:data:`ftnotes.text.wordnet.DESCRIPTIONS`, the
  lexicographer files' own one-line descriptions) has the most similar embedding;
* ``probe``: frozen mean-pooled embeddings + ``LogisticRegression`` (the 2026 "Ghost" hint);
* ``lora`` (r=8 on every linear layer of the encoder), ``lora_qv`` (r=8 on ``query`` and
  ``value`` only), ``full`` (every weight), ``scratch`` (the same architecture, random start):
  ``Trainer`` runs of :mod:`ftnotes.text.finetune`, the same examples, epochs and batch size.

NumPy's and scikit-learn's BLAS threads are pinned like torch's: on a busy 2-core machine the
TF-IDF logistic regression took 11 s on two BLAS threads and 0.12 s on one.

A seed changes the training examples drawn (``per_class`` of each category), the new head's
start and the batch order; the evaluation split is fixed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ftnotes.text import finetune
from ftnotes.text.encoder import embed
from ftnotes.text.ledger import similarity_auc
from ftnotes.text.wordnet import DESCRIPTIONS, load_definitions
from ftnotes.utils import count_params, pinned_threads

BASELINES = ("tfidf", "zero_shot", "probe")
FINETUNED = ("lora", "lora_qv", "full", "scratch")
METHODS = BASELINES + FINETUNED
# Rates chosen on the validation split at the notebook's budget (6 abstract categories, 45 per
# class, 3 epochs, batch 16), mean accuracy of seeds 0-2, LoRA and full fine-tuning on the same
# grid shape (x2 steps, each peak inside its grid), same examples, epochs and r:
#   python -m ftnotes.text.bench --split validation --methods lora,full --lr lora=X --lr full=Y
#   LoRA 5e-4 / 1e-3 / 2e-3 / 4e-3: 0.603 / 0.674 / 0.704 / 0.676
#   full 1e-4 / 2e-4 / 4e-4 / 8e-4: 0.601 / 0.686 / 0.713 / 0.689
# LoRA q/v and scratch keep the rates chosen earlier at 60 per class (seed 0): q/v 2e-3 / 5e-3 /
# 1e-2: 0.688 / 0.696 / 0.633; scratch 3e-5 / 1e-4 / 3e-4 / 1e-3 / 3e-3: 0.221 / 0.254 / 0.167
# (one class for all) at the three highest.
LR = {"lora": 2e-3, "lora_qv": 5e-3, "full": 4e-4, "scratch": 1e-4}
PROBE_C = 1.0  # LogisticRegression's inverse regularisation for the probe (sklearn's default)
TFIDF_C = 10.0
R = 8
# tokens: the smallest length that keeps 99% of the abstract training definitions whole (notebook
# 10 derives it; the longest has 48). Batches are padded to their own longest row, not to this.
MAX_LENGTH = 36
BATCH_SIZE = 16

__all__ = ["METHODS", "BASELINES", "FINETUNED", "LR", "Result", "run", "logistic_regression"]


@dataclass
class Result:
    """One method, one seed: scores on the evaluation split, what trained, what it cost."""

    method: str
    seed: int
    accuracy: float
    macro_f1: float
    seconds: float
    trainable: int = 0
    lr: float | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _scores(labels, pred) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    labels, pred = np.asarray(labels), np.asarray(pred)
    return float((labels == pred).mean()), float(f1_score(labels, pred, average="macro"))


def logistic_regression(X, y, C=PROBE_C):
    """The classical model on top of features: multinomial logistic regression (lbfgs)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=3000).fit(X, y)


def run_baseline(method, train, test, encoder=None, tokenizer=None, cache=None) -> tuple:
    """``(predictions, trainable count)`` of a baseline; ``cache`` (dict) keeps embeddings."""
    if method == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        clf = logistic_regression(vec.fit_transform(train.texts), train.labels, TFIDF_C)
        return clf.predict(vec.transform(test.texts)), clf.coef_.size + clf.intercept_.size
    cache = {} if cache is None else cache

    def vectors(texts):
        key = tuple(texts)
        if key not in cache:
            cache[key] = embed(encoder, tokenizer, texts, MAX_LENGTH).numpy()
        return cache[key]

    if method == "zero_shot":
        labels = vectors([DESCRIPTIONS[c] for c in test.label_names])
        return (vectors(test.texts) @ labels.T).argmax(1), 0
    clf = logistic_regression(vectors(train.texts), train.labels)
    return clf.predict(vectors(test.texts)), clf.coef_.size + clf.intercept_.size


def run_finetune(method, train, test, tokenizer, seed=0, lr=None, epochs=3, r=R, threads=1,
                 device=None, pairs=None):
    """``(model, trainer, Result)`` of one Trainer run of ``method``, scored on ``test``;
    with ``pairs`` (:func:`ftnotes.text.wordnet.load_pairs`) also the similarity AUC of the
    fine-tuned encoder (``Result.extra["similarity_auc"]``: forgetting)."""
    lr = LR[method] if lr is None else lr
    targets = finetune.QUERY_VALUE if method == "lora_qv" else finetune.ALL_LINEAR
    kind = "lora" if method.startswith("lora") else method
    model = finetune.new_classifier(train.label_names, kind, r=r, targets=targets, seed=seed)
    train_ds = finetune.tokenize(tokenizer, train.texts, train.labels, MAX_LENGTH)
    test_ds = finetune.tokenize(tokenizer, test.texts, test.labels, MAX_LENGTH, sort=True)
    trainer, seconds = finetune.train(model, tokenizer, train_ds, lr, epochs, BATCH_SIZE, seed,
                                      threads, device, desc=method)  # fmt: skip
    with pinned_threads(threads):
        scores = trainer.evaluate(test_ds)
    trainable = count_params(model, trainable_only=True)
    extra = {"steps": trainer.state.global_step, "train_loss": trainer.state.log_history[-1].get(
        "train_loss")}
    if pairs is not None:
        with pinned_threads(threads):
            extra["similarity_auc"] = similarity_auc(model, tokenizer, *pairs, MAX_LENGTH)
    res = Result(method, seed, scores["eval_accuracy"], scores["eval_macro_f1"], seconds,
                 trainable, lr, extra)
    return model, trainer, res


def run(method, categories, per_class=45, seed=0, split="test", epochs=3, lr=None,
        encoder=None, tokenizer=None, cache=None, threads=1, device=None, pairs=None,
        r=R) -> Result:
    """One method, one seed, on ``categories``: trained on ``per_class`` training definitions
    per category (drawn with ``seed``), scored on ``split`` (and on ``pairs``, if given, for
    the fine-tuned methods)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    train = load_definitions(categories, "train", per_class=per_class, seed=seed)
    test = load_definitions(categories, split)
    start = time.perf_counter()
    if method in BASELINES:
        with pinned_threads(threads):  # BLAS too (sklearn)
            pred, trainable = run_baseline(method, train, test, encoder, tokenizer, cache)
        acc, f1 = _scores(test.labels, pred)
        return Result(method, seed, acc, f1, time.perf_counter() - start, int(trainable))
    return run_finetune(method, train, test, tokenizer, seed, lr, epochs, r, threads, device,
                        pairs)[2]
