"""Notebook 09's checkers reject plausible wrong solutions with the right message."""

import re

import pytest

from ftnotes.costs import Setup, config, estimate, meta_model
from ftnotes.exercises import check
from ftnotes.exercises.nb09 import adamw_state_bytes, largest_batch, lora_qv_count

WRONG = [
    ("09_largest_batch", lambda f, p, b: max(0, round((b - f) / p)), r"round down \(11 / 3 = 3\.67\)"),
    ("09_largest_batch", lambda f, p, b: max(0, (b - f) / p), "the float"),
    ("09_largest_batch", lambda f, p, b: None, "returned None: did you forget `return`"),
    ("09_adamw_bytes", lambda n: None, "returned None"),
    ("09_lora_count", lambda h, a, kv, n, r: n * r * (3 * h + kv * (h / a)), "the float"),
    ("09_adamw_bytes", lambda n: 4 * n, "one moment"),
    ("09_adamw_bytes", lambda n: 16 * n, "weights \\+ gradients \\+ state"),
    ("09_adamw_bytes", lambda n: 2 * n, "bf16"),
    ("09_adamw_bytes", lambda n: 12 * n, "includes the weights"),
    ("09_lora_count", lambda h, a, kv, n, r: n * r * 4 * h, "v_proj is not"),
    ("09_lora_count", lambda h, a, kv, n, r: r * (3 * h + kv * (h // a)), "num_layers"),
    ("09_lora_count", lambda h, a, kv, n, r: n * r * (h * h + h * kv * (h // a)), "r·in·out"),
    ("09_largest_batch", lambda f, p, b: b // p, "fixed bytes"),
    ("09_largest_batch", lambda f, p, b: -(-(b - f) // p), "round down"),
    ("09_largest_batch", lambda f, p, b: (b - f) // p, "overflow"),
]


@pytest.mark.parametrize("ex_id, wrong, message", WRONG)
def test_wrong_solution_is_rejected_with_its_message(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed"
    assert re.search(message, result.message), result.message


def test_references_agree_with_the_cost_model():
    model = meta_model(config("qwen2.5-0.5b"))
    lora = estimate(model, Setup(method="lora", r=8, target_modules=("q_proj", "v_proj")))
    head = sum(p.numel() for n, p in model.named_parameters() if n.startswith("score"))
    assert lora.trainable - head == lora_qv_count(896, 14, 2, 24, 8)
    full = estimate(model, Setup())
    n_tensors = len(list(model.parameters()))
    assert full.optimizer == adamw_state_bytes(full.params) + 4 * n_tensors  # + one step each
    assert largest_batch(10, 3, 9) == 0 and largest_batch(1, 3, 10) == 3


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="num_params must be"):
        adamw_state_bytes(-1)
    with pytest.raises(ValueError, match="r must be an int >= 1, got 0"):
        lora_qv_count(896, 14, 2, 24, 0)
    with pytest.raises(ValueError, match="bytes_per_sample must be > 0"):
        largest_batch(1, 0, 10)
