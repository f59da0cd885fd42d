"""Figures build without error, carry titles, labels and legends, and plot the given data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from peft_helpers import tiny_vit  # noqa: E402

from ftnotes.ledger import Ledger, RunRecord  # noqa: E402
from ftnotes.plots import (  # noqa: E402
    image_grid,
    plot_comparison,
    plot_confusion,
    plot_delta_spectrum,
    plot_history,
    plot_log_history,
    plot_lr_per_layer,
    plot_old_new_runs,
    plot_schedules,
)
from ftnotes.schedules import schedule_values  # noqa: E402
from ftnotes.strategies import layerwise_lr_groups  # noqa: E402
from ftnotes.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_history_marks_best_epoch():
    h = History(train_loss=[1.0, 0.6, 0.4], train_acc=[0.5, 0.7, 0.8], val_loss=[0.9, 0.7, 0.8],
                val_acc=[0.5, 0.6, 0.55], best_epoch=1, stopped_early=True)  # fmt: skip
    fig = plot_history(h)
    ax_loss, ax_acc = fig.axes
    assert "stopped early" in fig._suptitle.get_text()
    assert ax_loss.get_xlabel() == "epoch" and ax_acc.get_ylabel() == "accuracy"
    labels = [t.get_text() for t in ax_loss.get_legend().get_texts()]
    assert labels == ["train", "validation", "best epoch (restored)"]
    best_line = ax_loss.get_lines()[2]
    assert list(best_line.get_xdata()) == [2, 2]  # index 1 shown as epoch 2
    assert list(ax_loss.get_lines()[1].get_ydata()) == [0.9, 0.7, 0.8]


def test_plot_schedules_draws_the_real_values():
    fig = plot_schedules(["warmup_cosine", "constant"], total_steps=40)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["warmup_cosine", "constant"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), schedule_values("warmup_cosine", 40))


def test_plot_lr_per_layer():
    torch.manual_seed(0)
    groups = layerwise_lr_groups(tiny_vit(), 1e-3, 0.5)
    ax = plot_lr_per_layer(groups).axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([1e-3 / 8, 1e-3 / 4, 1e-3 / 2, 1e-3])
    assert ax.get_yscale() == "log"


def test_plot_comparison_and_validation():
    records = [RunRecord(f"run{i}", 0.5 + i / 10, None, 10**i, 10**4, 0, 0, float(i + 1), 1.0, 0, 0)
               for i in range(1, 4)]  # fmt: skip
    ax = plot_comparison(Ledger(records)).axes[0]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.texts] == ["run1", "run2", "run3"]
    ax = plot_comparison(records, x="train_seconds").axes[0]
    assert ax.get_xlabel() == "training time (s)"
    with pytest.raises(ValueError, match="x must be"):
        plot_comparison(records, x="latency")


def test_plot_comparison_references_and_highlight():
    records = [RunRecord(f"run{i}", 0.5 + i / 10, None, 10**i, 10**4, 0, 0, 1.0, 1.0, 0, 0)
               for i in range(1, 4)]  # fmt: skip
    mine = RunRecord("mine", 0.7, None, 500, 10**4, 0, 0, 1.0, 1.0, 0, 0)
    fig = plot_comparison(records, references=["run3"], highlight=mine, title="t", ylabel="acc")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["run1", "run2"]  # run3 is a line, not a point
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["run3 (1,000 trained)", "your run: mine"]
    ref = [line for line in ax.lines if list(line.get_ydata()) == [0.8, 0.8]]
    assert len(ref) == 1  # the horizontal reference line at run3's accuracy
    (star,) = ax.collections
    assert star.get_offsets().tolist() == [[500, 0.7]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "100", "500"]  # exact counts
    assert ax.get_title() == "t" and ax.get_ylabel() == "acc"

    # series from dicts, values as references, a highlighted name, into a given axes
    _, ax2 = plt.subplots()
    rows = {"LoRA": [{"name": "a", "trainable_params": 10, "target_acc": 0.5},
                     {"name": "b", "trainable_params": 20, "target_acc": 0.6}],
            "LoHa": [{"name": "c", "trainable_params": 15, "target_acc": 0.4}]}  # fmt: skip
    plot_comparison(rows, references={"full fine-tuning": 0.9}, highlight="b", connect=True,
                    annotate=False, ax=ax2)  # fmt: skip
    assert not ax2.texts and [t.get_text() for t in ax2.get_legend().get_texts()] == [
        "LoRA", "LoHa", "full fine-tuning", "your run: b"]  # fmt: skip
    assert list(ax2.lines[0].get_xdata()) == [10, 20] and ax2.lines[0].get_linestyle() == "-"


@pytest.mark.parametrize("kwargs, match", [
    (dict(runs=[]), "runs must hold"),
    (dict(runs=[{"name": "a", "trainable_params": 1}]), "must have a 'target_acc'"),
    (dict(references=["nope"]), "references: no run named 'nope'"),
    (dict(references={"full": "high"}), r"references\['full'\] must be a finite number"),
    (dict(highlight="nope"), "highlight: no run named 'nope'"),
    (dict(x="latency"), "x must be"),
])  # fmt: skip
def test_plot_comparison_bad_input_names_the_parameter(kwargs, match):
    kwargs.setdefault("runs", [{"name": "a", "trainable_params": 1, "target_acc": 0.5}])
    with pytest.raises(ValueError, match=match):
        plot_comparison(kwargs.pop("runs"), **kwargs)


def test_plot_delta_spectrum():
    spectra = {"b0.q": torch.tensor([2.0, 1.0, 0.5]), "b0.v": np.array([4.0, 1.0, 0.0])}
    ax = plot_delta_spectrum(spectra).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["b0.q", "b0.v"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.5, 0.25])  # / the largest
    assert list(ax.lines[1].get_xdata()) == [1, 2, 3]
    ax = plot_delta_spectrum(spectra, mean=True, title="mean").axes[0]
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_ydata(), [1.0, 0.375, 0.125])
    assert ax.get_title() == "mean" and "mean over layers" in ax.get_ylabel()
    for bad, match in (({}, "spectra must be"), ({"a": torch.zeros(3)}, r"spectra\['a'\] is all zeros"),
                       ({"a": torch.ones(2, 2)}, r"spectra\['a'\] must be a 1-D")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            plot_delta_spectrum(bad)
    with pytest.raises(ValueError, match="same length"):
        plot_delta_spectrum({"a": [1.0, 0.5], "b": [1.0]}, mean=True)


def test_plot_old_new_runs():
    from ftnotes.contest import Result

    runs = [Result("t", "start", "scored", 0.0, 60, 0.5, parts={"acc_old": 0.9, "acc_new": 0.1}),
            Result("t", "late", "error", 99.0, 60, message="boom"),
            Result("t", "ref", "scored", 20.0, 60, 0.825,
                   parts={"acc_old": 0.85, "acc_new": 0.8})]  # fmt: skip
    ax, ax_t = plot_old_new_runs(runs, 60).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["start", "ref"]  # scored runs only
    assert [p.get_height() for p in ax.patches][:2] == [0.9, 0.85]
    assert [t.get_text() for t in ax_t.get_legend().get_texts()] == ["limit 60 s"]
    with pytest.raises(ValueError, match="time_limit_s"):
        plot_old_new_runs(runs, 0)
    with pytest.raises(ValueError, match="results must hold"):
        plot_old_new_runs(runs[1:2], 60)


def test_image_grid_and_confusion():
    X = torch.rand(10, 1, 8, 8)
    fig = image_grid(X, labels=list(range(10)), ncols=4, title="digits")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 10 and shown[3].get_title() == "3"
    np.testing.assert_allclose(shown[0].images[0].get_array(), X[0, 0].numpy())
    with pytest.raises(ValueError, match="labels"):
        image_grid(X, labels=[1, 2])
    cm = np.array([[5, 1], [0, 4]])
    ax = plot_confusion(cm, ["a", "b"]).axes[0]
    assert ax.get_xlabel() == "predicted class" and sorted(t.get_text() for t in ax.texts) == [
        "1", "4", "5"]  # fmt: skip
    with pytest.raises(ValueError, match="cm"):
        plot_confusion(cm, ["a", "b", "c"])


def test_plot_log_history_reads_trainer_logs():
    logs = [{"loss": 2.0, "epoch": 1.0}, {"eval_loss": 1.5, "epoch": 1.0},
            {"loss": 1.0, "epoch": 2.0}, {"eval_loss": 1.2, "epoch": 2.0}]  # fmt: skip
    fig = plot_log_history({"run": logs})
    ax_t, ax_e = fig.axes[:2]
    assert list(ax_t.lines[0].get_ydata()) == [2.0, 1.0]
    assert list(ax_e.lines[0].get_ydata()) == [1.5, 1.2]
    assert list(ax_e.lines[1].get_xydata()[0]) == [2.0, 1.2]  # the star: best epoch
    with pytest.raises(ValueError, match="no eval_loss"):
        plot_log_history({"run": logs[:1]})
    with pytest.raises(ValueError, match="runs must be"):
        plot_log_history([])


@pytest.mark.parametrize("total_gb", [3.0, 15.0, 26.0])
def test_memory_terms_legend_never_covers_the_budget_line(total_gb):
    """Notebook 09's single-bar figure put its legend over the 16 GB line (issue 31)."""
    from ftnotes.plots import plot_memory_terms

    terms = {"weights": 2e9, "gradients": 0, "optimizer state": 0,
             "activations": (total_gb - 2) * 1e9, "loss backward": 0.0}  # fmt: skip
    fig = plot_memory_terms({"LoRA, fp16": terms}, budget_gb=16)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    line = next(ln for ln in ax.get_lines() if "budget" in ln.get_label()).get_window_extent()
    assert legend.x0 > line.x1 or legend.x1 < line.x0 or legend.y0 > line.y1 or legend.y1 < line.y0
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "loss backward" not in labels and "activations" in labels  # empty terms: no entry
