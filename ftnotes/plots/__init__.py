"""Every matplotlib figure of the notebooks, one function per kind of figure.

Each function builds a figure and returns it without calling ``plt.show()``: in a notebook the
returned figure displays itself; in a script, save it with ``fig.savefig(...)``. By what they
draw: :mod:`~ftnotes.plots.curves` (over training), :mod:`~ftnotes.plots.compare` (runs side by
side), :mod:`~ftnotes.plots.matrices` (images, a confusion matrix, a spectrum). Import them from
here: ``from ftnotes.plots import plot_history``.
"""

from ftnotes.plots.compare import (
    hide_crowded_xtick_labels,
    plot_comparison,
    plot_memory_terms,
    plot_old_new_runs,
)
from ftnotes.plots.curves import (
    SIZE,
    plot_grade_history,
    plot_history,
    plot_log_history,
    plot_lr_per_layer,
    plot_schedule_runs,
    plot_schedules,
)
from ftnotes.plots.matrices import image_grid, plot_confusion, plot_delta_spectrum

__all__ = ["SIZE", "hide_crowded_xtick_labels", "image_grid", "plot_comparison", "plot_confusion",
           "plot_delta_spectrum", "plot_grade_history", "plot_history", "plot_log_history",
           "plot_lr_per_layer", "plot_memory_terms", "plot_old_new_runs", "plot_schedule_runs",
           "plot_schedules"]  # fmt: skip
