"""Many tasks, one frozen backbone: named LoRA or adapter weights swapped in and out.

Design: a *bank* of small state dicts. The model holds one set of LoRA/adapter layers (the ones
from :func:`ftnotes.peft.add_lora` / :func:`ftnotes.peft.add_adapters`); every task keeps its
own copy of their tensors, plus its own head module, and :meth:`TaskBank.set_active` copies the
chosen task's tensors into the layers. We chose this over peft's design (a ``ModuleDict`` of
``lora_A``/``lora_B`` keyed by adapter name inside every layer) because the layers stay the
simple single-adapter layers students read first, and switching is just ``copy_`` of a few
thousand numbers, which makes it obvious that it is exact. The price: only one task is live at
a time (one batch cannot mix tasks; prompt tuning can, see ``MultiTaskPromptViT``), and the
layer parameters are shared objects, so make a new optimizer after switching tasks (Adam's
moments of the previous task would otherwise carry over).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ftnotes.checks import check_int
from ftnotes.peft.config import PeftConfig
from ftnotes.peft.tuners import PeftWrapper, replace_module, tuner_layers


class TaskBank:
    """Named tasks sharing one backbone. ``bank(x)`` runs the active task; ``bank(x, task=n)``
    switches first. Shapes are the model's: x (B, ...) -> logits (B, classes of the task).

    ``model`` is changed in place: the method of ``config`` is attached if it is not already.
    ``head_name``: the attribute path of the head module each task gets its own copy of.
    """

    def __init__(self, model: nn.Module, config: PeftConfig, head_name: str = "head"):
        if not isinstance(config, PeftConfig) or not hasattr(config, "target_modules"):
            raise ValueError(
                "config must be the config of a layer method (LoraConfig, AdapterConfig, "
                f"IA3Config, ...), got {type(config).__name__}"
            )
        if isinstance(model, PeftWrapper):
            raise ValueError("TaskBank swaps layer methods; for prompts use MultiTaskPromptViT")
        try:
            head = model.get_submodule(head_name)
        except AttributeError:
            raise ValueError(f"head_name={head_name!r} is not a module of this model") from None
        if not tuner_layers(model):
            config.attach(model)
        self.model, self.config, self.head_name = model, config, head_name
        self._initial_head = copy.deepcopy(head)
        self._weights: dict[str, dict[str, torch.Tensor]] = {}
        self._heads: dict[str, nn.Module] = {}
        self.active: str | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self._heads)

    def _adapter_params(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.model.named_parameters() if self.config.owns(n)}

    def _reset_adapters(self) -> None:
        """Fresh adapter weights for a new task (uses torch's global generator: seed first)."""
        for _, layer in tuner_layers(self.model):
            if layer.merged:
                raise ValueError(
                    f"unmerge the {layer.peft_type} layers before adding or switching tasks"
                )
            layer.reset_parameters()

    def _stash_active(self) -> None:
        if self.active is not None:
            self._weights[self.active] = {
                n: p.detach().clone() for n, p in self._adapter_params().items()
            }

    def add_task(self, name: str, num_classes: int | None = None) -> None:
        """Add task ``name`` with fresh adapters and its own head, and make it active.

        ``num_classes``: size of a new head (fresh init); None copies the model's original head.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if name in self._heads:
            raise ValueError(f"task {name!r} already exists; tasks: {self.tasks}")
        self._stash_active()
        self._reset_adapters()
        if num_classes is None:
            head = copy.deepcopy(self._initial_head)
        else:
            if not isinstance(self._initial_head, nn.Linear):
                raise ValueError("num_classes needs the head to be an nn.Linear")
            check_int("num_classes (or None)", num_classes)
            ref = self._initial_head.weight
            head = nn.Linear(ref.shape[1], num_classes, device=ref.device, dtype=ref.dtype)
        self._heads[name] = head.requires_grad_(True)
        replace_module(self.model, self.head_name, head)
        self.active = name
        self._stash_active()

    @torch.no_grad()
    def set_active(self, name: str) -> None:
        """Make ``name`` the live task: its adapter tensors go into the layers, its head in place."""
        if name not in self._heads:
            raise ValueError(f"unknown task {name!r}; tasks: {self.tasks}")
        if name == self.active:
            return
        self._stash_active()
        params = self._adapter_params()
        for key, value in self._weights[name].items():
            params[key].copy_(value)
        replace_module(self.model, self.head_name, self._heads[name])
        self.active = name

    def __call__(self, x: torch.Tensor, task: str | None = None) -> torch.Tensor:
        if task is not None:
            self.set_active(task)
        if self.active is None:
            raise ValueError("no task yet: call add_task(name) first")
        return self.model(x)
