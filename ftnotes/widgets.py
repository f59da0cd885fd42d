"""One interactive panel for every notebook's main knobs, so they all look and behave the same.

The notebook pattern is two cells::

    fn(**defaults)                    # a normal cell: CI (nbval) runs exactly this path
    panel(fn, {"lr": log_slider(1e-3, 1e-5, 1e-1), ...})   # the next cell: the student's knobs

:func:`panel` shows the controls, an output area and (unless ``live``) a Run button. A run clears
the output and calls ``fn(**values)`` inside it, so printed text, ``display(...)`` calls, tqdm
bars and matplotlib figures land in the panel. An exception inside ``fn`` becomes a short message
in the output: a student's extreme slider value must not kill the panel.

The control constructors (:func:`slider`, :func:`log_slider`, :func:`dropdown`,
:func:`multi_select`) set ``continuous_update=False`` where the widget has it, so a live panel
re-runs once when the slider is released, not at every pixel of the drag.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
from IPython import get_ipython
from IPython.display import display

from ftnotes.checks import check_int, check_number, is_int

PANEL_CLASS = "ftnotes-panel"  # the browser test finds every panel by this CSS class
LIVE_CLASS = "ftnotes-live"  # ... and the live ones, whose output must follow a moved control
_STYLE = {"description_width": "initial"}  # long labels such as "layer decay" are not cut off


def _check_range(value: float, lo: float, hi: float) -> None:
    if not lo < hi:
        raise ValueError(f"min must be < max, got min={lo!r}, max={hi!r}")
    if not lo <= value <= hi:
        raise ValueError(f"value must lie in [min, max] = [{lo!r}, {hi!r}], got {value!r}")


def slider(value, min, max, step=None, *, description: str = "") -> widgets.ValueWidget:
    """An ``IntSlider`` when ``value``, ``min``, ``max`` (and ``step``) are ints, else a ``FloatSlider``."""
    _check_range(value, min, max)
    check_number("step", step, 0, strict=True, optional=True)
    numbers = (value, min, max) + (() if step is None else (step,))
    if all(is_int(x) for x in numbers):
        return widgets.IntSlider(
            value=value, min=min, max=max, step=step or 1, description=description,
            continuous_update=False, style=_STYLE,
        )  # fmt: skip
    step = step if step is not None else (max - min) / 100
    return widgets.FloatSlider(
        value=value, min=min, max=max, step=step, description=description,
        continuous_update=False, readout_format=".3g", style=_STYLE,
    )  # fmt: skip


def log_slider(value, min, max, *, steps_per_decade: int = 10, description: str = ""):
    """A ``FloatLogSlider`` for rates: ``min``/``max`` are values (1e-5, 1e-1), not exponents."""
    if min <= 0:
        raise ValueError(f"min must be > 0 for a log slider, got {min!r}")
    _check_range(value, min, max)
    check_int("steps_per_decade", steps_per_decade)
    return widgets.FloatLogSlider(
        value=value, base=10, min=math.log10(min), max=math.log10(max),
        step=1 / steps_per_decade, description=description, continuous_update=False,
        readout_format=".1e", style=_STYLE,
    )  # fmt: skip


def dropdown(options: Sequence, value=None, *, description: str = "") -> widgets.Dropdown:
    """A ``Dropdown`` over ``options`` (a list, or ``(label, value)`` pairs); first one by default."""
    options = list(options)
    if not options:
        raise ValueError("options must be a non-empty sequence, got []")
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if value is None:
        value = values[0]
    elif value not in values:
        raise ValueError(f"value must be one of {values!r}, got {value!r}")
    return widgets.Dropdown(options=options, value=value, description=description, style=_STYLE)


def multi_select(options: Sequence, value=(), *, description: str = "") -> widgets.SelectMultiple:
    """A ``SelectMultiple`` (ctrl/shift-click) whose value is a tuple of the chosen options."""
    options = list(options)
    if not options:
        raise ValueError("options must be a non-empty sequence, got []")
    bad = [v for v in value if v not in options]
    if bad:
        raise ValueError(f"value must be a subset of {options!r}, got {tuple(value)!r}")
    return widgets.SelectMultiple(
        options=options, value=tuple(value), rows=min(len(options), 6),
        description=description, style=_STYLE,
    )  # fmt: skip


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, where the frontend routes captured output into the widget."""
    return getattr(get_ipython(), "kernel", None) is not None


