"""Every matplotlib figure of the notebooks, in one place.

Each function builds a figure and returns it without calling ``plt.show()``: in a notebook the
returned figure displays itself; in a script, save it with ``fig.savefig(...)``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .checks import check_choice, check_int, check_number
from .schedules import schedule_values

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


COST_AXES = {"trainable_params": "trainable parameters (log scale)",
             "train_seconds": "training time (s)"}
Y_LABELS = {"target_acc": "target test accuracy", "source_acc": "source retention (glyph accuracy)"}
REFERENCE_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))


def _field(row, key: str, what: str):
    """``row[key]`` for a dict, else ``row.key`` (a RunRecord or any object with that field)."""
    value = row.get(key) if isinstance(row, dict) else getattr(row, key, None)
    if value is None:
        raise ValueError(f"{what} must have a {key!r} value, got {row!r:.120}")
    return value


def _series(runs) -> dict:
    """``runs`` as label -> list of rows: a Ledger or a list is one unlabelled series."""
    if isinstance(runs, dict):
        series = {label: list(getattr(rows, "records", rows)) for label, rows in runs.items()}
    else:
        series = {None: list(getattr(runs, "records", runs))}
    if not any(series.values()):
        raise ValueError(
            "runs must hold at least one run (a Ledger, a list of RunRecords or dicts, or a "
            f"dict label -> such a list), got {runs!r:.80}"
        )
    return series


def _run_named(name: str, by_name: dict, what: str):
    if name not in by_name:
        raise ValueError(f"{what}: no run named {name!r} in runs ({list(by_name)})")
    return by_name[name]


def _reference_lines(references, by_name: dict, y: str) -> tuple[dict, set]:
    """``plot_comparison``'s ``references`` as (legend label -> y value, names of the runs in
    ``runs`` drawn as a line instead of a point)."""
    lines, ref_names = {}, set()
    if isinstance(references, dict):
        lines = {str(k): v for k, v in references.items()}
    else:
        if isinstance(references, str) or not isinstance(references, (list, tuple, set)):
            references = [references]
        for ref in references:
            if isinstance(ref, str):
                ref_names.add(ref)
                ref = _run_named(ref, by_name, "references")
            name = _field(ref, "name", "each reference")
            count = _field(ref, "trainable_params", "each reference")
            lines[f"{name} ({count:,} trained)"] = _field(ref, y, "each reference")
    for label, v in lines.items():
        check_number(f"references[{label!r}]", v)
    return lines, ref_names


def plot_comparison(runs, x: str = "trainable_params", y: str = "target_acc", *, references=(),
                    highlight=None, connect: bool = False, annotate: bool = True, title=None,
                    ylabel=None, ax=None):  # fmt: skip
    """Accuracy vs trainable parameters (log x) or vs training time: one point a run, reference
    runs as horizontal lines, the run you care about as a star. Returns the figure.

    ``runs``: a ``Ledger``, a list of ``RunRecord`` (or of dicts / objects with ``name``, ``x``
    and ``y`` fields), or a dict label -> such a list: one colour and legend entry per series.
    ``references``: horizontal lines at a run's ``y``: names of runs in ``runs`` (drawn as a
    line instead of a point), RunRecord-like rows (labelled with their trainable count), or a
    dict label -> value. ``highlight``: the run to star, a name in ``runs`` or a row (e.g. the
    run you just trained), labelled "your run: name". ``connect``: join each series' points in
    x order (a sweep). ``annotate``: write each point's name next to it. ``ax``: draw into
    this axes instead of a new figure.
    """
    check_choice("x", x, tuple(COST_AXES))
    series = _series(runs)
    by_name = {_field(r, "name", "each run"): r for rows in series.values() for r in rows}
    lines, ref_names = _reference_lines(references, by_name, y)
    if isinstance(highlight, str):
        highlight = _run_named(highlight, by_name, "highlight")

    fig, ax = plt.subplots(figsize=SIZE) if ax is None else (ax.figure, ax)
    xs_all = []
    for label, rows in series.items():
        rows = [r for r in rows if _field(r, "name", "each run") not in ref_names]
        if not rows:
            continue
        pts = sorted(((_field(r, x, "each run"), _field(r, y, "each run"), r) for r in rows),
                     key=lambda p: p[0])  # fmt: skip
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        xs_all += xs
        style = "o-" if connect else "o"
        ax.plot(xs, ys, style, ms=6, alpha=0.8, label=label)
        if annotate:
            for px, py, r in pts:
                ax.annotate(str(_field(r, "name", "each run")), (px, py), fontsize=8,
                            textcoords="offset points", xytext=(4, 4))  # fmt: skip
    for (label, v), ls in zip(lines.items(), REFERENCE_STYLES * len(lines)):
        ax.axhline(v, ls=ls, color="gray", lw=1.2, label=label)
    if highlight is not None:
        hx, hy = _field(highlight, x, "highlight"), _field(highlight, y, "highlight")
        xs_all.append(hx)
        ax.scatter([hx], [hy], marker="*", s=250, color="tab:red", zorder=3,
                   label=f"your run: {_field(highlight, 'name', 'highlight')}")  # fmt: skip
    if x == "trainable_params":
        ax.set_xscale("log")
        ticks = sorted(set(xs_all))
        if 0 < len(ticks) <= 8:  # the exact counts, instead of crowded log ticks
            ax.minorticks_off()
            ax.set_xticks(ticks, [f"{t:,}" for t in ticks], rotation=30, fontsize=8)
    ylabel = ylabel or Y_LABELS.get(y, y.replace("_", " "))
    cost = "trainable parameters" if x == "trainable_params" else "training time"
    ax.set(xlabel=COST_AXES[x], ylabel=ylabel, title=title or f"{ylabel} vs {cost}")
    ax.margins(x=0.2, y=0.15)  # room for the labels of the outermost points
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_delta_spectrum(spectra, *, mean: bool = False, title=None, ax=None):
    """Singular values of weight updates ΔW, each divided by its largest, one line a layer.

    ``spectra``: dict layer name -> 1-D singular values (largest first, e.g.
    ``torch.linalg.svdvals(layer.get_delta_weight())[:r]``). ``mean``: one line, the mean over
    the layers (all the same length). A low-rank update shows as a fast drop. Returns the figure.
    """
    if not isinstance(spectra, dict) or not spectra:
        raise ValueError(f"spectra must be a non-empty dict of name -> singular values, got "
                         f"{spectra!r:.80}")  # fmt: skip
    normed = {}
    for name, s in spectra.items():
        s = torch.as_tensor(s).detach().cpu().double()
        if s.ndim != 1 or not len(s) or not torch.isfinite(s).all():
            raise ValueError(f"spectra[{name!r}] must be a 1-D finite tensor, got shape "
                             f"{tuple(s.shape)}")  # fmt: skip
        if s[0] <= 0:
            raise ValueError(f"spectra[{name!r}] is all zeros (ΔW = 0: an untrained update?)")
        normed[name] = (s / s[0]).numpy()
    fig, ax = plt.subplots(figsize=SIZE) if ax is None else (ax.figure, ax)
    if mean:
        if len({len(s) for s in normed.values()}) != 1:
            raise ValueError("spectra must all have the same length for mean=True")
        s = np.mean(list(normed.values()), axis=0)
        ax.plot(range(1, len(s) + 1), s, "o-", label=f"mean over {len(normed)} layers")
    else:
        for name, s in normed.items():
            ax.plot(range(1, len(s) + 1), s, "o-", ms=3, label=name)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    width = max(len(s) for s in normed.values())
    ylabel = "singular value / largest" + (" (mean over layers)" if mean else "")
    ax.set(xlabel="direction (singular value index)", ylabel=ylabel,
           title=title or f"spectrum of the learned ΔW, {width} directions")  # fmt: skip
    ax.legend(fontsize=7, ncol=1 if mean else 2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_old_new_runs(results, time_limit_s: float):
    """Left: old classes kept, new classes learned and the score of each scored run (grouped
    bars); right: each run's training time against the limit ``time_limit_s`` (seconds).

    ``results``: :class:`ftnotes.contest.Result` rows of an old + new task (``name``,
    ``parts["acc_old"]``, ``parts["acc_new"]``, ``score``, ``seconds``), e.g. from
    ``contest.toolbox.run_solution``; unscored ones (crashed, not attempted) are left out.
    Returns the figure.
    """
    check_number("time_limit_s", time_limit_s, 0, strict=True)  # seconds
    runs = [r for r in results if getattr(r, "score", None) is not None]
    if not runs:
        raise ValueError("results must hold at least one scored contest Result")
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(12, 3.8), width_ratios=(2, 1))
    names, x = [r.name for r in runs], np.arange(len(runs))
    bars = (("acc_old", "old classes kept (glyphs)"), ("acc_new", "new classes (digits)"),
            ("score", "score = ½ old + ½ new"))  # fmt: skip
    for i, (key, label) in enumerate(bars):
        values = [r.score if key == "score" else r.parts[key] for r in runs]
        ax.bar(x + (i - 1) * 0.27, values, 0.27, label=label)
    ax.set_xticks(x, names)
    ax.set(ylim=(0, 1.2), ylabel="test accuracy / score", title="what each run keeps and learns")
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax_t.barh(x, [r.seconds for r in runs], color="tab:gray")
    ax_t.axvline(time_limit_s, color="tab:red", ls="--", label=f"limit {time_limit_s:.0f} s")
    ax_t.set_yticks(x, names)
    ax_t.set(xlabel="training time (s)", title="time used")
    ax_t.legend(fontsize=8)
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
    """Stacked horizontal bars of the memory terms (GB) per setup, with a budget line.

    ``rows`` maps a label to a dict of term -> bytes (``Estimate.terms()``); None counts as 0.
    A term below 0.1% of the largest total in every row (a classifier's loss backward) gets no
    bar and no legend entry. The legend sits outside the axes, so it never hides a bar or the
    budget line.
    """
    if not rows:
        raise ValueError("rows must be a non-empty dict of label -> {term: bytes}, got {}")
    check_number("budget_gb", budget_gb, 0, strict=True)
    labels = list(rows)
    terms = list(dict.fromkeys(t for r in rows.values() for t in r))
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    if len(terms) > len(colours):
        raise ValueError(f"rows must have at most {len(colours)} terms, got {terms}")
    gbs = {t: np.array([(rows[lb].get(t) or 0) / 1e9 for lb in labels]) for t in terms}
    largest = max(sum(gbs.values()).max(), 1e-12)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.4))
    left = np.zeros(len(labels))
    for term, colour in zip(terms, colours):
        if gbs[term].max() >= 1e-3 * largest:
            ax.barh(labels, gbs[term], left=left, color=colour, label=term)
        left += gbs[term]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:.1f} GB", va="center", fontsize=8)
    ax.axvline(budget_gb, color="black", ls="--", label=f"{budget_gb:g} GB budget")
    ax.invert_yaxis()  # the first row on top, as listed
    ax.set(xlabel="memory (GB = 1e9 bytes)", title=title)
    ax.set_xlim(0, max(left.max(), budget_gb) * 1.18)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig
