"""The timing summary's yardstick (root conftest.py): each notebook is counted against the mean
of the reference steps timed just before it and just after it, not against one timing of the run.
"""

import pytest
from browser_helpers import _root_conftest


def test_each_notebook_gets_the_mean_of_the_timings_beside_it():
    starts = [("a.ipynb", 10.0), ("b.ipynb", 20.0), ("c.ipynb", 12.0)]
    steps = _root_conftest().notebook_steps_ms(starts, 14.0)
    assert steps == pytest.approx({"a.ipynb": 15.0, "b.ipynb": 16.0, "c.ipynb": 13.0})


def test_a_failed_timing_is_left_out_and_none_without_any():
    conftest = _root_conftest()
    steps = conftest.notebook_steps_ms([("a.ipynb", None), ("b.ipynb", 12.0)], None)
    assert steps == {"a.ipynb": 12.0, "b.ipynb": 12.0}
    assert conftest.notebook_steps_ms([("a.ipynb", None)], None) == {"a.ipynb": None}
