"""Every dataset of the notebooks as a :class:`Task` with fixed train/validation/test splits.

Images are float32 (N, 1, 8, 8) in [0, 1] (UCI counts 0-16 divided by 16), labels int64 (N,).

* ``glyphs``: the source task, synthetic printed characters (:mod:`ftnotes.glyphs`).
* ``digits``: the near target, scikit-learn's bundled UCI handwritten digits (1,797 images,
  Alpaydin & Kaynak 1998), no download.
* ``far``: the far target, "permuted digits": the same digits with one fixed random pixel
  permutation (the Permuted-MNIST idea, Goodfellow et al. 2013). It carries exactly the same
  information and labels as ``digits``, but none of the spatial structure the backbone learned
  from printed characters and pen-drawn digits, so any change in the full-FT-vs-frozen gap is due
  purely to the distance from pretraining.
* ``mnist``, ``fashion_mnist``: torchvision's MNIST / Fashion-MNIST brought to the UCI 8x8
  format (online once; afterwards read from ``$FTNOTES_DATA_DIR`` or ``~/.cache/ftnotes``).

``labels_per_class`` keeps only the first k examples per class of a fixed per-class order of the
training split, so the subsets are nested (the 5-per-class set is inside the 10-per-class set).
Asking for more than a class has keeps all of that class and warns.

The checks of what a loop or a scorer is handed (:func:`as_tensors`, :func:`check_images`,
:func:`check_labels`) live here too, beside the data they describe: the training engine and
the evaluation both use them.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ftnotes.checks import check_choice, check_int, is_int
from ftnotes.glyphs import GLYPH_CLASSES, render_glyphs, to_uci

DIGIT_CLASSES: tuple[str, ...] = tuple("0123456789")
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
TASK_NAMES = ("glyphs", "digits", "far", "mnist", "fashion_mnist")

SPLIT_SEED = 0  # the digits split and the far permutation never depend on the user's seed
GLYPH_SIZES = {"train": 6_000, "val": 1_000, "test": 4_000}
GLYPH_SEEDS = {"train": 1, "val": 2, "test": 3}  # pretraining streams use seeds >= 1000
MNIST_SIZES = {"train": 50_000, "val": 10_000}  # carved from the official 60k training set

__all__ = ["GLYPH_CLASSES", "DIGIT_CLASSES", "Task", "load_task", "TASK_NAMES", "as_tensors",
           "check_images", "check_labels"]  # fmt: skip


@dataclass
class Task:
    """A classification task: three fixed splits of (X (N,1,8,8) float32, y (N,) int64)."""

    name: str
    classes: tuple[str, ...]
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    description: str = field(default="")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(getattr(self, s))}" for s in ("train", "val", "test"))
        return f"Task({self.name!r}, {self.num_classes} classes, {sizes})"


def as_tensors(data, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``TensorDataset`` or ``(X, y)`` -> ``(X, y)`` tensors; X (N, ...) float, y (N,) int64."""
    if isinstance(data, TensorDataset):
        tensors = data.tensors
    elif isinstance(data, (tuple, list)):
        tensors = tuple(data)
    else:
        raise ValueError(
            f"{name} must be a TensorDataset or an (X, y) tuple, got {type(data).__name__}"
        )
    if len(tensors) != 2:
        raise ValueError(f"{name} must hold exactly two tensors (X, y), got {len(tensors)}")
    X, y = (torch.as_tensor(t) for t in tensors)
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{name}: X and y need the same non-zero length, got {len(X)}, {len(y)}")
    if y.dtype != torch.long:
        raise ValueError(f"{name}: labels y must be int64 (torch.long), got {y.dtype}")
    X = X.float()
    check_images(X, name)
    if y.min() < 0:
        raise ValueError(f"{name}: labels y must be class indices >= 0, got {int(y.min())}")
    return X, y


