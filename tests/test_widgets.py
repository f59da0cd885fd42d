"""The panel helper without a browser: clicks and value changes call fn, output is captured.

Outside a kernel the panel writes text and PNG figures into ``Output.outputs`` itself, so these
tests can read them; the in-kernel path (the frontend routes output) is covered by
tests/test_browser.py in a real JupyterLab.
"""

import math

import ipywidgets as widgets
import matplotlib
import pytest

matplotlib.use("Agg")  # no display here; must precede pyplot's first import
import matplotlib.pyplot as plt  # noqa: E402

from ftnotes.widgets import PANEL_CLASS, dropdown, log_slider, multi_select, panel, slider  # noqa: E402


def texts(out):
    return "".join(o.get("text", "") for o in out.outputs if o["output_type"] == "stream")


def images(out):
    return [o for o in out.outputs if "image/png" in o.get("data", {})]


def test_run_button_calls_fn_with_new_values_and_captures_output():
    calls = []

    def fn(lr, strategy):
        calls.append((lr, strategy))
        print(f"lr={lr:.0e} strategy={strategy}")

    controls = {"lr": log_slider(1e-3, 1e-5, 1e-1), "strategy": dropdown(["linear", "full"])}
    box = panel(fn, controls, title="Fine-tune")
    assert PANEL_CLASS in box._dom_classes
    assert calls == [], "a Run panel must not run before the click"
    assert box.button in box.children and box.output in box.children
    controls["lr"].value = 1e-2
    controls["strategy"].value = "full"
    box.button.click()
    assert len(calls) == 1
    assert math.isclose(calls[0][0], 1e-2, rel_tol=1e-9) and calls[0][1] == "full"
    assert texts(box.output) == "lr=1e-02 strategy=full\n"
    assert not box.button.disabled and box.button.description == "Run"
    box.button.click()  # a second run replaces the output instead of appending to it
    assert texts(box.output) == "lr=1e-02 strategy=full\n" and len(calls) == 2


def test_live_panel_reruns_on_change_and_shows_then_closes_figures():
    seen = []

    def fn(steps):
        seen.append(steps)
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.plot(range(steps))

    n_open = len(plt.get_fignums())
    box = panel(fn, {"steps": slider(5, 2, 20)}, live=True)
    assert box.button is None and seen == [5], "a live panel runs once right away"
    first = images(box.output)
    box.controls["steps"].value = 12
    assert seen == [5, 12]
    second = images(box.output)
    assert len(first) == len(second) == 1
    assert first[0]["data"]["image/png"] != second[0]["data"]["image/png"]
    assert len(plt.get_fignums()) == n_open, "figures must be closed after display"


def test_returned_figure_is_shown():
    from matplotlib.figure import Figure

    def fn(k):
        fig = Figure(figsize=(2, 1))  # not registered with pyplot
        fig.add_subplot().bar(range(k), range(k))
        return fig

    box = panel(fn, {"k": slider(3, 1, 5)}, live=True)
    assert len(images(box.output)) == 1


def test_exception_in_fn_becomes_a_message_and_panel_keeps_working():
    def fn(lr):
        if lr > 0.5:
            raise ValueError(f"lr={lr} diverges")
        print("ok")

    box = panel(fn, {"lr": slider(0.1, 0.0, 1.0)})
    box.controls["lr"].value = 0.9
    box.button.click()
    message = texts(box.output)
    assert "ValueError: lr=0.9 diverges" in message and "lr=0.9" in message
    assert not box.button.disabled
    box.controls["lr"].value = 0.2
    box.button.click()
    assert texts(box.output) == "ok\n"


def test_constructors_pick_types_and_ranges():
    s = slider(4, 1, 8)
    assert isinstance(s, widgets.IntSlider) and not s.continuous_update
    f = slider(0.5, 0.0, 1.0, 0.05, description="decay")
    assert isinstance(f, widgets.FloatSlider) and f.step == 0.05 and not f.continuous_update
    g = log_slider(3e-4, 1e-5, 1e-1)
    assert isinstance(g, widgets.FloatLogSlider) and not g.continuous_update
    assert math.isclose(g.min, -5) and math.isclose(g.max, -1)
    assert math.isclose(g.value, 3e-4, rel_tol=1e-6)
    d = dropdown([("after attention", "attn"), ("after MLP", "mlp")])
    assert d.value == "attn"
    m = multi_select(["q_proj", "k_proj", "v_proj", "o_proj"], ("q_proj", "v_proj"))
    assert m.value == ("q_proj", "v_proj")


def test_unlabeled_controls_get_their_name():
    box = panel(lambda rank: None, {"rank": slider(4, 1, 16)})
    assert box.controls["rank"].description == "rank"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: slider(9, 1, 8), "value"),
        (lambda: slider(1, 5, 5), "min"),
        (lambda: slider(1.0, 0.0, 2.0, step=0), "step"),
        (lambda: log_slider(1e-3, 0.0, 1.0), "min"),
        (lambda: dropdown([]), "options"),
        (lambda: dropdown(["a", "b"], "c"), "value"),
        (lambda: multi_select(["a"], ("z",)), "value"),
        (lambda: panel("not callable", {"x": slider(1, 0, 2)}), "fn"),
        (lambda: panel(print, {}), "controls"),
        (lambda: panel(print, {"not a name": slider(1, 0, 2)}), "controls"),
        (lambda: panel(print, {"x": widgets.Button()}), "controls"),
    ],
)
def test_bad_input_raises_value_error_naming_the_parameter(make, match):
    with pytest.raises(ValueError, match=match):
        make()
