"""The cost ledger: what each fine-tuning run bought, and what it cost.

Accuracy alone hides the trade-offs that decide between methods: how many parameters train,
how much optimizer memory that takes, how long training and inference take, and how many bytes
must be stored per task. ``record_run`` measures all of them for one trained model; ``Ledger``
collects the rows and prints them as a markdown table.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field

import torch

from .checks import check_int
from .evaluate import accuracy, as_tensors, latency_ms, source_retention
from .utils import count_params


@dataclass
class RunRecord:
    """One row of the ledger. Bytes are bytes; times are seconds except ``latency_ms``.

    ``checkpoint_bytes``: what one would save for this task: the full state dict when every
    parameter trained, else only the trainable parameters (PEFT, probes). ``source_acc`` is
    ``None`` where no source head was given. ``step_ms``: median time of one training step
    (forward, backward, optimizer update; ``History.step_ms``).
    """

    name: str
    target_acc: float
    source_acc: float | None
    trainable_params: int
    total_params: int
    optimizer_state_bytes: int
    peak_memory_bytes: int
    train_seconds: float
    latency_ms: float
    checkpoint_bytes: int
    full_checkpoint_bytes: int
    extra: dict = field(default_factory=dict)
    step_ms: float = 0.0


class Ledger:
    """A list of :class:`RunRecord` rows with a markdown view."""

    COLUMNS = (
        ("name", "run", "{}"),
        ("target_acc", "target acc", "{:.3f}"),
        ("source_acc", "source acc", "{:.3f}"),
        ("trainable_params", "trainable", "{:,}"),
        ("total_params", "total", "{:,}"),
        ("optimizer_state_bytes", "optim state KB", "{:.1f}"),
        ("peak_memory_bytes", "peak mem MB", "{:.2f}"),
        ("train_seconds", "train s", "{:.1f}"),
        ("step_ms", "step ms", "{:.2f}"),
        ("latency_ms", "latency ms", "{:.2f}"),
        ("checkpoint_bytes", "checkpoint KB", "{:.1f}"),
    )
    SCALE = {"optimizer_state_bytes": 1e3, "checkpoint_bytes": 1e3, "peak_memory_bytes": 1e6}

    def __init__(self, records=()):
        self._records: list[RunRecord] = []
        for r in records:
            self.add(r)

    def add(self, record: RunRecord) -> RunRecord:
        if not isinstance(record, RunRecord):
            raise ValueError(f"record must be a RunRecord, got {type(record).__name__}")
        self._records.append(record)
        return record

    @property
    def records(self) -> list[RunRecord]:
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def to_dicts(self) -> list[dict]:
        return [asdict(r) for r in self._records]

    def _cell(self, key, fmt, value) -> str:
        if value is None:
            return "-"
        return fmt.format(value / self.SCALE[key] if key in self.SCALE else value)

    def to_markdown(self) -> str:
        """A markdown table, one row per run (``-`` where a value does not apply)."""
        head = "| " + " | ".join(label for _, label, _ in self.COLUMNS) + " |"
        rule = "|" + "|".join("---" for _ in self.COLUMNS) + "|"
        rows = [
            "| " + " | ".join(self._cell(k, f, getattr(r, k)) for k, _, f in self.COLUMNS) + " |"
            for r in self._records
        ]
        return "\n".join([head, rule, *rows])

    def _repr_markdown_(self) -> str:  # Jupyter shows the table when the ledger ends a cell
        return self.to_markdown()


def cost_shares(records, reference: str = "full_ft", show: bool = True) -> dict[str, dict]:
    """What each run costs as a fraction of the ``reference`` run's (by name; full fine-tuning):
    trainable parameters, optimizer state (measured bytes) and the time of one training step
    (``RunRecord.step_ms``). Prints a table unless ``show=False``; returns
    ``{name: {"trainable": ..., "optimizer state": ..., "step time": ...}}``.

    The first two fall together (AdamW keeps 8 bytes per trained parameter); the step time
    need not: the forward pass is the whole network's either way (prompts even lengthen it) and
    the backward still passes through every frozen layer to reach the trained ones.
    """
    records = records.records if isinstance(records, Ledger) else list(records)
    by_name = {r.name: r for r in records}
    if reference not in by_name:
        raise ValueError(f"reference must name one of the runs {sorted(by_name)}, got {reference!r}")
    ref = by_name[reference]
    shares = {
        r.name: {
            "trainable": r.trainable_params / ref.trainable_params,
            "optimizer state": r.optimizer_state_bytes / ref.optimizer_state_bytes,
            "step time": r.step_ms / ref.step_ms if ref.step_ms else float("nan"),
        }
        for r in records
    }
    if show:
        w = max(len("run"), *(len(r.name) for r in records))
        print(f"{'run':{w}s} {'trainable':>10s} {'optim state':>12s} {'step ms':>8s} "
              f"{'step time':>10s}   (shares: of {reference}'s)")  # fmt: skip
        for r in records:
            s = shares[r.name]
            print(f"{r.name:{w}s} {s['trainable']:10.1%} {s['optimizer state']:12.1%} "
                  f"{r.step_ms:8.2f} {s['step time']:10.0%}")  # fmt: skip
    return shares


def state_dict_bytes(state_dict: dict) -> int:
    """Size of ``torch.save(state_dict)``: the bytes a checkpoint file would take."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getbuffer().nbytes


def trainable_state_dict(model) -> dict:
    """Only the parameters with ``requires_grad``: what a probe or PEFT run needs to save."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def record_run(name: str, model, history, task, *, source_head=None, source_test=None,
               forward=None, latency_batch: int = 64, extra=None) -> RunRecord:  # fmt: skip
    """Measure everything about a trained ``model`` and its ``history`` (from ``fit``).

    ``target_acc``: accuracy on ``task.test``. ``source_acc``: ``source_retention`` with
    ``source_head`` on ``source_test`` (both or neither). Latency: median forward time on the
    first ``latency_batch`` test images
    (:func:`evaluate.latency_ms`). The trainable/total split is read from ``model`` now.
    """
    if (source_head is None) != (source_test is None):
        raise ValueError("source_head and source_test must be given together (or neither)")
    check_int("latency_batch", latency_batch)
    X_test, _ = as_tensors(task.test, "task.test")
    trainable, total = count_params(model, trainable_only=True), count_params(model)
    full_bytes = state_dict_bytes(model.state_dict())
    ckpt = full_bytes if trainable == total else state_dict_bytes(trainable_state_dict(model))
    return RunRecord(
        name=name,
        target_acc=accuracy(model, task.test, forward=forward),
        source_acc=None
        if source_head is None
        else source_retention(model, source_head, source_test),
        trainable_params=trainable,
        total_params=total,
        optimizer_state_bytes=history.optimizer_state_bytes,
        peak_memory_bytes=history.peak_memory_bytes,
        train_seconds=history.train_seconds,
        step_ms=history.step_ms,
        latency_ms=latency_ms(model, X_test[:latency_batch], forward=forward),
        checkpoint_bytes=ckpt,
        full_checkpoint_bytes=full_bytes,
        extra={
            "latency_batch": min(latency_batch, len(X_test)),
            "epochs": history.epochs_run,
            "diverged": history.diverged,
            **(extra or {}),
        },  # fmt: skip
    )
