"""Exercises of notebook 10 (a real encoder on real text): mean pooling over the attention mask,
the truncation length from the length statistics, compute_metrics with macro-F1, and the
trainable count of LoRA on a BERT classifier. The reference solutions sit next to their
checkers."""

from __future__ import annotations

import math

import numpy as np
import torch

from .core import exercise

# ---------------------------------------------------------------- 10_mean_pool


def mean_pool(last_hidden_state, attention_mask):
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@exercise(
    "10_mean_pool",
    title="Mean pooling over the attention mask",
    kind="function",
    reference=mean_pool,
    stub='''
    def mean_pool(last_hidden_state, attention_mask):
        """last_hidden_state: (B, T, H) float; attention_mask: (B, T) int, 1 on real tokens,
        0 on padding. Return (B, H): each row's mean over its real tokens only (padding
        counts neither in the sum nor in the count). Do not change the inputs."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Padding vectors are not zero (the encoder computes something at every position), so "
        "they must be masked out before summing.",
        "attention_mask.unsqueeze(-1) has shape (B, T, 1): it broadcasts over H. Convert it to "
        "the hidden states' dtype before multiplying.",
        "(h * m).sum(1) / m.sum(1), with m = attention_mask.unsqueeze(-1).float(): sum over the "
        "token axis, divide by the number of real tokens of each row.",
    ],
)
def _check_mean_pool(fn, ctx):
    g = torch.Generator().manual_seed(0)
    for b, t, h, lengths in ((3, 5, 4, (5, 2, 3)), (2, 7, 6, (1, 7))):
        hidden = torch.randn(b, t, h, generator=g) + 3.0  # padding rows are far from zero
        mask = (torch.arange(t)[None] < torch.tensor(lengths)[:, None]).long()
        keep = hidden.clone(), mask.clone()
        got = fn(hidden, mask)
        ctx.expect(isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}")
        ctx.expect(torch.equal(hidden, keep[0]) and torch.equal(mask, keep[1]),
                   "your function changed its inputs: compute on new tensors (no in-place ops).")
        ctx.expect(got.shape == (b, h), f"return shape (B, H) = {(b, h)}, got {tuple(got.shape)}")
        want = mean_pool(hidden, mask)
        if torch.allclose(got, hidden.mean(1), atol=1e-5):
            ctx.fail("you averaged over every position, padding included: average over the "
                     "real tokens only (mask them).")  # fmt: skip
        if torch.allclose(got, want * torch.tensor(lengths)[:, None] / t, atol=1e-5):
            ctx.fail("you divided by T, the padded length: divide by each row's number of real "
                     "tokens, attention_mask.sum(1).")  # fmt: skip
        if torch.allclose(got, want * torch.tensor(lengths)[:, None], atol=1e-4):
            ctx.fail("that is the masked sum: divide by each row's number of real tokens.")
        if torch.allclose(got, hidden[:, 0], atol=1e-5):
            ctx.fail("that is the first ([CLS]) vector: mean pooling averages every real token.")
        ctx.expect(torch.allclose(got, want, atol=1e-5),
                   f"rows differ from the masked mean (lengths {lengths}): largest difference "
                   f"{(got - want).abs().max():.3g}")  # fmt: skip
    ctx.ok("the mean over the real tokens of each row, for two batch shapes")
    ctx.ok("padding ignored in the sum and in the count; inputs unchanged")


# ---------------------------------------------------------------- 10_max_length


def choose_max_length(lengths, coverage):
    ordered = sorted(lengths)
    k = math.ceil(coverage * len(ordered))  # this many texts must fit
    return ordered[max(k, 1) - 1]


@exercise(
    "10_max_length",
    title="The truncation length from the length statistics",
    kind="function",
    reference=choose_max_length,
    stub='''
    def choose_max_length(lengths, coverage):
        """lengths: token counts of the training texts ([CLS] and [SEP] included), a list of
        ints. coverage: a float in (0, 1]. Return the smallest int max_length such that at
        least a fraction `coverage` of the texts have length <= max_length (are not cut)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Sort the lengths. If k texts must fit, the k-th smallest length is the answer: every "
        "text up to it fits, and any smaller max_length cuts one of those k.",
        "k = ceil(coverage * n): 'at least a fraction' rounds up. np.percentile interpolates "
        "between values and may return a float or a length one too small.",
        "With the lengths sorted ascending and k = ceil(coverage * n), the answer is the k-th "
        "of them: index k - 1, counting from 0. Return it as a plain int.",
    ],
)
def _check_max_length(fn, ctx):
    cases = [([7, 3, 9, 12, 5, 20, 8, 11, 6, 4], 0.9), ([7, 3, 9, 12, 5, 20, 8, 11, 6, 4], 0.75),
             ([10, 10, 12, 14, 30, 11, 13], 0.5), ([5, 6, 7], 1.0), ([9, 3, 4, 8, 4, 5, 6], 0.8),
             ([7, 3, 9, 12, 5, 20, 8, 11, 6, 4], 0.82), ([14, 2, 10, 4, 12, 6, 8], 0.6)]  # fmt: skip
    for lengths, cov in cases:
        got = fn(list(lengths), cov)
        ctx.expect(isinstance(got, int | np.integer) and not isinstance(got, bool),
                   f"return an int, got {type(got).__name__} {got!r:.40}")  # fmt: skip
        want = choose_max_length(lengths, cov)
        fits = sum(x <= got for x in lengths) / len(lengths)
        ctx.expect(fits >= cov, f"with max_length={got} only {fits:.0%} of {lengths} fit, "
                   f"fewer than coverage={cov}: round the count of texts that must fit up.")
        ctx.expect(got == want, f"max_length={got} for coverage {cov} on {lengths}: a smaller "
                   f"one, {want}, already covers {cov:.0%}; return the smallest.")  # fmt: skip
    ctx.ok("the smallest length that covers the fraction, for seven lists and coverages")
    ctx.ok("rounded up (at least the fraction), an int, not an interpolated percentile")


# ---------------------------------------------------------------- 10_compute_metrics


def compute_metrics(eval_pred):
    from sklearn.metrics import f1_score

    logits = eval_pred.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    pred, labels = np.argmax(logits, axis=-1), eval_pred.label_ids
    return {"accuracy": float((pred == labels).mean()),
            "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0))}


def _eval_pred(logits, labels, as_tuple=False):
    from transformers import EvalPrediction

    preds = (logits, np.zeros((len(labels), 3))) if as_tuple else logits
    return EvalPrediction(predictions=preds, label_ids=labels)


@exercise(
    "10_compute_metrics",
    title="compute_metrics with accuracy and macro-F1",
    kind="function",
    reference=compute_metrics,
    stub='''
    def compute_metrics(eval_pred):
        """Trainer calls this with an EvalPrediction: .predictions (numpy logits (N, C), or a
        tuple whose first entry they are) and .label_ids (N,). Return {"accuracy": float,
        "macro_f1": float}: macro-F1 is the plain mean over the classes of each class's F1."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Predictions are the argmax of the logits over the last axis. sklearn.metrics.f1_score "
        "computes F1; its `average` argument decides how the classes are combined.",
        "average='macro' weighs every class alike (a rare class counts as much as a common "
        "one); 'micro' equals accuracy here and 'weighted' weighs classes by their size.",
        "Unpack a tuple first (logits = logits[0]); return Python floats: float(...).",
    ],
)
def _check_compute_metrics(fn, ctx):
    rng = np.random.default_rng(0)
    # imbalanced labels, one class never predicted: macro, micro and weighted F1 all differ
    for n, c in ((40, 4), (30, 3)):
        labels = np.array([0] * (n // 2) + list(rng.integers(1, c, n - n // 2)))
        logits = rng.normal(size=(n, c))
        logits[: n // 3, 0] += 3
        logits[:, c - 1] -= 10  # class c-1 is never predicted
        for as_tuple in (False, True):
            got = fn(_eval_pred(logits, labels, as_tuple))
            want = compute_metrics(_eval_pred(logits, labels))
            ctx.expect(isinstance(got, dict) and set(got) >= {"accuracy", "macro_f1"},
                       f"return a dict with keys 'accuracy' and 'macro_f1', got {got!r:.80}")
            ctx.expect(all(type(got[k]) is float for k in want),
                       "return Python floats (float(...)), not numpy numbers: Trainer logs "
                       f"them to JSON; got {({k: type(got[k]).__name__ for k in want})}")
            ctx.expect(abs(got["accuracy"] - want["accuracy"]) < 1e-9,
                       f"accuracy {got['accuracy']:.4f}, expected {want['accuracy']:.4f}")
            f1 = got["macro_f1"]
            from sklearn.metrics import f1_score

            pred = logits.argmax(-1)
            if abs(f1 - f1_score(labels, pred, average="weighted", zero_division=0)) < 1e-9:
                ctx.fail("that is the weighted F1 (classes weighed by size): macro-F1 is the "
                         "plain mean of the per-class F1s.")  # fmt: skip
            if abs(f1 - want["accuracy"]) < 1e-9:
                ctx.fail("that equals accuracy (micro-F1): macro-F1 averages per-class F1s.")
            ctx.expect(abs(f1 - want["macro_f1"]) < 1e-9,
                       f"macro_f1 {f1:.4f}, expected {want['macro_f1']:.4f} (the mean over all "
                       f"{c} classes, one never predicted: its F1 is 0)")  # fmt: skip
    ctx.ok("accuracy and the mean of per-class F1s, with imbalanced classes and a class "
           "never predicted")
    ctx.ok("logits given as an array or as the first entry of a tuple; Python floats")


# ---------------------------------------------------------------- 10_lora_count


def lora_trainable(config, r, target_modules, num_labels):
    d, f = config.hidden_size, config.intermediate_size
    shapes = {"query": (d, d), "key": (d, d), "value": (d, d), "intermediate.dense": (d, f)}
    lora = config.num_hidden_layers * sum(r * sum(shapes[m]) for m in target_modules)
    head = (d * d + d) + (d * num_labels + num_labels)  # pooler + classifier, trained in full
    return lora + head


def _peft_count(config, r, targets, num_labels) -> int:
    from transformers import BertForSequenceClassification

    from ftnotes.text.finetune import add_lora

    config.num_labels = num_labels
    model = BertForSequenceClassification(config)
    wrapped = add_lora(model, r, tuple(targets))
    return sum(p.numel() for p in wrapped.parameters() if p.requires_grad)


@exercise(
    "10_lora_count",
    title="The trainable parameters of LoRA on a BERT classifier",
    kind="function",
    reference=lora_trainable,
    stub='''
    def lora_trainable(config, r, target_modules, num_labels):
        """Trainable parameters of ftnotes.text.finetune.add_lora(model, r, target_modules) on
        a BertForSequenceClassification with this BertConfig (hidden_size, intermediate_size,
        num_hidden_layers) and num_labels classes: LoRA on target_modules (names among query,
        key, value, intermediate.dense) in every layer, plus the head trained in full: the
        pooler (a hidden x hidden Linear) and the classifier (hidden -> num_labels), with
        their biases. Predict it from the config: build no model."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "LoRA on a Linear with in_features n and out_features m adds A (r x n) and B (m x r): "
        "r * (n + m) parameters, in every one of the num_hidden_layers layers.",
        "query, key and value are hidden -> hidden; intermediate.dense is hidden -> "
        "intermediate_size. The head adds the pooler's weight and bias (hidden * hidden + "
        "hidden) and the classifier's (hidden * num_labels + num_labels).",
        "layers * sum(r * (n + m) for each target) + (d * d + d) + (d * num_labels + num_labels)",
    ],
)
def _check_lora_count(fn, ctx):
    from transformers import BertConfig

    cases = [(dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3), 4,
              ("query", "value"), 6),
             (dict(hidden_size=24, intermediate_size=96, num_hidden_layers=2), 3,
              ("query", "key", "value", "intermediate.dense"), 4),
             (dict(hidden_size=16, intermediate_size=40, num_hidden_layers=4), 2,
              ("intermediate.dense",), 3)]  # fmt: skip
    for kw, r, targets, labels in cases:
        config = BertConfig(vocab_size=30, num_attention_heads=2, max_position_embeddings=16,
                            **kw)  # fmt: skip
        want = _peft_count(config, r, targets, labels)
        got = fn(config, r, list(targets), labels)
        ctx.expect(isinstance(got, int) and not isinstance(got, bool),
                   f"return an int, got {type(got).__name__} {got!r:.40}")  # fmt: skip
        d = kw["hidden_size"]
        head = d * d + d + d * labels + labels
        if got == want - head:
            ctx.fail(f"{got} counts only LoRA's A and B: the head (pooler and classifier) "
                     "trains in full and counts too.")  # fmt: skip
        if got == want - (d * d + d):
            ctx.fail(f"{got} leaves out the pooler (hidden x hidden + bias), which trains "
                     "with the classifier.")  # fmt: skip
        if got == want - d - labels:
            ctx.fail(f"{got} leaves out the biases of the pooler and the classifier.")
        ctx.expect(got == want, f"r={r} on {list(targets)}, {labels} labels ({kw}): peft "
                   f"trains {want:,}, you predicted {got:,}.")  # fmt: skip
    ctx.ok("equal to peft's count for 3 configs (attention, the MLP, several label counts)")
