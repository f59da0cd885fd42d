"""What a training run recorded: :class:`History`, returned by ``train.fit`` and read by the
ledger, the recipes and the plots (per-step losses and rates, per-epoch metrics, the best epoch,
divergence, time and memory)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class History:
    """What happened during ``fit``. Epochs are 0-indexed: ``val_acc[best_epoch]`` is the best.

    Per step: ``loss``, ``lr`` (the largest group rate, i.e. the head's under layer-wise decay).
    Per epoch: ``train_loss``/``train_acc`` (averaged over the epoch's batches while the model
    was changing, as Keras reports them), ``val_loss``/``val_acc`` (after the epoch, eval mode).
    ``peak_memory_bytes``: CUDA ``max_memory_allocated`` on a GPU; on CPU an *estimate*, see
    ``memory_note``. ``train_seconds``: wall time of the whole loop including validation.
    ``phase_starts``: first epoch of each phase for multi-phase recipes (LP-FT).
    ``step_seconds``: wall time of each optimizer step (forward, backward, update), see
    :attr:`step_ms`.
    """

    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    diverged: bool = False
    message: str = ""
    train_seconds: float = 0.0
    peak_memory_bytes: int = 0
    optimizer_state_bytes: int = 0
    memory_note: str = ""
    phase_starts: dict = field(default_factory=dict)
    step_seconds: list = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    @property
    def step_ms(self) -> float:
        """Median time of one training step in ms; the first step (which also measures the
        saved activations and pays one-time costs) is left out when there are others. The
        median resists the spikes other processes cause; 0.0 before any step."""
        times = self.step_seconds[1:] or self.step_seconds
        return 1e3 * statistics.median(times) if times else 0.0

    def extend(self, other: History, phase: str) -> History:
        """Append a later phase's history (LP-FT's fine-tuning after its probe), in place."""
        offset = self.epochs_run
        self.phase_starts[phase] = offset
        for name in ("loss", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "step_seconds"):
            getattr(self, name).extend(getattr(other, name))
        if other.best_epoch is not None:
            self.best_epoch = offset + other.best_epoch
        self.stopped_early, self.diverged = other.stopped_early, self.diverged or other.diverged
        self.message = "; ".join(m for m in (self.message, other.message) if m)
        self.train_seconds += other.train_seconds
        self.peak_memory_bytes = max(self.peak_memory_bytes, other.peak_memory_bytes)
        self.optimizer_state_bytes = max(self.optimizer_state_bytes, other.optimizer_state_bytes)
        self.memory_note = other.memory_note or self.memory_note
        return self
