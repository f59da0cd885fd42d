"""Notebooks and the exercise package agree: known ids, and the stub cell is the package's stub."""

import json
import pathlib
import re

import pytest

from ftnotes.exercises import list_exercises, list_quizzes
from ftnotes.exercises.core import get

ROOT = pathlib.Path(__file__).resolve().parents[1]
CALL = re.compile(r"\b(check|hint|show_solution|stub|quiz|answer|show_answer)\(\s*['\"]([^'\"]+)")


def uses():
    """(notebook name, function, id, the notebook's code) for every exercise call in notebooks/."""
    found = []
    for path in sorted(ROOT.glob("notebooks/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        found += [(path.name, fn, ex_id, code) for fn, ex_id in CALL.findall(code)]
    return found


USES = uses()


def normalise(text):
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


@pytest.mark.skipif(not USES, reason="no notebook calls ftnotes.exercises yet")
@pytest.mark.parametrize("name, fn, ex_id, code", USES, ids=lambda v: str(v)[:30])
def test_notebook_uses_known_ids_and_the_package_stub(name, fn, ex_id, code):
    quiz_fns = ("quiz", "answer", "show_answer")
    known = list_quizzes() if fn in quiz_fns else list(list_exercises())
    assert ex_id in known, f"{name}: {fn}({ex_id!r}) is not a known id; valid: {known}"
    if fn == "check":
        assert normalise(get(ex_id).stub) in normalise(code), (
            f"{name}: the cell before check({ex_id!r}) should hold the stub that "
            f"ftnotes.exercises.stub({ex_id!r}) prints, unchanged"
        )
