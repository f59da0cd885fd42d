"""Curves over training: losses and accuracies per epoch (ours and ``Trainer``'s), learning-rate
schedules and their runs, the rate of each layer, the grading history of a contest task.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ftnotes.schedules import schedule_values

SIZE = (6, 3.5)  # (width, height) in inches of a one-panel figure


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


def plot_schedule_runs(histories: dict, title: str | None = None):
    """Runs that differ only in their learning-rate schedule, side by side: the rate per step
    (left), the training loss per step (middle), the validation accuracy per epoch (right).

    ``histories``: run name -> :class:`~ftnotes.train.History` (``lr``, ``loss`` and ``val_acc``
    filled). One legend for all three panels, below them: every panel draws the same runs in
    the same colours. Returns the figure.
    """
    if not isinstance(histories, dict) or not histories:
        raise ValueError(f"histories must be a non-empty dict of name -> History, got {histories!r:.80}")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for name, h in histories.items():
        (line,) = axes[0].plot(h.lr, label=name)
        axes[1].plot(h.loss, alpha=0.8, color=line.get_color())
        axes[2].plot(range(1, len(h.val_acc) + 1), h.val_acc, "o-", ms=3, color=line.get_color())
    axes[0].set(xlabel="step", ylabel="learning rate", title="the schedules")
    axes[1].set(xlabel="step", ylabel="training loss (per batch)", title="training loss")
    axes[2].set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1), title="validation")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(histories),
               fontsize=8, frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))  # the bottom strip holds the legend
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


def plot_grade_history(runs, tasks=None):
    """Points of every graded run per task, in order; runs without a score as red crosses at 0.

    ``runs``: report dicts, oldest first (``ftnotes.grade.read_history()``); ``tasks``: which
    tasks, in which order (default: those in ``runs``). Returns the figure.
    """
    tasks = list(tasks) if tasks is not None else list(dict.fromkeys(r["task"] for r in runs))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    longest = 1
    for name in tasks:
        mine = [r for r in runs if r["task"] == name]
        if not mine:
            continue
        xs = range(1, len(mine) + 1)
        longest = max(longest, len(mine))
        ax.plot(xs, [r["points"] if r["points"] is not None else 0 for r in mine], "o-",
                label=name)  # fmt: skip
        fails = [(i, 0) for i, r in zip(xs, mine) if r["points"] is None]
        if fails:
            ax.plot(*zip(*fails), "x", color="tab:red", ms=9)
    ax.axhline(100, color="gray", ls="--", lw=1, label="reference = 100")
    if longest <= 20:  # MaxNLocator falls back to fractions below two integers in view
        ax.set_xticks(range(1, longest + 1))
    else:
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlim(0.5, longest + 0.5)
    n = len(runs)
    ax.set(xlabel="graded run of that task", ylabel="points (baseline = 0)",
           title=f"grading history ({n} run{'s' if n != 1 else ''}; red x: no score)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
