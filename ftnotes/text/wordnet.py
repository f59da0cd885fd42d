"""WordNet noun definitions by lexicographer category: the text task of notebook 10.

The shipped subset ``data/wordnet/`` (made by :mod:`ftnotes.text.wordnet_build` from WordNet
3.0's ``data.noun``; license notice in ``data/wordnet/LICENSE``) holds, for each category of
:data:`CATEGORIES`, fixed splits of synsets: ``train`` (110 per category), ``validation`` (40),
``test`` (150), and, in a separate file, the contest's hidden boards ``hidden_live`` and
``hidden_final`` (40 each; ``feeling``, the smallest category, has 407 usable synsets). Each row is one synset: its offset, category, lemma words and first
definition, e.g. ``animal`` / ``"a member of the genus Canis ..."``.

>>> texts, labels, names = load_definitions(ABSTRACT, "train")
>>> names[labels[0]], texts[0]   # doctest: +SKIP

Every read checks the file's sha256 against ``data/wordnet/manifest.json`` first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from pathlib import Path
from typing import NamedTuple

from ftnotes.checkpoints import DATA_DIR
from ftnotes.checks import check_int

ABSTRACT = ("act", "attribute", "cognition", "communication", "state", "feeling")
CONCRETE = ("animal", "plant", "food", "artifact")
CATEGORIES = ABSTRACT + CONCRETE + ("person", "body", "location", "substance")
PUBLIC_SPLITS = ("train", "validation", "test")
HIDDEN_SPLITS = ("hidden_live", "hidden_final")
SPLIT_SIZES = {"train": 110, "validation": 40, "test": 150, "hidden_live": 40, "hidden_final": 40}
FILES = {"public": "nouns.tsv", "hidden": "hidden.tsv", "pairs": "pairs.tsv",
         "license": "LICENSE", "manifest": "manifest.json"}  # fmt: skip
# lexnames(5WN): each lexicographer file's one-line description (the zero-shot label texts)
DESCRIPTIONS = {
    "act": "nouns denoting acts or actions",
    "attribute": "nouns denoting attributes of people and objects",
    "cognition": "nouns denoting cognitive processes and contents",
    "communication": "nouns denoting communicative processes and contents",
    "state": "nouns denoting stable states of affairs",
    "feeling": "nouns denoting feelings and emotions",
    "animal": "nouns denoting animals",
    "plant": "nouns denoting plants",
    "food": "nouns denoting foods and drinks",
    "artifact": "nouns denoting man-made objects",
    "person": "nouns denoting people",
    "body": "nouns denoting body parts",
    "location": "nouns denoting spatial position",
    "substance": "nouns denoting substances",
}
WORDNET_DIR = DATA_DIR / "wordnet"
BUILD_COMMAND = "python -m ftnotes.text.wordnet_build"

__all__ = ["ABSTRACT", "CONCRETE", "CATEGORIES", "DESCRIPTIONS", "Definitions", "load_definitions",
           "load_rows", "load_pairs", "load_hidden", "DataError"]  # fmt: skip


class DataError(RuntimeError):
    """The shipped WordNet subset is missing or does not match its manifest."""


class Definitions(NamedTuple):
    """``texts[i]`` is a definition of category ``label_names[labels[i]]``."""

    texts: list[str]
    labels: list[int]
    label_names: tuple[str, ...]


def _fail(msg: str) -> DataError:
    return DataError(f"{msg}. The subset ships with the repository (git checkout data/wordnet); "
                     f"rebuild it from Debian's wordnet-base with `{BUILD_COMMAND}`")


@functools.lru_cache(maxsize=8)
def _read(name: str, root: str) -> list[dict]:
    """The rows of ``root/name`` as dicts, after checking its sha256 against the manifest."""
    folder = Path(root)
    path, man = folder / name, folder / FILES["manifest"]
    if not man.is_file() or not path.is_file():
        raise _fail(f"{man if not man.is_file() else path} is missing")
    try:
        expected = json.loads(man.read_text(encoding="utf-8"))["files"][name]["sha256"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise _fail(f"{man} is unreadable or has no entry for {name} ({err!r})") from None
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != expected:
        raise _fail(f"{path} does not match its sha256 in {man} (edited or truncated?)")
    header, *lines = raw.decode("utf-8").splitlines()
    keys = header.split("\t")
    return [dict(zip(keys, line.split("\t"))) for line in lines]


def _check_categories(categories) -> tuple[str, ...]:
    if isinstance(categories, str) or not hasattr(categories, "__iter__"):
        raise ValueError(f"categories must be a list of names from {CATEGORIES}, "
                         f"got {categories!r}")
    cats = tuple(categories)
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"categories: unknown {unknown}; the shipped ones are {CATEGORIES}")
    if len(cats) < 2 or len(set(cats)) != len(cats):
        raise ValueError(f"categories must name at least 2 distinct categories, got {cats!r}")
    return cats


def load_rows(categories=ABSTRACT, split="train", root=None) -> list[dict]:
    """The rows (``offset``, ``category``, ``split``, ``lemmas``, ``definition``) of the public
    ``split`` for ``categories``, in file order (category, then synset offset)."""
    cats = _check_categories(categories)
    if split not in PUBLIC_SPLITS:
        hint = " (the hidden boards are read by the grader, load_hidden)" \
            if split in HIDDEN_SPLITS else ""
        raise ValueError(f"split must be one of {PUBLIC_SPLITS}, got {split!r}{hint}")
    rows = _read(FILES["public"], str(root or WORDNET_DIR))
    return [r for r in rows if r["split"] == split and r["category"] in cats]


def _to_definitions(rows, cats) -> Definitions:
    index = {c: i for i, c in enumerate(cats)}
    return Definitions([r["definition"] for r in rows], [index[r["category"]] for r in rows], cats)


def load_definitions(categories=ABSTRACT, split="train", per_class=None, seed=0,
                     root=None) -> Definitions:
    """``(texts, labels, label_names)`` of ``split`` for ``categories`` (label i is
    ``categories[i]``). ``per_class`` keeps the first k of each category in an order fixed by
    ``seed`` (nested: the 20-per-class set is inside the 40-per-class set); None keeps all."""
    cats = _check_categories(categories)
    rows = load_rows(cats, split, root)
    if per_class is not None:
        check_int("per_class", per_class, 1)
        check_int("seed", seed, 0)
        have = SPLIT_SIZES[split]
        if per_class > have:
            raise ValueError(f"per_class must be <= {have} (the {split} split's size per "
                             f"category), got {per_class}")
        keep = set()
        for c in cats:
            offsets = sorted(r["offset"] for r in rows if r["category"] == c)
            random.Random(f"{seed}:{c}").shuffle(offsets)
            keep.update(offsets[:per_class])
        rows = [r for r in rows if r["offset"] in keep]
    return _to_definitions(rows, cats)


def load_hidden(categories, board, root=None) -> Definitions:
    """The hidden board ``board`` ("hidden_live" or "hidden_final") of the contest task: for the
    grader, which keeps it out of the graded notebook's reach."""
    cats = _check_categories(categories)
    if board not in HIDDEN_SPLITS:
        raise ValueError(f"board must be one of {HIDDEN_SPLITS}, got {board!r}")
    rows = _read(FILES["hidden"], str(root or WORDNET_DIR))
    return _to_definitions([r for r in rows if r["split"] == board and r["category"] in cats], cats)


def load_pairs(categories=ABSTRACT, root=None) -> tuple[list[str], list[str], list[int]]:
    """Held-out definition pairs ``(texts_a, texts_b, related)`` of ``categories``: related = 1
    for a synset and its direct hypernym, 0 for two synsets of the same category that share no
    hypernym. None of these synsets is in any split of :func:`load_definitions`."""
    cats = _check_categories(categories)
    rows = [r for r in _read(FILES["pairs"], str(root or WORDNET_DIR)) if r["category"] in cats]
    return ([r["definition_a"] for r in rows], [r["definition_b"] for r in rows],
            [int(r["related"]) for r in rows])
