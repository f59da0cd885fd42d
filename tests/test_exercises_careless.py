"""Careless habits that every checker refuses, whatever the exercise (issue 14, item 7).

Per class, a wrong solution written for a real exercise: changing the caller's tensors in place,
reseeding the global random generators, returning a tensor or a rounded number where a float is
asked, hard-coding the checker's test-model sizes, a bias-less head wrongly refused, numpy ints,
parts of the model a check never looked at (the final norm), plain tensors instead of
parameters, merges that retrain or corrupt W, identical prompt tokens, a hard-coded batch
size, a schedule off by one at its end, scores from raw logits or a double softmax.
"""

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ftnotes.exercises import check


def accuracy_sorts_labels_in_place(logits, labels):
    right = (logits.argmax(1) == labels).float().mean().item()
    labels[:] = labels.flip(0)  # scribbles on the caller's tensor
    return right


def flag_noisy_in_place(model, images, labels, k):
    model.eval()
    with torch.no_grad():
        images -= images.mean()  # "normalising" writes into the caller's images
        losses = F.cross_entropy(model(images), labels, reduction="none")
    return losses.topk(k).indices


def split_with_global_seed(labels, val_fraction, seed=0):
    torch.manual_seed(seed)  # resets the notebook's random stream
    train, val = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx))]
        n = round(len(idx) * val_fraction)
        val.append(idx[:n])
        train.append(idx[n:])
    return torch.cat(train), torch.cat(val)


def split_with_python_seed(labels, val_fraction, seed=0):
    random.seed(seed)
    np.random.seed(seed)
    return split_with_global_seed.__wrapped__(labels, val_fraction, seed)


def _split_plain(labels, val_fraction, seed=0):
    g = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n = round(len(idx) * val_fraction)
        val.append(idx[:n])
        train.append(idx[n:])
    return torch.cat(train), torch.cat(val)


split_with_global_seed.__wrapped__ = _split_plain


