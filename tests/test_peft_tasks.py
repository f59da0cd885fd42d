"""TaskBank's own errors. Switching tasks exactly, and a fresh task starting from the
backbone, are checked for every layer method in test_peft_contract.py."""

import pytest
from peft_helpers import X, tiny_vit

from ftnotes.peft import LoraConfig, TaskBank


def test_errors_are_clear():
    bank = TaskBank(tiny_vit(), LoraConfig(r=2))
    with pytest.raises(ValueError, match="add_task"):
        bank(X)
    bank.add_task("a")
    bank.add_task("b")
    with pytest.raises(ValueError, match="already exists"):
        bank.add_task("a")
    with pytest.raises(ValueError, match="unknown task 'c'; tasks: \\['a', 'b'\\]"):
        bank.set_active("c")
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        bank.add_task("")
    with pytest.raises(ValueError, match="head_name"):
        TaskBank(tiny_vit(), LoraConfig(), head_name="classifier")
