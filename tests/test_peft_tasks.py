"""Many tasks on one backbone: switching back reproduces each task's outputs exactly."""

import pytest
import torch
from peft_helpers import X, tiny_vit, train_steps

from ftnotes.peft import AdapterConfig, LoraConfig, TaskBank


def train_a_little(model, n_classes, seed):
    """Three AdamW steps from a seed: every task ends with different, non-zero adapters."""
    torch.manual_seed(seed)
    train_steps(model, y=torch.randint(0, n_classes, (6,)), lr=5e-2)


@pytest.mark.parametrize(
    "config", [LoraConfig(r=2), AdapterConfig(reduction_factor=4)], ids=["lora", "adapter"]
)
def test_switching_back_reproduces_each_task_exactly(config):
    base = tiny_vit()
    base_out = base(X).detach().clone()
    bank = TaskBank(base, config)
    outputs = {}
    for seed, (name, n_classes) in enumerate([("digits", 10), ("far", 3), ("glyphs", None)]):
        torch.manual_seed(seed)
        bank.add_task(name, num_classes=n_classes)
        assert bank.active == name
        train_a_little(bank.model, n_classes or 5, seed)
        outputs[name] = bank(X).detach().clone()
    assert bank.tasks == ["digits", "far", "glyphs"]
    assert outputs["digits"].shape == (6, 10) and outputs["far"].shape == (6, 3)
    assert not torch.allclose(outputs["glyphs"], base_out, atol=1e-4)  # adapters trained
    for name in ["far", "digits", "glyphs", "far"]:
        assert torch.equal(bank(X, task=name), outputs[name])


def test_new_task_starts_from_the_pretrained_function_and_errors_are_clear():
    base = tiny_vit()
    base_out = base(X).detach().clone()
    bank = TaskBank(base, LoraConfig(r=2))
    with pytest.raises(ValueError, match="add_task"):
        bank(X)
    bank.add_task("a")
    train_a_little(bank.model, 5, 0)
    bank.add_task("b")  # fresh LoRA (B = 0) and a copy of the original head
    assert torch.equal(bank(X), base_out)
    with pytest.raises(ValueError, match="already exists"):
        bank.add_task("a")
    with pytest.raises(ValueError, match="unknown task 'c'; tasks: \\['a', 'b'\\]"):
        bank.set_active("c")
    with pytest.raises(ValueError, match="head_name"):
        TaskBank(tiny_vit(), LoraConfig(), head_name="classifier")
