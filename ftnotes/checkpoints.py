"""The pretrained checkpoints shipped in ``data/`` (loader; ``ftnotes.pretrain`` makes them).

``data/tinyvit_glyphs.pt`` holds the state dict of a :class:`~ftnotes.models.TinyViT` pretrained
on synthetic printed characters (:mod:`ftnotes.glyphs`) and stroke-drawn digits
(:mod:`ftnotes.strokes`); ``data/printed/`` holds the same model pretrained on the printed
characters only (:data:`PRINTED_WEIGHTS`); ``data/tinyvit_glyphs.json`` records how
it was made (config, classes, seed, command, sha256 of the weights, measured accuracies).
Loading checks the file against the manifest, so a truncated download, a hand-edited file or
weights from another architecture fail loudly with :class:`WeightsError` instead of giving a
silently wrong model. ``$FTNOTES_WEIGHTS`` points to another ``.pt`` file (its manifest is the
``.json`` next to it). Installed with ``pip install .`` (not editable), the package carries its
own copy of ``data/`` as ``ftnotes/_data`` and finds it there.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ftnotes.models import TinyViT, ViTConfig

WEIGHTS_NAME = "tinyvit_glyphs.pt"
_ROOT = Path(__file__).resolve().parents[1]
# A clone keeps the weights in the repository's top-level data/ (the design); a wheel carries a
# copy as the package data ftnotes/_data (pyproject maps data/ there). The clone's copy wins, so
# a regenerated data/ is used at once; pyproject.toml tells a clone from site-packages, which
# may hold some other distribution's data/ folder.
REPO_DATA_DIR = _ROOT / "data"
INSTALLED_DATA_DIR = Path(__file__).resolve().parent / "_data"
IN_CLONE = (_ROOT / "pyproject.toml").is_file() and REPO_DATA_DIR.is_dir()
DATA_DIR = REPO_DATA_DIR if IN_CLONE else INSTALLED_DATA_DIR
# The backbone pretrained on printed glyphs only (the shipped one until 2026-12-04; the shipped
# one now also learns stroke-drawn digits): the contest tasks whose story is a model that has never
# seen handwriting load it, ``load_pretrained(PRINTED_WEIGHTS)``.
PRINTED_WEIGHTS = DATA_DIR / "printed" / WEIGHTS_NAME
# Regenerating must not write into site-packages: an installed copy writes elsewhere and is
# pointed to with $FTNOTES_WEIGHTS.
USER_WEIGHTS_DIR = Path.home() / ".cache" / "ftnotes" / "weights"
REGENERATE_COMMAND = (
    "python -m ftnotes.pretrain"
    if IN_CLONE
    else f"python -m ftnotes.pretrain --out {USER_WEIGHTS_DIR}` and then "
    f"`export FTNOTES_WEIGHTS={USER_WEIGHTS_DIR / WEIGHTS_NAME}"
)


class WeightsError(RuntimeError):
    """The shipped weights are missing, corrupt or do not match the architecture."""


def _fail(msg: str) -> WeightsError:
    return WeightsError(f"{msg}. Regenerate the weights with `{REGENERATE_COMMAND}` (see README).")


def weights_path(path=None) -> Path:
    """The weights file: ``path``, else ``$FTNOTES_WEIGHTS``, else ``data/tinyvit_glyphs.pt``."""
    if path is None:
        path = os.environ.get("FTNOTES_WEIGHTS") or DATA_DIR / WEIGHTS_NAME
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be None, a str or a Path, got {path!r}")
    return Path(path)


def load_manifest(path=None) -> dict:
    """The JSON manifest next to the weights file (same name, ``.json``)."""
    manifest = weights_path(path).with_suffix(".json")
    if not manifest.is_file():
        raise _fail(f"manifest {manifest} is missing")
    try:
        data = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise _fail(f"manifest {manifest} is unreadable ({err})") from None
    if not isinstance(data, dict):
        raise _fail(f"manifest {manifest} must hold a JSON object, got a {type(data).__name__}")
    return data


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_files(folder: Path, recorded: dict, fail) -> None:
    """Every file named in ``recorded`` (``{name: sha256}``) exists in ``folder`` with that
    sha256; otherwise raises ``fail(message)`` (the caller's error, which names how to
    regenerate its folder)."""
    for name, sha in recorded.items():
        file = Path(folder) / name
        if not file.is_file():
            raise fail(f"{file} is missing")
        if sha256_file(file) != sha:
            raise fail(f"{file} is corrupt or was changed: its sha256 differs from the manifest's")


def load_pretrained(path=None, device=None) -> TinyViT:
    """The pretrained TinyViT in eval mode, with its glyph head (one output per glyph class).

    Raises :class:`WeightsError` if the file is missing, its sha256 differs from the manifest's,
    or its tensors do not fit the architecture the manifest describes.
    """
    path = weights_path(path)
    if not path.is_file():
        raise _fail(f"pretrained weights {path} are missing")
    manifest = load_manifest(path)
    if sha256_file(path) != manifest.get("sha256"):
        raise _fail(f"{path} is corrupt or was changed: its sha256 differs from the manifest's")
    try:
        cfg = ViTConfig(**manifest["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise _fail(f"manifest of {path} has no valid config ({err})") from None
    model = TinyViT(cfg)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as err:  # unpickling and shape errors come in many types
        msg = str(err).splitlines()[0][:300]
        raise _fail(f"{path} does not match the TinyViT architecture {cfg} ({msg})") from None
    if device is not None:
        model = model.to(device)
    return model.eval()