def probe_hard_coded_width(model, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Linear(16, num_classes)  # the checker's first model happens to be 16 wide
    return model


def probe_hard_coded_classes(model, num_classes):
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Linear(model.head.in_features, 10)
    return model


def probe_without_bias(model, num_classes):  # correct: a linear probe may have no bias
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Linear(model.head.in_features, num_classes, bias=False)
    return model


def test_changing_an_input_in_place_is_refused():
    for ex_id, wrong in (("00_accuracy", accuracy_sorts_labels_in_place),
                         ("05_flag_noisy", flag_noisy_in_place)):  # fmt: skip
        result = check(ex_id, wrong)
        assert not result.passed and "in place" in result.message, (ex_id, result.message)


def test_reseeding_the_global_generators_is_refused_and_leaves_them_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for wrong, name in ((split_with_global_seed, "torch.manual_seed"),
                        (split_with_python_seed, "random.seed")):  # fmt: skip
        result = check("05_stratified_split", wrong)
        assert not result.passed and name in result.message, result.message
    assert torch.equal(torch.rand(3), expected)  # the student's own stream goes on untouched
    assert check("05_stratified_split", _split_plain).passed  # the same code with a Generator


def test_a_tensor_or_a_rounded_number_where_a_float_is_asked():
    result = check("00_accuracy", lambda lo, y: (lo.argmax(1) == y).float().mean())
    assert not result.passed and ".item()" in result.message
    result = check("00_accuracy", lambda lo, y: round((lo.argmax(1) == y).float().mean().item(), 2))
    assert not result.passed and "rounded to 2 decimals" in result.message, result.message
    result = check("00_ioai_score", lambda old, new: round(0.5 * old + 0.5 * new, 3))
    assert not result.passed and "rounded to 3 decimals" in result.message, result.message


def test_hard_coded_test_model_sizes_are_refused():
    result = check("00_linear_probe", probe_hard_coded_width)
    assert not result.passed and "model.head.in_features" in result.message, result.message
    result = check("00_linear_probe", probe_hard_coded_classes)
    assert not result.passed and "hard-code" in result.message, result.message


def test_false_rejections_fixed():
    assert check("00_linear_probe", probe_without_bias).passed

    def blocks_numpy(epoch, depth, epochs_per_stage=1):
        n = min(depth, epoch // epochs_per_stage)
        return list(np.arange(depth - n, depth))  # numpy ints index like ints

    assert check("01_gradual_unfreezing", blocks_numpy).passed


def test_no_last_hint_is_the_literal_solution_line():
    import inspect

    from ftnotes.exercises.core import _REGISTRY

    for ex in _REGISTRY.values():
        source = "\n".join(inspect.getsource(s) for s in ex.solution)
        lines = {line.strip() for line in source.splitlines() if len(line.strip()) > 12}
        last = ex.hints[-1]
        parts = {p.strip().rstrip(".") for p in last.replace(";", "\n").splitlines()}
        given = [line for line in lines if line in last or line in parts]
        assert not given, f"{ex.id}: the last hint gives away {given[0]!r}"


# ---------------------------------------------------------------- parts a check never looked at


def llrd_final_norm_with_embeddings(model, base_lr, decay):
    depth, groups = len(model.blocks), {}
    for name, p in model.named_parameters():
        if name.startswith("blocks."):
            steps = depth - int(name.split(".")[1])
        elif name.startswith("head."):
            steps = 0
        else:  # the final norm lands with the embeddings
            steps = depth + 1
        groups.setdefault(base_lr * decay**steps, []).append(p)
    return [{"params": ps, "lr": lr} for lr, ps in groups.items()]


def llrd_hard_coded_depth(model, base_lr, decay):
    groups = {}
    for name, p in model.named_parameters():
        if name.startswith("blocks."):
            steps = 3 - int(name.split(".")[1])  # the checker's first model has 3 blocks
        elif name.startswith(("head.", "norm.")):
            steps = 0
        else:
            steps = 4
        groups.setdefault(base_lr * decay**steps, []).append(p)
    return [{"params": ps, "lr": lr} for lr, ps in groups.items()]


def unfreeze_without_final_norm(model, k):
    depth = len(model.blocks)
    for name, p in model.named_parameters():
        top = name.startswith("blocks.") and int(name.split(".")[1]) >= depth - k
        p.requires_grad = top or name.startswith("head.")
    return model


def test_the_final_norm_and_a_second_depth_are_checked():
    assert "final norm" in check("01_llrd_groups", llrd_final_norm_with_embeddings).message
    assert "5-block" in check("01_llrd_groups", llrd_hard_coded_depth).message
    assert "final norm" in check("01_unfreeze_last_k", unfreeze_without_final_norm).message


# ---------------------------------------------------------------- tensors that are not parameters


class LoRAWithPlainTensors(nn.Module):
    def __init__(self, base, r=4, lora_alpha=8.0):
        super().__init__()
        self.base, self.scaling = base, lora_alpha / r
        for p in base.parameters():
            p.requires_grad = False
        self.lora_A = torch.empty(r, base.in_features).requires_grad_()  # not an nn.Parameter
        nn.init.kaiming_uniform_(self.lora_A, a=5**0.5)
        self.lora_B = torch.zeros(base.out_features, r, requires_grad=True)

    def forward(self, x):
        return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)


class LoRARight(LoRAWithPlainTensors):
    def __init__(self, base, r=4, lora_alpha=8.0):
        super().__init__(base, r, lora_alpha)
        self.lora_A = nn.Parameter(self.lora_A.detach())
        self.lora_B = nn.Parameter(self.lora_B.detach())


def test_plain_tensors_are_refused():
    assert check("03_lora_layer", LoRARight).passed
    assert "nn.Parameter" in check("03_lora_layer", LoRAWithPlainTensors).message


# ---------------------------------------------------------------- merges that break W


class MergeMakesWTrainable(LoRARight):
    merged = False

    def forward(self, x):
        return self.base(x) if self.merged else super().forward(x)

    def get_delta_weight(self):
        return self.scaling * self.lora_B @ self.lora_A

    def merge(self):
        if not self.merged:  # a fresh nn.Parameter: trainable again, and no longer the optimizer's
            self.base.weight = nn.Parameter(self.base.weight + self.get_delta_weight())
        self.merged = True

    def unmerge(self):
        if self.merged:
            self.base.weight = nn.Parameter(self.base.weight - self.get_delta_weight())
        self.merged = False


class UnmergeWithoutGuard(MergeMakesWTrainable):
    def merge(self):
        if not self.merged:
            with torch.no_grad():
                self.base.weight += self.get_delta_weight()
        self.merged = True

    def unmerge(self):
        with torch.no_grad():  # no check of self.merged: a second call subtracts again
            self.base.weight -= self.get_delta_weight()
        self.merged = False


def test_merges_that_retrain_or_corrupt_w_are_refused():
    assert "trainable again" in check("03_lora_merge", MergeMakesWTrainable).message
    assert "second unmerge" in check("03_lora_merge", UnmergeWithoutGuard).message


# ---------------------------------------------------------------- prompts, schedules, scores


class PromptOfIdenticalTokens(nn.Module):
    def __init__(self, num_virtual_tokens, dim):
        super().__init__()
        one = 0.02 * torch.randn(1, 1, dim)
        self.prompt = nn.Parameter(one.repeat(1, num_virtual_tokens, 1))

    def forward(self, tokens):
        prompt = self.prompt.expand(len(tokens), -1, -1)
        return torch.cat([tokens[:, :1], prompt, tokens[:, 1:]], dim=1)


class PromptForBatchOf32(PromptOfIdenticalTokens):
    def __init__(self, num_virtual_tokens, dim):
        super().__init__(num_virtual_tokens, dim)
        self.prompt = nn.Parameter(0.02 * torch.randn(32, num_virtual_tokens, dim))

    def forward(self, tokens):  # one prompt per position in the notebook's batch of 32
        return torch.cat([tokens[:, :1], self.prompt[: len(tokens)], tokens[:, 1:]], dim=1)


def warmup_cosine_short_by_one(step, total_steps, warmup_steps, peak_lr, min_lr=0.0):
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)  # < 1 at the last step
    return min_lr + 0.5 * (peak_lr - min_lr) * (1 + torch.cos(torch.tensor(progress * 3.14159265)).item())


def flag_by_double_softmax(model, images, labels, k):
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(images).softmax(1), labels, reduction="none").topk(k).indices


def flag_by_raw_logit(model, images, labels, k):
    model.eval()
    with torch.no_grad():
        return (-model(images).gather(1, labels[:, None]).squeeze(1)).topk(k).indices


def test_prompts_schedules_and_scores():
    assert "identical" in check("04_visual_prompt", PromptOfIdenticalTokens).message
    assert "trainable parameters" in check("04_visual_prompt", PromptForBatchOf32).message
    assert "off by one" in check("05_warmup_cosine", warmup_cosine_short_by_one).message
    assert "softmax" in check("05_flag_noisy", flag_by_double_softmax).message
    assert "raw logit" in check("05_flag_noisy", flag_by_raw_logit).message
