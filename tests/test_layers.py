"""The core layers import only downwards, in the order ARCHITECTURE.md states:
checks/utils -> data -> models -> pretrained -> training pieces -> train -> strategies ->
evaluate -> ledger. (The engine once imported the evaluation it sits below.)"""

import ast
from pathlib import Path

import pytest

import ftnotes

PKG = Path(ftnotes.__file__).parent
LAYERS = [
    ("checks",),
    ("utils",),
    ("glyphs", "strokes", "data"),
    ("models",),
    ("registry", "artifacts", "checkpoints", "hf"),  # pretrained models
    ("schedules", "optim", "memory", "divergence", "history", "fit_options"),
    ("train",),
    ("strategies",),
    ("evaluate",),
    ("ledger",),
]
LEVEL = {module: i for i, layer in enumerate(LAYERS) for module in layer}


def ftnotes_imports(module: str) -> set[str]:
    """The ftnotes modules (first name below the package) that ``module`` imports, anywhere in
    the file (function-level imports included)."""
    out = set()
    for node in ast.walk(ast.parse((PKG / f"{module}.py").read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ftnotes.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module == "ftnotes":  # from . import x / from .x import y
                out |= {node.module.split(".")[0]} if node.module and node.level else {
                    a.name for a in node.names}  # fmt: skip
            elif node.module and node.module.startswith("ftnotes."):
                out.add(node.module.split(".")[1])
    return out - {module}


@pytest.mark.parametrize("module", sorted(LEVEL))
def test_a_core_module_imports_only_its_own_or_lower_layers(module):
    for other in ftnotes_imports(module):
        assert other in LEVEL, f"{module} imports ftnotes.{other}, which is above the core"
        assert LEVEL[other] <= LEVEL[module], f"{module} imports ftnotes.{other}, a higher layer"


def test_the_engine_does_not_import_evaluation():
    assert not ftnotes_imports("train") & {"evaluate", "ledger", "recipes"}
    assert "train" in ftnotes_imports("evaluate")  # the validation pass comes from below