def check_images(X: torch.Tensor, name: str = "data") -> None:
    """ValueError unless X is finite and, for images (N, C, H, W) or (N, H, W), in [0, 1].

    NaN pixels would otherwise be predicted silently (or blamed on the learning rate by ``fit``),
    and UCI counts 0-16 that were never divided by 16 train a model on another scale.
    """
    if not torch.isfinite(X).all():
        bad = "NaN" if torch.isnan(X).any() else "inf"
        raise ValueError(f"{name}: input contains {bad} pixel values; images must be finite")
    if X.dim() < 3 or not X.numel():  # (N, F) may be features of a frozen body: any scale
        return
    lo, hi = X.min().item(), X.max().item()
    if lo < -1e-6 or hi > 1 + 1e-6:
        hint = " (UCI counts 0-16? divide by 16)" if hi <= 16 + 1e-6 and hi > 1 else ""
        raise ValueError(
            f"{name}: pixel values must lie in [0, 1], got min {lo:.3g}, max {hi:.3g}{hint}"
        )


def check_labels(y: torch.Tensor, num_classes: int, name: str = "data") -> None:
    """ValueError unless every label is a class index of a ``num_classes``-way model."""
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{name}: labels must lie in 0..{num_classes - 1} (the model has {num_classes} "
            f"outputs), got labels from {int(y.min())} to {int(y.max())}"
        )


def _check_labels_per_class(labels_per_class):
    if labels_per_class is None or labels_per_class == "all":
        return None
    if isinstance(labels_per_class, np.integer):
        labels_per_class = int(labels_per_class)
    if not (is_int(labels_per_class) and labels_per_class >= 1):
        raise ValueError(
            f"labels_per_class must be None, 'all' or an int >= 1, got {labels_per_class!r}"
        )
    return labels_per_class


def stratified_split(y: np.ndarray, fractions=(0.6, 0.2, 0.2), seed: int = SPLIT_SEED):
    """Indices (train, val, test) with each class split in ``fractions``; fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_train = round(fractions[0] * len(idx))
        n_val = round(fractions[1] * len(idx))
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train : n_train + n_val])
        parts[2].append(idx[n_train + n_val :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def subset_per_class(y: np.ndarray, k: int | None, seed: int = 0, name: str = "task"):
    """Indices of the first ``k`` examples of every class in a fixed per-class order.

    The order depends only on ``seed``, so the subsets for growing ``k`` are nested.
    """
    if k is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if k > len(idx):
            warnings.warn(
                f"{name}: labels_per_class={k} but class {c} has only {len(idx)} training "
                "examples; using all of them",
                stacklevel=3,
            )
        keep.append(idx[:k])
    return np.sort(np.concatenate(keep))


def _dataset(x, y) -> TensorDataset:
    x = torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8)
    return TensorDataset(x, torch.as_tensor(y, dtype=torch.int64))


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


@functools.lru_cache(maxsize=1)
def far_permutation() -> torch.Tensor:
    """The fixed pixel permutation of the ``far`` task: (64,) int64 indices."""
    return torch.randperm(64, generator=torch.Generator().manual_seed(SPLIT_SEED + 2013))


def _from_arrays(name, classes, x, y, splits, labels_per_class, seed, description) -> Task:
    tr, va, te = splits
    tr = tr[subset_per_class(y[tr], labels_per_class, seed, name)]
    sets = [_dataset(x[i], y[i]) for i in (tr, va, te)]
    return Task(name, classes, *sets, description=description)


def _digits_task(name: str, labels_per_class, seed: int) -> Task:
    x, y = _digits_arrays()
    splits = stratified_split(y)
    desc = "UCI handwritten digits (scikit-learn load_digits), fixed stratified 60/20/20 split"
    if name == "far":
        x = x.reshape(-1, 64)[:, far_permutation().numpy()].reshape(-1, 8, 8)
        desc = "permuted digits: the digits with one fixed pixel permutation (far from glyphs)"
    return _from_arrays(name, DIGIT_CLASSES, x, y, splits, labels_per_class, seed, desc)


@functools.lru_cache(maxsize=3)
def glyph_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One fixed split of the glyph task, (X, y); the test split alone is fast to draw."""
    check_choice("split", split, tuple(GLYPH_SIZES))
    return render_glyphs(GLYPH_SIZES[split], seed=GLYPH_SEEDS[split])


