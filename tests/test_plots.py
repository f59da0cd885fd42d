"""Figures build without error, carry titles, labels and legends, and plot the given data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ftnotes.ledger import Ledger, RunRecord  # noqa: E402
from ftnotes.models import TinyViT  # noqa: E402
from ftnotes.plots import (  # noqa: E402
    image_grid,
    plot_comparison,
    plot_confusion,
    plot_history,
    plot_log_history,
    plot_lr_per_layer,
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
    groups = layerwise_lr_groups(TinyViT(dim=16, depth=2, num_heads=2), 1e-3, 0.5)
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
