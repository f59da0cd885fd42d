"""Which weights move, and how fast: the classic fine-tuning strategies.

* ``linear_probe``: freeze the body, train only a new head.
* ``full_ft``: train everything.
* ``partial_ft``: train the last ``k`` blocks, the final norm and the head (Yosinski et al.
  2014: lower layers are more general, upper ones more task-specific).
* ``gradual_unfreeze``: ULMFiT (Howard & Ruder 2018): start as a linear probe, then unfreeze one
  more block per epoch from the top down, so early noisy gradients from a random head cannot
  wreck the lower layers.
* ``lp_ft``: Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features": probe the head
  first, then fine-tune everything starting from a head that already fits.
* layer-wise learning-rate decay (LLRD; ULMFiT's discriminative rates, BEiT/ELECTRA's decay):
  block i learns at ``base_lr * layer_decay ** (depth - i)``.

The functions expect a ``TinyViT``-shaped model: ``patch_embed``, ``cls_token``, ``pos_embed``,
``blocks`` (a ModuleList), ``norm``, ``head`` (an ``nn.Linear``).
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_bool, check_choice, check_int, check_number
from .models import block_index
from .train import History, fit

STRATEGIES = ("linear_probe", "full_ft", "partial_ft", "gradual_unfreeze", "lp_ft")
EMBEDDINGS = ("patch_embed", "cls_token", "pos_embed")


def _head(model) -> nn.Linear:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise ValueError(f"model needs an nn.Linear `head`, got {type(head).__name__}")
    return head


def _blocks(model) -> nn.ModuleList:
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ValueError(
            f"model needs a ModuleList `blocks` (a TinyViT), got {type(model).__name__}"
        )
    return blocks


def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on every parameter of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=True`` on every parameter of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def check_head_rows(init_from_rows, num_rows: int, old_head: nn.Linear) -> list[int] | None:
    """``init_from_rows`` as a list of ``num_rows`` row indices of ``old_head`` (or None)."""
    if init_from_rows is None:
        return None
    rows = list(init_from_rows)
    if len(rows) != num_rows or not all(
        isinstance(r, int) and 0 <= r < old_head.out_features for r in rows
    ):
        raise ValueError(
            f"init_from_rows must list {num_rows} row indices in [0, {old_head.out_features}), "
            f"got {rows!r}"
        )
    return rows


def replace_head(model, num_classes: int, init_from_rows=None) -> nn.Linear:
    """Give ``model`` a fresh (D -> num_classes) head and return the OLD one.

    Keep the old head: ``evaluate.source_retention`` scores the fine-tuned body with it.
    ``init_from_rows``: source-class indices whose rows (weight and bias) start the new head,
    one per new class; e.g. ``range(10)`` for the digits, since glyph rows 0-9 are "0"-"9".
    Otherwise the head starts like TinyViT's (truncated normal, std 0.02, zero bias).
    """
    old = _head(model)
    check_int("num_classes", num_classes)
    rows = check_head_rows(init_from_rows, num_classes, old)
    new = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
    nn.init.trunc_normal_(new.weight, std=0.02)
    nn.init.zeros_(new.bias)
    if rows is not None:
        with torch.no_grad():
            new.weight.copy_(old.weight[rows])
            new.bias.copy_(old.bias[rows])
    model.head = new
    return old


def _unit(name: str) -> str:
    """Parameter name -> the unit it belongs to: 'blocks.2', 'head', 'patch_embed', ..."""
    i = block_index(name)
    return f"blocks.{i}" if i is not None else name.split(".")[0]


def trainable_summary(model: nn.Module) -> str:
    """A readable table: each unit (embeddings, every block, norm, head) trainable or frozen."""
    units: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        counts = units.setdefault(_unit(name), [0, 0])
        counts[0] += p.numel() if p.requires_grad else 0
        counts[1] += p.numel()
    lines = [f"{'unit':<12} {'trainable':>10} {'total':>10}"]
    for unit, (t, n) in units.items():
        flag = "trainable" if t == n else ("frozen" if t == 0 else "partly trainable")
        lines.append(f"{unit:<12} {t:>10,} {n:>10,}  {flag}")
    t, n = sum(c[0] for c in units.values()), sum(c[1] for c in units.values())
    lines.append(f"{'total':<12} {t:>10,} {n:>10,}  ({100 * t / max(n, 1):.1f}% trainable)")
    return "\n".join(lines)


class GradualUnfreeze:
    """Callback for ``fit``: after epoch e (0-indexed), blocks depth-1 .. depth-1-e train.

    The final norm is unfrozen with the top block; once every block trains, the embeddings
    follow one epoch later, and the model is then fully fine-tuned.
    """

    def __init__(self, model):
        self.depth = len(_blocks(model))

    def __call__(self, epoch: int, model, history=None) -> None:
        n = epoch + 1  # blocks unfrozen after this epoch
        unfreeze(model.norm)
        for i in range(max(0, self.depth - n), self.depth):
            unfreeze(model.blocks[i])
        if n > self.depth:
            for name in EMBEDDINGS:
                obj = getattr(model, name)
                unfreeze(obj) if isinstance(obj, nn.Module) else obj.requires_grad_(True)


def _linear_probe(model) -> None:
    freeze(model)
    unfreeze(_head(model))


def apply_strategy(model, strategy: str, k: int | None = None) -> list:
    """Set ``requires_grad`` for ``strategy``; returns the ``fit`` callbacks it needs.

    ``gradual_unfreeze`` returns ``[GradualUnfreeze(model)]``; ``lp_ft`` sets up its first
    phase (a linear probe) and :func:`finetune` runs the second. ``k`` (``partial_ft`` only):
    how many top blocks to train, 0 .. depth.
    """
    check_choice("strategy", strategy, STRATEGIES)
    if strategy == "full_ft":
        unfreeze(model)
    elif strategy in ("linear_probe", "lp_ft"):
        _linear_probe(model)
    elif strategy == "gradual_unfreeze":
        _linear_probe(model)
        return [GradualUnfreeze(model)]
    else:
        depth = len(_blocks(model))
        check_int("k", k, 0, depth)  # partial_ft: how many top blocks train
        _linear_probe(model)
        unfreeze(model.norm)
        for block in model.blocks[depth - k :]:
            unfreeze(block)
    return []


def _layer_id(name: str, depth: int) -> int:
    """0 = embeddings, i + 1 = block i, depth + 1 = final norm and head."""
    i = block_index(name)
    if i is not None:
        return i + 1
    return 0 if name.split(".")[0] in EMBEDDINGS else depth + 1


def layerwise_lr_groups(model, base_lr: float, layer_decay: float = 1.0, head_lr=None,
                        weight_decay: float = 0.01, include_frozen: bool = False) -> list:  # fmt: skip
    """AdamW parameter groups with layer-wise learning-rate decay, bottom (embeddings) first.

    Exactly: head and final norm: ``head_lr`` (default ``base_lr``); block i of ``depth``:
    ``base_lr * layer_decay ** (depth - i)`` (top block: decay^1); embeddings (patch_embed,
    cls_token, pos_embed): ``base_lr * layer_decay ** (depth + 1)``, the lowest.
    Each group carries ``name`` and ``lr_scale`` keys (torch keeps extra keys) for plotting.
    Frozen parameters are left out unless ``include_frozen`` (for gradual unfreezing).
    ``weight_decay`` is the group's rate for its matrices: ``fit`` splits every group into a
    decay and a no-decay half (:func:`ftnotes.train.decay_param_groups`: biases, norms,
    ``cls_token`` and ``pos_embed`` get none), so one group per layer is kept here for plots.
    """
    check_number("base_lr", base_lr, 0, strict=True)
    check_number("layer_decay", layer_decay, 0.0, 1.0, strict=True)
    check_number("head_lr", head_lr, 0, strict=True, optional=True)
    check_bool("include_frozen", include_frozen)
    depth = len(_blocks(model))
    groups: dict[int, dict] = {}
    for name, p in model.named_parameters():
        if not (p.requires_grad or include_frozen):
            continue
        lid = _layer_id(name, depth)
        if lid not in groups:
            scale = layer_decay ** (depth + 1 - lid)
            lr = head_lr if (lid == depth + 1 and head_lr is not None) else base_lr * scale
            label = (
                "embed" if lid == 0 else ("head+norm" if lid == depth + 1 else f"blocks.{lid - 1}")
            )
            groups[lid] = {"params": [], "lr": lr, "lr_scale": lr / base_lr,
                           "weight_decay": weight_decay, "name": label}  # fmt: skip
        groups[lid]["params"].append(p)
    return [groups[lid] for lid in sorted(groups)]


def lr_per_layer(groups) -> list[tuple[str, float]]:
    """``[(name, lr), ...]`` from parameter groups (bottom first), for ``plots.plot_lr_per_layer``."""
    return [(g.get("name", f"group {i}"), float(g["lr"])) for i, g in enumerate(groups)]


def finetune(model, task, strategy: str = "full_ft", *, k=None, lr: float = 1e-3, head_lr=None,
             layer_decay=None, lp_epochs: int = 3, **fit_kwargs) -> History:  # fmt: skip
    """Fine-tune ``model`` on ``task.train`` (validating on ``task.val``) with ``strategy``.

    The one readable call for notebooks. Replacing the head (``replace_head``) is the caller's
    job, before this call. ``layer_decay``/``head_lr``: layer-wise rates (see
    :func:`layerwise_lr_groups`). ``lp_ft``: ``lp_epochs`` of linear probing at ``head_lr``
    (default ``lr``), then full fine-tuning at ``lr`` for ``epochs``; the two histories are
    joined and ``history.phase_starts`` says where the second begins. Other keywords go to
    :func:`ftnotes.train.fit`.
    """
    callbacks = apply_strategy(model, strategy, k)
    callbacks = list(fit_kwargs.pop("callbacks", ())) + callbacks
    val = getattr(task, "val", None)

    def run(rate, phase_head_lr):
        groups = None
        if layer_decay is not None or phase_head_lr is not None:
            groups = layerwise_lr_groups(
                model, rate, 1.0 if layer_decay is None else layer_decay, phase_head_lr,
                fit_kwargs.get("weight_decay", 0.01), include_frozen=bool(callbacks),
            )  # fmt: skip
        return fit(model, task.train, val, lr=rate, param_groups=groups, callbacks=callbacks,
                   **fit_kwargs)  # fmt: skip

    if strategy != "lp_ft":
        return run(lr, head_lr)
    check_int("lp_epochs", lp_epochs)
    epochs = fit_kwargs.pop("epochs", 10)
    probe = fit(model, task.train, val, lr=head_lr or lr, epochs=lp_epochs, callbacks=callbacks,
                **fit_kwargs)  # fmt: skip
    probe.phase_starts["linear_probe"] = 0
    if probe.diverged:
        return probe
    unfreeze(model)
    fit_kwargs["epochs"] = epochs
    return probe.extend(run(lr, None), "fine_tune")
