"""Every widget panel of the notebooks, called at the extremes of its controls and 10x beyond.

A student drags sliders to their ends and types values outside them; a panel function must then
either run or stop with a clear ``ValueError`` (which the panel shows as a message), never with
another exception (a ``ZeroDivisionError``, a plotting shape error, ``None + 1``).

How: the notebook runs in a kernel (nbclient) with ``panel`` replaced right after the imports by
a recorder that keeps ``(fn, controls)`` and then builds the real panel. A last cell calls each
recorded ``fn`` with one control at a time set to each extreme (the others at their defaults)
and reports, as JSON, every call that raised something other than a ``ValueError``. The panel
functions stay where the notebooks define them: one place per piece of logic.

About 1-2 minutes per notebook on one thread (the notebook itself plus the extreme runs).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient


def notebooks_with_panels() -> list[Path]:
    """Every notebook whose code calls ``panel(``: found, not listed by hand."""
    found = []
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        if any("panel(" in "".join(c["source"]) for c in cells if c["cell_type"] == "code"):
            found.append(path)
    return found


NOTEBOOKS = notebooks_with_panels()

RECORDER = """
import ftnotes.widgets as _fw
_PANELS = []
def panel(fn, controls, **kwargs):
    _PANELS.append((fn, controls))
    return _fw.panel(fn, controls, **kwargs)
"""

PROBE = r'''
import json as _json, math as _math, traceback as _tb
import ipywidgets as _w
import matplotlib.pyplot as _plt

def _extremes(c):
    """The values a student can reach (the ends, every option) and 10x beyond the ends."""
    if isinstance(c, _w.FloatLogSlider):
        lo, hi = c.base ** c.min, c.base ** c.max
        return [lo, hi, lo / 10, hi * 10]
    if isinstance(c, (_w.IntSlider, _w.FloatSlider)):
        lo, hi = c.min, c.max
        span = hi - lo
        beyond = [hi * 10 if hi > 0 else hi + 10 * span, lo / 10 if lo > 0 else lo - span]
        if isinstance(c, _w.IntSlider):
            beyond = [int(v) for v in beyond]
        return [lo, hi] + beyond
    if isinstance(c, _w.SelectMultiple):
        return [(), tuple(c.options)] + [(o,) for o in c.options]
    if isinstance(c, _w.Dropdown):
        values = [o[1] if isinstance(o, tuple) else o for o in c.options]
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if nums:
            lo, hi = min(nums), max(nums)
            cast = int if all(isinstance(v, int) for v in nums) else float
            values += [cast(hi * 10), cast(lo / 10) if lo > 0 else cast(lo - (hi - lo))]
        return values
    raise TypeError(f"no extremes known for {type(c).__name__}")

_report = []
for _fn, _controls in _PANELS:
    _defaults = {k: c.value for k, c in _controls.items()}
    for _name, _c in _controls.items():
        for _v in _extremes(_c):
            _args = {**_defaults, _name: _v}
            _call = f"{_fn.__name__}({', '.join(f'{k}={v!r}' for k, v in _args.items())})"
            try:
                _fn(**_args)
                _outcome = "ran"
            except ValueError as _err:
                _outcome = f"ValueError: {_err}"
            except Exception as _err:
                _outcome = "CRASH " + "".join(_tb.format_exception_only(type(_err), _err)).strip()
            _plt.close("all")
            _report.append({"call": _call, "outcome": _outcome})
print("PANEL-REPORT " + _json.dumps(_report))
'''


def _first_import_cell(nb) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "panel" in cell.source and "import" in cell.source:
            return i
    raise AssertionError("the notebook never imports panel")


# a real model's panel trains a 22.7M-parameter encoder per extreme value (dozens of runs,
# longer than the whole non-slow suite on 2 cores): those notebooks run in the slow suite
REAL_MODEL = ("10_", "11_")


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow)
                                  if p.name.startswith(REAL_MODEL) else p for p in NOTEBOOKS],
                         ids=[p.stem[:2] for p in NOTEBOOKS])  # fmt: skip
def test_panels_survive_extreme_values(path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    at = _first_import_cell(nb)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(RECORDER))
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()  # fmt: skip
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    report = json.loads(text.split("PANEL-REPORT ", 1)[1])
    assert report, f"{path.name}: no panel was recorded"
    for r in report:  # shown with -s or on failure: what each extreme did
        print(f"{r['call']} -> {r['outcome'][:200]}")
    crashes = [f"{r['call']} -> {r['outcome']}" for r in report if r["outcome"].startswith("CRASH")]
    assert not crashes, f"{path.name}:\n" + "\n".join(crashes)
