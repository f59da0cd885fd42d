"""The browser test's run timeout: scaled by the reference step measured before each notebook
(a fixed 240 s failed for notebook 07 on a busy machine). No browser needed."""

import pytest
from browser_helpers import RUN_TIMEOUT_S, run_timeout_s


def test_a_quiet_machine_keeps_the_floor():
    assert run_timeout_s("07_huggingface.ipynb", 8.4) == RUN_TIMEOUT_S  # 3 x 2,300 x 8.4 ms = 58 s


def test_a_busy_machine_gets_three_budgets_of_its_reference_step():
    # 54 ms: a reference step measured on this machine while other jobs ran (load 3)
    assert run_timeout_s("07_huggingface.ipynb", 54.0) == pytest.approx(3 * 2300 * 0.054)
    assert run_timeout_s("07_huggingface.ipynb", 54.0) > 340  # 07's worst busy run took 340 s


def test_real_model_notebooks_get_their_larger_budget():
    assert run_timeout_s("10_real_encoder.ipynb", 20.0) == pytest.approx(3 * 8000 * 0.020)


def test_without_a_reference_step_the_floor():
    assert run_timeout_s("03_lora.ipynb", None) == RUN_TIMEOUT_S
