"""Every exercise: the reference passes, the notebook stub is 'not attempted', no-ops never pass.

Wrong solutions with their expected messages live in tests/test_exercises_<notebook>.py.
"""

import math

import pytest
import torch
from torch import nn

from ftnotes.exercises import check, hint, list_exercises, show_solution, stub
from ftnotes.exercises.core import Result, get, known_notebooks
from ftnotes.exercises.nb03 import LoRALinear

IDS = list(list_exercises())


#: 06 is the olympiad practice: its exercise is the contest task, plus one by hand.
FEWER = {"06": 1}


def test_every_notebook_has_three_exercises():
    notebooks = known_notebooks()  # found in notebooks/, not listed by hand
    assert {"00", "09"} <= set(notebooks), notebooks
    for nb in notebooks:
        assert len(list_exercises(nb)) >= FEWER.get(nb, 3), nb


@pytest.mark.parametrize("ex_id", IDS)
def test_reference_passes(ex_id):
    result = check(ex_id, get(ex_id).reference)
    assert result.passed, result.message
    assert result.status == "passed" and len(result.verified) >= 1


def stub_object(ex_id):
    # What the notebook has defined before the exercise cell: imports, earlier exercises.
    namespace = {"math": math, "torch": torch, "nn": nn, "LoRALinear": LoRALinear}
    before = dict(namespace)
    exec(get(ex_id).stub, namespace)
    made = [v for k, v in namespace.items() if before.get(k) is not v and callable(v)]
    assert len(made) == 1, f"{ex_id}: the stub should define exactly one function or class"
    return made[0]


@pytest.mark.parametrize("ex_id", IDS)
def test_stub_is_not_attempted_and_shows_first_hint(ex_id):
    result = check(ex_id, stub_object(ex_id))
    assert not result.passed and result.status == "not attempted"
    assert "not attempted yet" in result.message and get(ex_id).hints[0] in result.message


class IdentityModule(nn.Module):
    """Takes any constructor arguments; returns its first input unchanged."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, *args, **kwargs):
        return x


def zeroed(cls):
    class Zeroed(cls):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            with torch.no_grad():
                for p in self.parameters():
                    p.zero_()

    return Zeroed


def no_ops(ex_id):
    ex = get(ex_id)
    if ex.kind == "class":
        return [IdentityModule, zeroed(ex.reference)]
    return [lambda *a, **k: a[0], lambda *a, **k: None, lambda *a, **k: 0]


@pytest.mark.parametrize("ex_id", IDS)
def test_identity_noop_and_all_zero_never_pass(ex_id):
    for wrong in no_ops(ex_id):
        result = check(ex_id, wrong)
        assert not result.passed and result.status == "failed", (ex_id, result)


def test_kind_mismatch_is_explained():
    r = check("03_lora_layer", lambda base, r, lora_alpha: base)
    assert not r.passed and "class itself" in r.message
    r = check("03_lora_layer", LoRALinear(nn.Linear(2, 2)))
    assert not r.passed and "not an instance of LoRALinear" in r.message
    r = check("00_accuracy", nn.Linear)
    assert not r.passed and "pass your function" in r.message


def test_unknown_id_lists_valid_ids():
    with pytest.raises(ValueError, match="unknown exercise id 'nope'.*00_accuracy"):
        check("nope", len)
    with pytest.raises(ValueError, match="Did you mean '00_accuracy'"):
        hint("00_acuracy")


def test_result_displays_as_text_and_html():
    r = check("00_accuracy", get("00_accuracy").reference)
    assert isinstance(r, Result) and bool(r)
    assert "passed" in repr(r) and "<div" in r._repr_html_()
    bad = check("00_accuracy", lambda logits, labels: 0.5)
    assert not bad and "failed" in bad._repr_html_()


def test_hints_advance_and_levels_are_validated(capsys):
    n = len(get("00_ioai_score").hints)
    hint("00_ioai_score", level=1)
    assert "Hint 1/" in capsys.readouterr().out
    hint("00_ioai_score")
    assert "Hint 2/" in capsys.readouterr().out
    for _ in range(n + 1):
        hint("00_ioai_score")
    assert f"Hint {n}/{n}" in capsys.readouterr().out.splitlines()[-1]
    with pytest.raises(ValueError, match="level must be an int in 1.."):
        hint("00_ioai_score", level=n + 1)


def test_show_solution_and_stub_print_source(capsys):
    show_solution("00_ioai_score")
    assert "def ioai_score" in capsys.readouterr().out
    stub("00_ioai_score")
    assert "raise NotImplementedError" in capsys.readouterr().out


def test_list_exercises_validates_notebook():
    assert all(i.startswith("03") for i in list_exercises(3))
    assert "00_accuracy" in repr(list_exercises("00"))
    with pytest.raises(ValueError, match="notebook must be one of"):
        list_exercises("99")


def test_check_restores_random_state():
    torch.manual_seed(5)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(5)
    check("00_linear_probe", get("00_linear_probe").reference)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