def _png_output(fig) -> dict:
    """A figure as a Jupyter display_data output (used when no kernel renders it for us)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    data = {"image/png": png, "text/plain": repr(fig)}
    return {"output_type": "display_data", "data": data, "metadata": {}}


class _StreamToOutput(io.TextIOBase):
    """A file-like stdout that appends to an ``Output`` widget (used outside a kernel only)."""

    def __init__(self, out: widgets.Output):
        self.out = out

    def write(self, text: str) -> int:
        if text:
            self.out.append_stdout(text)
        return len(text)


class Panel(widgets.VBox):
    """The box :func:`panel` returns; ``run()`` is what the button (or a live change) calls."""

    def __init__(self, fn, controls, *, live, title, run_label):
        self.fn, self.controls, self.live = fn, dict(controls), live
        self.output = widgets.Output(layout={"min_height": "2em"})
        self.button = None if live else widgets.Button(description=run_label, icon="play")
        self.run_label = run_label
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        for name, control in self.controls.items():
            if not control.description:
                control.description = name  # an unlabeled slider is a puzzle for a student
        rows = [widgets.VBox(list(self.controls.values()))]
        if self.button is not None:
            self.button.on_click(lambda _button: self.run())
            rows.append(self.button)
        else:
            for control in self.controls.values():
                control.observe(lambda _change: self.run(), names="value")
        super().__init__(header + rows + [self.output])
        self.add_class(PANEL_CLASS)
        if live:
            self.add_class(LIVE_CLASS)

    def values(self) -> dict[str, Any]:
        """The current value of every control, keyed like ``controls``."""
        return {name: control.value for name, control in self.controls.items()}

    def run(self) -> None:
        """Clear the output and call ``fn(**values)`` inside it; errors become a message."""
        import matplotlib.pyplot as plt  # late: importing this module must not pick a backend

        values = self.values()
        if self.button is not None:  # a second click while training would start a second run
            self.button.disabled, self.button.description = True, "Running…"
        before, figs = set(plt.get_fignums()), []
        kernel = _in_kernel()
        if kernel:
            self.output.clear_output(wait=True)  # wait: the old plot stays until the new one comes
            capture = contextlib.nullcontext()
        else:  # no frontend routes the output: write it into the widget's outputs ourselves
            self.output.outputs = ()
            capture = contextlib.redirect_stdout(_StreamToOutput(self.output))
        try:
            with self.output, capture:
                try:
                    result = self.fn(**values)
                except Exception as err:  # shown to the student; the panel stays alive
                    shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
                    print(f"Could not run with {shown}:\n{type(err).__name__}: {err}")
                    result = None
                figs = [plt.figure(n) for n in sorted(set(plt.get_fignums()) - before)]
                if hasattr(result, "savefig") and result not in figs:
                    figs.append(result)  # a Figure made without pyplot is not in get_fignums()
                for fig in figs:
                    if kernel:
                        display(fig)
                    else:
                        self.output.outputs += (_png_output(fig),)
        finally:
            for fig in figs:
                plt.close(fig)  # closed, so the inline backend does not show it again at cell end
            if self.button is not None:
                self.button.disabled, self.button.description = False, self.run_label


def panel(
    fn: Callable[..., Any],
    controls: dict[str, widgets.ValueWidget],
    *,
    live: bool = False,
    title: str | None = None,
    run_label: str = "Run",
) -> Panel:
    """Controls + Run button + output area that calls ``fn(**{name: control.value})``.

    ``live=True`` re-runs ``fn`` on every control change and once right away (meant for cheap
    functions such as plotting a schedule); otherwise ``fn`` runs only when Run is clicked.
    Figures that ``fn`` opens with pyplot, or a Figure it returns, are shown in the output and
    then closed.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if not isinstance(controls, dict) or not controls:
        raise ValueError(f"controls must be a non-empty dict of name -> widget, got {controls!r}")
    for name, control in controls.items():
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"controls keys must be keyword names of fn, got {name!r}")
        if not isinstance(control, widgets.ValueWidget):
            raise ValueError(
                f"controls[{name!r}] must be an ipywidgets ValueWidget, got {control!r}"
            )
    box = Panel(fn, controls, live=live, title=title, run_label=run_label)
    if live:
        box.run()
    return box
