"""Runs side by side: accuracy against cost (trainable parameters or time) with reference lines,
old-vs-new classes of a contest task, the memory terms of setups against a budget.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ftnotes.checks import check_choice, check_number
from ftnotes.plots.curves import SIZE

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
    hide_crowded_xtick_labels(ax)
    return fig


def hide_crowded_xtick_labels(ax, pad_px: float = 3.0) -> list[str]:
    """Hide each x tick label that would touch the last one kept, left to right; the ticks stay.

    Exact counts as ticks on a log axis can sit close together (an IA3 run with 1,258 trainable
    numbers next to an adapter with 1,650): their labels would print over each other. Measured
    on the drawn labels, so it holds for any figure size and font. Returns the hidden labels.
    """
    renderer = ax.figure.canvas.get_renderer()
    hidden, last = [], None
    labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    for label in sorted(labels, key=lambda t: t.get_window_extent(renderer).x0):
        box = label.get_window_extent(renderer)
        if last is not None and box.x0 < last.x1 + pad_px:
            label.set_visible(False)
            hidden.append(label.get_text())
        else:
            last = box
    return hidden


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
