"""Notebooks in git stay output-free and declare a python3 kernel; the device/seed helpers work."""

import json
import pathlib
import subprocess

import pytest
import torch

from ftnotes.utils import get_device, set_seed

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tracked_notebooks():
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "*.ipynb"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    found = [ROOT / p for p in out] or sorted(ROOT.glob("notebooks/*.ipynb"))
    return [p for p in found if p.is_file()]


NOTEBOOKS = tracked_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_output_free(path):
    nb = json.loads(path.read_text())
    dirty = [
        i for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]  # fmt: skip
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `nbstripout {path}`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_declares_python3_kernel(path):
    spec = json.loads(path.read_text())["metadata"].get("kernelspec", {})
    assert spec.get("name") == "python3", f"{path.name}: kernelspec is {spec!r}, want name python3"


def test_set_seed_reproduces_torch_draws():
    set_seed(123)
    a = torch.rand(3)
    set_seed(123)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="seed"):
        set_seed(-1)


def test_get_device():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device().type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="device"):
        get_device("tpu")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_pins_threads_by_the_course_rule_in_its_import_cell(path):
    """One rule (ftnotes.utils.pin_threads: 1, or $FTNOTES_THREADS), called where the notebook
    first imports torch, before any work; notebook 07 once pinned nothing, and its Trainer runs
    took 23x longer with one busy core."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    first = next("".join(c["source"]) for c in cells if "import torch" in "".join(c["source"]))
    assert "pin_threads()" in first, f"{path.name}: the cell that imports torch must pin threads"
    for i, cell in enumerate(cells):
        assert "set_num_threads" not in "".join(cell["source"]), (
            f"{path.name}: code cell {i} sets torch's threads by hand; use pin_threads()"
        )


def test_every_module_stays_within_400_lines():
    """The course's style rule: a module per idea, at most 400 lines (a longer one holds two)."""
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / "ftnotes").rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > 400}  # fmt: skip
    assert not long, f"modules over 400 lines: {long}"
