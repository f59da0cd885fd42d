"""What a method costs on the real encoder: step time measured interleaved, memory, file bytes,
and the forgetting of the encoder's sentence-similarity structure.

* :func:`step_ms`: median wall time of one training step (forward, backward, AdamW) of several
  models, measured **interleaved**: every round runs each model once in a rotating order, so
  load from other processes hits all of them alike (one after the other, a busy spell would
  land on one method and flip the comparison);
* :func:`saved_bytes`: the bytes ``save_pretrained`` writes (the whole model, or a peft
  model's adapter and its trained head);
* :func:`similarity_auc`: how well cosine similarity of the mean-pooled embeddings separates
  related from unrelated definition pairs (ROC AUC: the chance that a random related pair is
  more similar than a random unrelated one; 0.5 is no structure at all).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from ftnotes.checks import check_int
from ftnotes.text.encoder import embed
from ftnotes.train import snapshot

__all__ = ["step_ms", "saved_bytes", "similarity_auc"]


def step_ms(models: dict, batch: dict, rounds: int = 5, warmup: int = 1,
            forward_only=()) -> dict[str, float]:
    """Median ms of one training step for each ``{name: model}`` on ``batch`` (dict of tensors
    with ``labels``), interleaved over ``rounds`` timed rounds after ``warmup`` untimed ones.
    Each model gets its own AdamW at a tiny rate; the models are put back as they were (their
    weights restored, their mode kept). The models named in ``forward_only`` (a frozen encoder
    feeding a probe) are timed as one forward pass without gradients and without labels."""
    check_int("rounds", rounds)
    check_int("warmup", warmup, 0)
    if not models:
        raise ValueError("models must be a non-empty dict of name -> model")
    saved = {n: snapshot(m) for n, m in models.items()}
    modes = {n: m.training for n, m in models.items()}
    unknown = [n for n in forward_only if n not in models]
    if unknown:
        raise ValueError(f"forward_only names {unknown}, which are not in models {list(models)}")
    opts = {n: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-8)
            for n, m in models.items() if n not in forward_only}  # fmt: skip
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    names, times = list(models), {n: [] for n in models}
    cuda = any(p.is_cuda for m in models.values() for p in m.parameters())
    sync = torch.cuda.synchronize if cuda else (lambda: None)  # CUDA runs asynchronously
    try:
        for i in range(warmup + rounds):
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                sync()
                start = time.perf_counter()
                if name in forward_only:
                    with torch.no_grad():
                        models[name].eval()(**inputs)
                else:
                    models[name].train()(**batch).loss.backward()
                    opts[name].step()
                    opts[name].zero_grad(set_to_none=True)
                sync()
                if i >= warmup:
                    times[name].append(time.perf_counter() - start)
    finally:
        for n, m in models.items():
            m.load_state_dict(saved[n])
            m.train(modes[n])
    return {n: 1000 * statistics.median(t) for n, t in times.items()}


def saved_bytes(model) -> dict[str, int]:
    """``{file name: bytes}`` that ``model.save_pretrained`` writes (into a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="ftnotes-save-") as tmp:
        model.save_pretrained(tmp)
        return {p.name: p.stat().st_size for p in sorted(Path(tmp).rglob("*")) if p.is_file()}


def similarity_auc(model, tokenizer, texts_a, texts_b, related, max_length: int = 64) -> float:
    """ROC AUC of cosine(embed(a), embed(b)) for telling related (1) from unrelated (0) pairs."""
    from sklearn.metrics import roc_auc_score

    if not len(texts_a) == len(texts_b) == len(related):
        raise ValueError(f"texts_a, texts_b and related must have one entry per pair, got "
                         f"{len(texts_a)}, {len(texts_b)} and {len(related)}")
    if set(related) != {0, 1}:
        raise ValueError("related must hold both 0 (unrelated) and 1 (related) pairs")
    unique = list(dict.fromkeys([*texts_a, *texts_b]))  # anchors repeat: embed each text once
    vectors = dict(zip(unique, embed(model, tokenizer, unique, max_length)))
    cos = [float(vectors[a] @ vectors[b]) for a, b in zip(texts_a, texts_b)]
    return float(roc_auc_score(related, cos))
