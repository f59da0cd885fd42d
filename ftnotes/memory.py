"""What a training step keeps in memory, counted on tensors: the one saved-tensor meter (used by
``train.fit`` for its estimate and by ``costs.measure`` for its measurement), optimizer state,
and the estimate ``fit`` reports on a CPU.

The four terms of a step (Rajbhandari et al. 2020, ZeRO, Sec. 3; Korthikanti et al. 2022 for
the activations): weights, gradients, optimizer state, and the activations autograd saves for
backward. The last are seen through ``torch.autograd.graph.saved_tensors_hooks``: every tensor
packed for backward, counted once per storage (a view keeps its whole storage alive), the
parameters' own storages left out (they are the weights, counted already).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef


def storage_key(t: torch.Tensor) -> int:
    """An id of ``t``'s storage, the same for every view of it (``StorageWeakRef.cdata``)."""
    return StorageWeakRef(t.untyped_storage()).cdata


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (non-tensors skipped)."""
    seen = {}
    for t in tensors:
        if isinstance(t, torch.Tensor):
            seen[storage_key(t)] = t.untyped_storage().nbytes()
    return sum(seen.values())


class SavedTensorMeter:
    """Bytes of what autograd saves for backward while the meter is entered, parameters excluded.

    ``with SavedTensorMeter(model.parameters()) as meter: loss = model(x)...`` then
    ``meter.bytes``; ``meter.keys`` are the storages seen (:func:`storage_key`). Entering twice
    adds to the same count (a storage is counted once). The tensors are passed through
    unchanged: the step computes exactly what it would without the meter.
    """

    def __init__(self, params):
        self.skip = {storage_key(p) for p in params}
        self.seen: dict[int, int] = {}
        self._hooks = None

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = storage_key(t)
        if key not in self.skip:
            self.seen[key] = t.untyped_storage().nbytes()
        return t

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    @property
    def keys(self) -> set[int]:
        return set(self.seen)

    @property
    def bytes(self) -> int:
        return sum(self.seen.values())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps (AdamW: exp_avg, exp_avg_sq, step)."""
    return sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if torch.is_tensor(t)
    )


def adamw_bytes(trained: int, tensors: int) -> int:
    """AdamW's state for ``trained`` parameters in ``tensors`` tensors (float32): ``exp_avg``
    and ``exp_avg_sq``, 2 x 4 bytes per parameter, and one float32 ``step`` (4 bytes) per tensor."""
    return 2 * 4 * trained + 4 * tensors


def adamw_state_bytes(model: nn.Module) -> int:
    """The bytes ``torch.optim.AdamW`` will keep for ``model``'s trainable parameters
    (:func:`adamw_bytes`); ``History.optimizer_state_bytes`` is what it did keep.

    The compute of a step shrinks far less than this: the forward is unchanged (prompts make
    it longer) and the backward still runs through every frozen layer, so notebooks 02-05
    show step time next to it."""
    trained = [p for p in model.parameters() if p.requires_grad]
    return adamw_bytes(sum(p.numel() for p in trained), len(trained))


def training_memory(model, optimizer, activation_bytes: int, device) -> tuple[int, str]:
    """``(bytes, how they were obtained)`` of a training run: CUDA's peak on a GPU; elsewhere the
    estimate weights + gradients + optimizer state + ``activation_bytes`` (one batch's)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), "CUDA max_memory_allocated"
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    total = params + grads + optimizer_state_bytes(optimizer) + activation_bytes
    return total, (
        "estimate: parameters + gradients + optimizer state + activations of one batch "
        "(measured with autograd saved-tensor hooks)"
    )
