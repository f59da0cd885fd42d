"""Real text for the course: WordNet definitions (:mod:`~ftnotes.text.wordnet`, built by
:mod:`~ftnotes.text.wordnet_build`) and a real pretrained encoder (notebook 10)."""

from ftnotes.text.wordnet import (
    ABSTRACT,
    CATEGORIES,
    CONCRETE,
    DESCRIPTIONS,
    DataError,
    Definitions,
    load_definitions,
    load_hidden,
    load_pairs,
    load_rows,
)

__all__ = ["ABSTRACT", "CATEGORIES", "CONCRETE", "DESCRIPTIONS", "DataError", "Definitions",
           "load_definitions", "load_hidden", "load_pairs", "load_rows"]  # fmt: skip