def _glyphs_task(labels_per_class, seed: int) -> Task:
    sets = {s: glyph_split(s) for s in GLYPH_SIZES}
    x_tr, y_tr = sets["train"]
    keep = torch.as_tensor(subset_per_class(y_tr.numpy(), labels_per_class, seed, "glyphs"))
    train = TensorDataset(x_tr[keep], y_tr[keep])
    desc = "synthetic printed characters rendered from matplotlib's fonts (pretraining source)"
    return Task("glyphs", GLYPH_CLASSES, train, _dataset(*sets["val"]), _dataset(*sets["test"]),
                description=desc)  # fmt: skip


def data_root() -> Path:
    """Where torchvision datasets are stored: ``$FTNOTES_DATA_DIR`` or ``~/.cache/ftnotes``."""
    return Path(os.environ.get("FTNOTES_DATA_DIR", Path.home() / ".cache" / "ftnotes"))


def mnist_to_uci(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(N, 28, 28) uint8 or float images -> UCI format (N, 1, 8, 8) in [0, 1].

    Binarise, scale the bounding box (aspect kept) to fill a 32x32 bitmap, count 4x4 blocks.
    """
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    return to_uci((x > threshold).float().unsqueeze(1))


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """Can we open a TCP connection to the host of ``url``? (so offline fails in seconds)"""
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    try:
        socket.create_connection((u.hostname, u.port or (443 if u.scheme == "https" else 80)),
                                 timeout=timeout).close()  # fmt: skip
        return True
    except OSError:
        return False


def _torchvision_task(name, labels_per_class, seed, root=None, download=True) -> Task:
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    root = Path(root) if root is not None else data_root()
    raw = root / cls.__name__ / "raw"
    try:  # download=False first: no network access when the files are already there
        parts = [cls(str(root), train=t, download=False) for t in (True, False)]
    except RuntimeError:
        parts = None
    if parts is None and download and _reachable(cls.mirrors[0]):
        parts = [cls(str(root), train=t, download=True) for t in (True, False)]
    if parts is None:
        raise RuntimeError(
            f"{name}: the dataset is not in {raw} and cannot be downloaded now (offline, or "
            f"download=False). Run load_task({name!r}) once with internet access, or copy the "
            f"four idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) into {raw}; "
            "set FTNOTES_DATA_DIR to use another folder."
        )
    x_all = torch.cat([mnist_to_uci(p.data) for p in parts]).numpy()
    y_all = torch.cat([p.targets for p in parts]).numpy()
    n_train = len(parts[0])
    order = np.random.default_rng(SPLIT_SEED).permutation(n_train)
    n_val = min(MNIST_SIZES["val"], n_train // 6)
    splits = (np.sort(order[n_val:]), np.sort(order[:n_val]), np.arange(n_train, len(y_all)))
    classes = DIGIT_CLASSES if name == "mnist" else FASHION_CLASSES
    desc = f"torchvision {cls.__name__} in the UCI 8x8 format"
    return _from_arrays(name, classes, x_all, y_all, splits, labels_per_class, seed, desc)


def load_task(name="digits", labels_per_class=None, seed=0, root=None, download=True) -> Task:
    """Load a task by name (one of :data:`TASK_NAMES`).

    ``labels_per_class``: None / "all" for the whole training split, or an int k >= 1 for the
    first k training examples of each class (nested across k; ``seed`` picks the order).
    Validation and test splits never change. ``root`` overrides :func:`data_root` for
    ``mnist`` / ``fashion_mnist``; with ``download=False`` they never touch the network.
    """
    check_choice("name", name, TASK_NAMES)
    k = _check_labels_per_class(labels_per_class)
    check_int("seed", seed, 0)
    if name == "glyphs":
        return _glyphs_task(k, seed)
    if name in ("digits", "far"):
        return _digits_task(name, k, seed)
    return _torchvision_task(name, k, seed, root, download)
