"""Every matplotlib figure of the notebooks, in one place.

Each function builds a figure and returns it without calling ``plt.show()``: in a notebook the
returned figure displays itself; in a script, save it with ``fig.savefig(...)``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .schedules import schedule_values
from .utils import check_int

SIZE = (6, 3.5)


def plot_history(history, title: str = "training curves"):
    """Train vs validation loss (left) and accuracy (right) per epoch; best epoch marked."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(2 * SIZE[0], SIZE[1]))
    epochs = np.arange(1, history.epochs_run + 1)  # shown 1-based: "epoch 1" is index 0
    for ax, key, label in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "acc", "accuracy")):
        ax.plot(epochs, getattr(history, f"train_{key}"), "o-", label="train")
        val = getattr(history, f"val_{key}")
        if val:
            ax.plot(epochs[: len(val)], val, "s-", label="validation")
        if history.best_epoch is not None:
            ax.axvline(history.best_epoch + 1, color="gray", ls="--", label="best epoch (restored)")
        for phase, start in history.phase_starts.items():
            if start > 0:
                ax.axvline(start + 0.5, color="tab:green", ls=":", label=f"{phase} starts")
        ax.set(xlabel="epoch", ylabel=label)
        ax.legend(fontsize=8)
    note = " (stopped early)" if history.stopped_early else ""
    note += " (diverged)" if history.diverged else ""
    fig.suptitle(title + note)
    fig.tight_layout()
    return fig


def plot_log_history(runs: dict, title: str = "Trainer loss curves"):
    """Train loss (left) and eval loss (right) per epoch of 🤗 ``Trainer`` runs.

    ``runs``: name -> ``trainer.state.log_history`` (a list of dicts: training logs carry
    ``loss``, evaluations ``eval_loss``, both with ``epoch``). The best epoch (lowest eval loss,
    what ``load_best_model_at_end`` restores with ``metric_for_best_model="eval_loss"``) is
    marked with a star.
    """
    if not isinstance(runs, dict) or not runs:
        raise ValueError(f"runs must be a non-empty dict of name -> log_history, got {runs!r:.80}")
    fig, (ax_t, ax_e) = plt.subplots(1, 2, figsize=(2 * SIZE[0], SIZE[1]))
    for name, logs in runs.items():
        train = [(r["epoch"], r["loss"]) for r in logs if "loss" in r and "eval_loss" not in r]
        evals = [(r["epoch"], r["eval_loss"]) for r in logs if "eval_loss" in r]
        if not evals:
            raise ValueError(f"runs[{name!r}] has no eval_loss entries: use eval_strategy='epoch'")
        (line,) = ax_t.plot(*zip(*train), "o-", ms=3, label=name) if train else (None,)
        colour = line.get_color() if line is not None else None
        ax_e.plot(*zip(*evals), "s-", ms=3, color=colour, label=name)
        best = min(evals, key=lambda e: e[1])
        ax_e.plot(*best, "*", ms=14, color=colour)
    ax_t.set(xlabel="epoch", ylabel="training loss", title="train (logged each epoch)")
    ax_e.set(xlabel="epoch", ylabel="validation loss", title="eval (★ best, restored)")
    for ax in (ax_t, ax_e):
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_schedules(names, total_steps: int = 100, base_lr: float = 1.0, warmup=0.1):
    """The learning rate of each named schedule over ``total_steps`` steps."""
    fig, ax = plt.subplots(figsize=SIZE)
    for name in [names] if isinstance(names, str) else names:
        ax.plot(schedule_values(name, total_steps, base_lr, warmup=warmup), label=name)
    ax.set(xlabel="optimizer step", ylabel="learning rate", title="learning-rate schedules")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lr_per_layer(groups, title: str = "learning rate per layer"):
    """Bar chart of each parameter group's rate, bottom (embeddings) to top (head), log scale."""
    names = [g.get("name", f"group {i}") for i, g in enumerate(groups)]
    rates = [float(g["lr"]) for g in groups]
    fig, ax = plt.subplots(figsize=SIZE)
    ax.bar(names, rates, color="tab:blue")
    ax.set_yscale("log")
    ax.set(xlabel="layer (bottom to top)", ylabel="learning rate (log scale)", title=title)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def plot_comparison(ledger_or_records, x: str = "trainable_params", y: str = "target_acc"):
    """Accuracy vs trainable parameters (log x) or vs training time, one labelled point a run."""
    allowed = ("trainable_params", "train_seconds")
    if x not in allowed:
        raise ValueError(f"x must be one of {allowed}, got {x!r}")
    records = getattr(ledger_or_records, "records", ledger_or_records)
    fig, ax = plt.subplots(figsize=SIZE)
    for r in records:
        ax.scatter(getattr(r, x), getattr(r, y), s=40)
        ax.annotate(r.name, (getattr(r, x), getattr(r, y)), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)  # fmt: skip
    if x == "trainable_params":
        ax.set_xscale("log")
    xlabel = "trainable parameters (log scale)" if x == "trainable_params" else "training time (s)"
    ax.set(xlabel=xlabel, ylabel=y.replace("_", " "), title=f"{y.replace('_', ' ')} vs cost")
    ax.margins(x=0.2, y=0.1)  # room for the labels of the outermost points
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def image_grid(X, labels=None, ncols: int = 8, title=None):
    """Show 8x8 images (N, 1, 8, 8) or (N, 8, 8) in a grid, dark ink on white, with labels."""
    images = torch.as_tensor(X).detach().cpu().reshape(len(X), 8, 8).numpy()
    check_int("ncols", ncols)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(labels)}")
    ncols = min(ncols, len(images))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.25 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(cm, classes, title: str = "confusion matrix"):
    """Confusion matrix heat map with counts: rows true class, columns predicted class."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(classes):
        raise ValueError(
            f"cm must be square with one row per class ({len(classes)}), got {cm.shape}"
        )
    fig, ax = plt.subplots(figsize=(SIZE[0], SIZE[0] * 0.85))
    im = ax.imshow(cm, cmap="Blues")
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, [str(c) for c in classes])
    ax.set_yticks(ticks, [str(c) for c in classes])
    for i, j in np.ndindex(cm.shape):
        if cm[i, j]:
            dark = cm[i, j] > cm.max() / 2
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")  # fmt: skip
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_memory_terms(rows: dict, budget_gb: float = 16.0, title: str = "will it fit?"):
    """Stacked horizontal bars of the four memory terms (GB) per setup, with a budget line.

    ``rows`` maps a label to a dict of term -> bytes (``Estimate.terms()``); None counts as 0.
    """
    if not rows:
        raise ValueError("rows must be a non-empty dict of label -> {term: bytes}, got {}")
    if not budget_gb > 0:
        raise ValueError(f"budget_gb must be > 0, got {budget_gb!r}")
    labels = list(rows)
    terms = list(next(iter(rows.values())))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.4))
    left = np.zeros(len(labels))
    for term, colour in zip(terms, ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        gb = np.array([(rows[lb].get(term) or 0) / 1e9 for lb in labels])
        ax.barh(labels, gb, left=left, color=colour, label=term)
        left += gb
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:.1f} GB", va="center", fontsize=8)
    ax.axvline(budget_gb, color="black", ls="--", label=f"{budget_gb:g} GB budget")
    ax.invert_yaxis()  # the first row on top, as listed
    ax.set(xlabel="memory (GB = 1e9 bytes)", title=title)
    ax.set_xlim(0, max(left.max(), budget_gb) * 1.18)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
