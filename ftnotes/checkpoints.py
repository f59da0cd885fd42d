"""The shipped TinyViT backbones (``ftnotes.pretrain`` makes them): the names notebooks use.

``data/tinyvit_glyphs.pt`` holds the state dict of a :class:`~ftnotes.models.TinyViT` pretrained
on synthetic printed characters (:mod:`ftnotes.glyphs`) and stroke-drawn digits
(:mod:`ftnotes.strokes`); ``data/printed/`` holds the same model pretrained on the printed
characters only (:data:`PRINTED_WEIGHTS`); ``data/tinyvit_glyphs.json`` records how it was made
(config, classes, seed, command, sha256 of the weights, measured accuracies). Both are declared
in :mod:`ftnotes.registry` (``tinyvit``, ``tinyvit-printed``) and checked by the one path of
:mod:`ftnotes.artifacts`: a truncated download, a hand-edited file or weights of another
architecture fail loudly with :class:`WeightsError` (naming the file and the command that makes
it again) instead of giving a silently wrong model. ``$FTNOTES_WEIGHTS`` points to another
``.pt`` file (its manifest is the ``.json`` next to it). Installed with ``pip install .`` (not
editable), the package carries its own copy of ``data/`` as ``ftnotes/_data`` (``setup.py``
maps it there) and finds it there.
"""

from __future__ import annotations

import os
from pathlib import Path

from ftnotes import artifacts
from ftnotes.artifacts import (  # noqa: F401  (public names of this module since the start)
    DATA_DIR,
    IN_CLONE,
    INSTALLED_DATA_DIR,
    REPO_DATA_DIR,
    WeightsError,
    sha256_file,
)

WEIGHTS_NAME = "tinyvit_glyphs.pt"
# The backbone pretrained on printed glyphs only (the shipped one until 2026-12-04; the shipped
# one now also learns stroke-drawn digits): the contest tasks whose story is a model that has never
# seen handwriting load it, ``load_pretrained(PRINTED_WEIGHTS)``.
PRINTED_WEIGHTS = artifacts.locate("tinyvit-printed")
# Regenerating must not write into site-packages: an installed copy writes here and is pointed
# to with $FTNOTES_WEIGHTS (the command in REGENERATE_COMMAND says so).
USER_WEIGHTS_DIR = artifacts.cache_dir() / "weights"
REGENERATE_COMMAND = artifacts.fix_command("tinyvit")


def _name(path) -> str:
    """``tinyvit-printed`` for the glyphs-only file (its errors name its own command), else
    ``tinyvit``."""
    if path is not None and isinstance(path, (str, os.PathLike)):
        printed = artifacts.locate("tinyvit-printed")
        if Path(path).resolve() == printed.resolve():
            return "tinyvit-printed"
    return "tinyvit"


def weights_path(path=None) -> Path:
    """The weights file: ``path``, else ``$FTNOTES_WEIGHTS``, else ``data/tinyvit_glyphs.pt``."""
    return artifacts.locate("tinyvit", path)


def load_manifest(path=None) -> dict:
    """The JSON manifest next to the weights file (same name, ``.json``), its fields checked."""
    return artifacts.read_manifest(_name(path), path)


def load_pretrained(path=None, device=None):
    """The pretrained TinyViT in eval mode, with its glyph head (one output per glyph class).

    Raises :class:`WeightsError` if the file is missing, its sha256 differs from the manifest's,
    or its tensors do not fit the architecture the manifest and the declaration describe.
    """
    return artifacts.load(_name(path), path, device=device)
