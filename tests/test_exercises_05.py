"""Notebook 05's checkers reject plausible wrong solutions with the right message."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from ftnotes.exercises import check
from ftnotes.exercises.nb05 import warmup_cosine


def no_warmup(step, total, warm, peak, low=0.0):
    return warmup_cosine(step + warm, total + warm, warm, peak, low) if warm else peak


def linear_decay(step, total, warm, peak, low=0.0):
    if step < warm:
        return peak * (step + 1) / warm
    return low + (peak - low) * (1 - (step - warm) / (total - 1 - warm))


def cosine_never_reaches_min(step, total, warm, peak, low=0.0):
    if step < warm:
        return peak * (step + 1) / warm
    return low + (peak - low) * 0.5 * (1 + math.cos(math.pi * (step - warm) / total))


def ignores_min_lr(step, total, warm, peak, low=0.0):
    return warmup_cosine(step, total, warm, peak, 0.0)


def warmup_overshoots(step, total, warm, peak, low=0.0):
    return (
        2 * warmup_cosine(step, total, warm, peak, low)
        if step < warm
        else warmup_cosine(step, total, warm, peak, low)
    )


def losses(model, x, y):
    model.eval()
    with torch.no_grad():
        return model(x), F.cross_entropy(model(x), y, reduction="none")


def flag_lowest(model, x, y, k):
    return losses(model, x, y)[1].topk(k, largest=False).indices


def flag_low_confidence(model, x, y, k):
    return losses(model, x, y)[0].softmax(1).max(1).values.topk(k, largest=False).indices


def flag_train_mode(model, x, y, k):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none").topk(k).indices


def flag_k_plus_one(model, x, y, k):
    return losses(model, x, y)[1].topk(k + 1).indices


def retention_target_head(ft, head, x, y):
    ft.eval()
    return (ft(x).argmax(1) == y).float().mean().item()


def retention_swaps_head(ft, head, x, y):
    ft.eval()
    ft.head = head
    return (ft(x).argmax(1) == y).float().mean().item()


def retention_train_mode(ft, head, x, y):
    return (head(ft.forward_features(x)).argmax(1) == y).float().mean().item()


def retention_percent(ft, head, x, y):
    ft.eval()
    return 100 * (head(ft.forward_features(x)).argmax(1) == y).float().mean().item()


def split_random(labels, frac, seed=0):
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    n_val = round(len(labels) * frac)
    return perm[n_val:], perm[:n_val]


def split_first(labels, frac, seed=0):
    val = [i for c in labels.unique() for i in (labels == c).nonzero().flatten().tolist()
           [: round(int((labels == c).sum()) * frac)]]  # fmt: skip
    return [i for i in range(len(labels)) if i not in val], val


def split_global_rng(labels, frac, seed=0):
    train, val = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx))]  # the global generator: seed ignored
        n = round(len(idx) * frac)
        val += idx[:n].tolist()
        train += idx[n:].tolist()
    return train, val


def split_overlapping(labels, frac, seed=0):
    train, val = split_global_rng(labels, frac, seed)
    return list(range(len(labels))), val


def fixed_peak(step, total, warm, peak, low=0.0):  # the checker's first peak_lr, typed in
    return warmup_cosine(step, total, warm, 1e-3, low)


def min_lr_default_1e4(step, total, warm, peak, low=1e-4):  # a default unlike the docstring's
    return warmup_cosine(step, total, warm, peak, low)


def retention_over_60(ft, head, x, y):  # the checker's first 60 images, typed in
    ft.eval()
    with torch.no_grad():
        return (head(ft.forward_features(x)).argmax(1) == y).sum().item() / 60


def split_rounding(rounding, swap=False):
    def split(labels, frac, seed=0):
        g = torch.Generator().manual_seed(seed)
        train, val = [], []
        for c in labels.unique():
            idx = (labels == c).nonzero().flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            n_val = rounding(len(idx) * frac)
            val += idx[:n_val].tolist()
            train += idx[n_val:].tolist()
        return (val, train) if swap else (train, val)

    return split


def loop(epochs_used=None, own_optimizer=False, no_return=False):
    def train_loop(model, loader, optimizer, scheduler, epochs):
        if own_optimizer:  # ignores the optimizer it was given
            optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
        model.train()
        losses = []
        for _ in range(epochs_used or epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
        return None if no_return else losses

    return train_loop


WRONG = [
    ("05_warmup_cosine", fixed_peak, "peak_lr = 0.05: use the peak_lr argument"),
    ("05_warmup_cosine", min_lr_default_1e4, "min_lr defaults to 0.0"),
    ("05_warmup_cosine", lambda *a, **k: None, "returned None: did you forget `return`"),
    ("05_flag_noisy", lambda m, x, y, k: None, "returned None"),
    ("05_source_retention", retention_over_60, "45 images.*divide by the number of images"),
    ("05_source_retention", lambda ft, head, x, y: None, "returned None"),
    ("05_stratified_split", split_rounding(math.floor), r"round\(8 \* 0.2\) = 2 \(you rounded down 1\.6\)"),
    ("05_stratified_split", split_rounding(math.ceil), r"round\(12 \* 0.2\) = 2 \(you rounded up 2\.4\)"),
    ("05_stratified_split", split_rounding(round, swap=True), "parts are swapped"),
    ("05_stratified_split", lambda labels, frac, seed=0: None, "returned None"),
    ("05_training_loop", loop(epochs_used=3), "in 2 epochs of 6 batches.*loop over `epochs`"),
    ("05_training_loop", loop(own_optimizer=True), r"optimizer.step\(\) ran 0 times"),
    ("05_training_loop", loop(no_return=True), "train_loop returned None"),
    ("05_warmup_cosine", no_warmup, "starts at the peak"),
    ("05_warmup_cosine", linear_decay, "linear"),
    ("05_warmup_cosine", cosine_never_reaches_min, "end near min_lr"),
    ("05_warmup_cosine", ignores_min_lr, "below min_lr"),
    ("05_warmup_cosine", warmup_overshoots, "highest lr"),
    ("05_flag_noisy", flag_lowest, "lowest-loss"),
    ("05_flag_noisy", flag_low_confidence, "GIVEN label"),
    ("05_flag_noisy", flag_train_mode, "eval mode"),
    ("05_flag_noisy", flag_k_plus_one, "exactly k"),
    ("05_noise_precision", lambda f, n: len(set(f) & set(n)) / len(n), "recall"),
    ("05_noise_precision", lambda f, n: len(set(f) & set(n)), "a count"),
    ("05_noise_precision", lambda f, n: len(set(f) & set(n)) / len(f), "tensor inputs"),
    ("05_noise_precision", lambda f, n: len({int(i) for i in f} & {int(i) for i in n})
     // len(f), "// rounds the fraction down"),
    ("05_source_retention", retention_target_head, "own \\(target\\) head"),
    ("05_source_retention", retention_swaps_head, "replaced the fine-tuned model's head"),
    ("05_source_retention", retention_train_mode, "eval\\(\\)"),
    ("05_source_retention", retention_percent, "percentage"),
    ("05_stratified_split", split_random, "stratified"),
    ("05_stratified_split", split_first, "shuffle first"),
    ("05_stratified_split", split_global_rng, "same seed gave a different split"),
    ("05_stratified_split", split_overlapping, "overlap"),
]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")  # own optimizer
@pytest.mark.parametrize("ex_id, wrong, message", WRONG)
def test_wrong_solution_is_rejected_with_its_message(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed"
    assert re.search(message, result.message), result.message


def test_training_loop_names_the_missing_or_misplaced_step():
    import torch.nn.functional as F

    from ftnotes.exercises import check

    def no_zero_grad(model, loader, optimizer, scheduler, epochs):
        model.train()
        out = []
        for _ in range(epochs):
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                scheduler.step()
                out.append(loss.item())
        return out

    def scheduler_per_epoch(model, loader, optimizer, scheduler, epochs):
        model.train()
        out = []
        for _ in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                out.append(loss.item())
            scheduler.step()
        return out

    assert "gradients still in .grad" in check("05_training_loop", no_zero_grad).message
    assert "not once per epoch" in check("05_training_loop", scheduler_per_epoch).message
