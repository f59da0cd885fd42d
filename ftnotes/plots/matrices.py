"""Pictures of arrays: 8x8 images in a grid, a confusion matrix, the singular-value spectrum of a
weight update ΔW.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ftnotes.checks import check_int
from ftnotes.plots.curves import SIZE


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
