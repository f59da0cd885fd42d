"""The reference solutions reject bad input with a ValueError naming the parameter, and each
lives in its notebook's exercise module next to its checker (show_solution prints it)."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from peft_helpers import tiny_vit
from torch import nn

from ftnotes.exercises import EXERCISE_MODULES, nb00, nb01, nb02, nb03, nb04, nb05, show_solution
from ftnotes.exercises.core import _REGISTRY

MODULES = (nb00, nb01, nb02, nb03, nb04, nb05)
ROOT_EXERCISES = Path(nb00.__file__).parent
sol = SimpleNamespace(**{k: v for m in MODULES for k, v in vars(m).items() if not k.startswith("_")})


BAD = [
    (lambda: sol.ioai_score(1.5, 0.2), "old_acc"),
    (lambda: sol.ioai_score(0.5, -0.1), "new_acc"),
    (lambda: sol.layerwise_lr_groups(tiny_vit(4), 0.0, 0.5), "base_lr"),
    (lambda: sol.layerwise_lr_groups(tiny_vit(4), 0.1, 1.5), "decay"),
    (lambda: sol.unfreeze_last_k(tiny_vit(4), 3), "k"),
    (lambda: sol.trainable_blocks(-1, 4), "epoch"),
    (lambda: sol.trainable_blocks(1, 4, 0), "epochs_per_stage"),
    (lambda: sol.Adapter(16, 32), "reduction_factor"),
    (lambda: sol.adapter_param_count(16, 0), "reduction_factor"),
    (lambda: sol.LoRALinear(nn.Linear(4, 4), r=0), "r"),
    (lambda: sol.lora_param_count(4, 4, 0), "r"),
    (lambda: sol.warmup_cosine(0, 10, 10, 1e-3), "warmup_steps"),
    (lambda: sol.warmup_cosine(10, 10, 2, 1e-3), "step"),
    (
        lambda: sol.flag_noisy(tiny_vit(4), torch.rand(3, 1, 8, 8), torch.zeros(3, dtype=torch.long), 4),
        "k",
    ),  # fmt: skip
    (lambda: sol.noise_precision([], [1]), "flagged"),
    (lambda: sol.stratified_split(torch.zeros(4), 1.0), "val_fraction"),
]


@pytest.mark.parametrize("call, name", BAD)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got "):
        call()


def test_lora_merge_round_trip_with_nonzero_b():
    torch.manual_seed(0)
    layer = sol.LoRALinear(nn.Linear(6, 3), r=2, lora_alpha=4.0)
    nn.init.normal_(layer.lora_B)  # non-zero B: an untrained LoRA would pass trivially
    x, w0 = torch.randn(5, 6), layer.base.weight.detach().clone()
    before = layer(x).detach()
    layer.merge()
    assert torch.allclose(layer.base(x), before, atol=1e-5)
    layer.unmerge()
    assert torch.allclose(layer.base.weight, w0, atol=1e-6)


def test_exercise_modules_are_discovered_and_solutions_sit_beside_their_checkers(capsys):
    on_disk = sorted(p.stem for p in (ROOT_EXERCISES).glob("nb[0-9][0-9]*.py"))
    plain = [m for m in on_disk if re.fullmatch(r"nb\d\d", m)]
    assert EXERCISE_MODULES == on_disk and plain[:6] == [f"nb{i:02d}" for i in range(6)]
    for ex in _REGISTRY.values():
        module = ex.checker.__module__  # nbNN or nbNN_<topic>, named after the exercise's notebook
        assert re.fullmatch(rf"ftnotes\.exercises\.nb{ex.notebook}(_[a-z0-9_]+)?", module), ex.id
        for obj in ex.solution:
            assert obj.__module__ == module, f"{ex.id}: {obj.__qualname__} lives elsewhere"
        show_solution(ex.id)
        assert "def " in capsys.readouterr().out
