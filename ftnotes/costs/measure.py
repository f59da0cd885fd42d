"""Measure one real training step: the four terms counted on tensors, and the process peak.

* weights, gradients, optimizer state: the bytes of the parameters, of every ``.grad`` and of
  every tensor in ``optimizer.state`` after one ``optimizer.step()``;
* saved activations: every tensor autograd packs for backward, seen through
  ``torch.autograd.graph.saved_tensors_hooks`` by the one meter ``fit`` uses too
  (:class:`ftnotes.memory.SavedTensorMeter`), deduplicated by storage (a view keeps its whole
  storage alive) and excluding the parameters' own storages;
* with gradient checkpointing, ``torch.utils.checkpoint`` pushes its own hooks, so ours cannot
  see what it keeps: there we count the storages made during the forward that are still alive
  when it returns (a ``TorchDispatchMode`` with weak references); without checkpointing that
  count equals the hooks' count (tests/test_costs.py asserts it);
* on CUDA, ``torch.cuda.max_memory_allocated`` over the step; on Linux CPUs, the rise of the
  process's peak resident memory (``VmHWM``), a coarse cross-check (allocator caches, libraries);
* with ``track_peak=True`` (CPU), the peak of the bytes of every storage made during the forward
  and backward that is alive at once (what the step adds to the weights: the activations, the
  loss's backward, the gradients made so far), by the same weak references, checked after
  every op.

fp16 autocast runs with a ``torch.amp.GradScaler``, as it must on a GPU without bf16 (a T4).
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..memory import SavedTensorMeter, storage_bytes, storage_key
from .estimate import Setup, matches


class _LiveStorages(TorchDispatchMode):
    """Remembers (weakly) every storage an op creates."""

    def __init__(self):
        super().__init__()
        self.refs: dict[int, tuple[StorageWeakRef, int]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                ref = StorageWeakRef(t.untyped_storage())
                self.refs.setdefault(ref.cdata, (ref, t.untyped_storage().nbytes()))
        return out

    def alive(self, exclude: set[int]) -> int:
        return sum(n for key, (ref, n) in self.refs.items() if not ref.expired() and key not in exclude)


class _PeakStorages(TorchDispatchMode):
    """The most bytes of storages made by ops under this mode that were alive at one time
    (checked after every op, when an op's inputs and outputs coexist; forward and backward:
    autograd runs the backward's ops under the mode that was active at ``backward()``)."""

    def __init__(self, exclude: set[int]):
        super().__init__()
        self.exclude = exclude  # storages that existed before (parameters, the batch): views of them are free
        self.refs: dict[int, tuple[StorageWeakRef, int]] = {}
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        new = False
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                ref = StorageWeakRef(t.untyped_storage())
                if ref.cdata not in self.refs and ref.cdata not in self.exclude:
                    self.refs[ref.cdata], new = (ref, t.untyped_storage().nbytes()), True
        if new:  # only a new storage can raise the peak
            self.refs = {k: v for k, v in self.refs.items() if not v[0].expired()}
            self.peak = max(self.peak, sum(n for _, n in self.refs.values()))
        return out


def _autocast(device: torch.device, precision: str):
    half = {"bf16-autocast": torch.bfloat16, "fp16-autocast": torch.float16}.get(precision)
    return torch.autocast(device.type, dtype=half or torch.bfloat16, enabled=half is not None)


def _scaler(device: torch.device, precision: str):
    """fp16 needs loss scaling (its smallest normal number is 6e-5): a GradScaler, else None."""
    return torch.amp.GradScaler(device.type) if precision == "fp16-autocast" else None


def _backward_and_step(loss, opt, scaler, during_backward=None) -> None:
    """backward (inside ``during_backward``, a context such as :class:`_PeakStorages`), then
    the optimizer step; with a GradScaler, which skips the step if a gradient overflowed."""
    with during_backward or contextlib.nullcontext():
        (loss if scaler is None else scaler.scale(loss)).backward()
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()


def prepare(model, setup: Setup, lora_alpha: float | None = None):
    """Apply ``setup``'s method (and checkpointing) to a transformers model; returns the model."""
    if setup.gradient_checkpointing:
        # a cache is for generation and checkpointing recomputes the layers: say so in the
        # config, or every forward logs "`use_cache=True` is incompatible with gradient checkpointing"
        model.config.use_cache = False
        model.activation_checkpointing_enable()
    if setup.method == "lora":
        import warnings

        from peft import LoraConfig, get_peft_model

        heads = [h for h in setup.heads if hasattr(model, h)]
        targets = [t for t in setup.target_modules
                   if any(matches(n, [t]) for n, _ in model.named_modules())]  # fmt: skip
        cfg = LoraConfig(r=setup.r, lora_alpha=lora_alpha or 2 * setup.r, lora_dropout=0.0,
                         target_modules=targets, modules_to_save=heads)  # fmt: skip
        with warnings.catch_warnings():  # peft 0.21 still reads transformers' deprecated name
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
            return get_peft_model(model, cfg)
    if setup.method == "probe":
        for name, p in model.named_parameters():
            p.requires_grad = matches(name.rsplit(".", 1)[0], setup.heads)
    return model


def make_optimizer(params, name: str):
    params = [p for p in params if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-5)
    return torch.optim.SGD(params, lr=1e-5, momentum=0.9 if name == "sgd-momentum" else 0.0)


def _peak_rss_reset() -> int | None:
    """Reset Linux's peak-RSS counter and return the current RSS in bytes (None elsewhere)."""
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kb(status, "VmRSS") * 1024
    except OSError:
        return None


def _status_kb(status: Path, field: str) -> int:
    line = next(x for x in status.read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def measure_step(model, batch: dict, setup: Setup, track_live: bool | None = None,
                 track_peak: bool = False) -> dict:  # fmt: skip
    """Run one forward/backward/optimizer step of ``model`` on ``batch`` and count bytes.

    ``track_live`` (default: only with checkpointing, it slows every op) counts the storages
    still alive after the forward (CPU only). ``track_peak`` adds ``"peak of forward and
    backward"``: the most bytes of storages made by the step alive at one time (CPU only)."""
    device = next(model.parameters()).device
    params = list(model.parameters())
    opt = make_optimizer(params, setup.optimizer)
    meter = SavedTensorMeter(params)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    rss = None if cuda else _peak_rss_reset()
    track = (setup.gradient_checkpointing if track_live is None else track_live) and not cuda
    live = _LiveStorages()
    autocast, scaler = _autocast(device, setup.precision), _scaler(device, setup.precision)
    before_step = {storage_key(t) for t in [*params, *batch.values()]}
    peak = _PeakStorages(before_step) if track_peak and not cuda else None
    with meter, (live if track else contextlib.nullcontext()), autocast, peak or contextlib.nullcontext():
        loss = model(**batch).loss
    exclude = meter.skip | {storage_key(loss)}
    alive = live.alive(exclude) if track else None
    # Checkpointing hides what it keeps from our hooks: add the storages still alive after the
    # forward that the hooks did not see (the layers' inputs), once each.
    kept = meter.bytes + (live.alive(exclude | meter.keys) if track else 0)
    _backward_and_step(loss, opt, scaler, peak)
    out = {
        "weights": storage_bytes(params),
        "gradients": storage_bytes(p.grad for p in params),
        "optimizer state": storage_bytes(v for s in opt.state.values() for v in s.values()),
        "saved by autograd": meter.bytes,
        "alive after forward": alive,
    }
    if cuda:
        torch.cuda.synchronize()
        out["cuda peak - start"] = torch.cuda.max_memory_allocated() - before
    elif rss is not None:
        out["process peak - start"] = _status_kb(Path("/proc/self/status"), "VmHWM") * 1024 - rss
    out["activations"] = out["saved by autograd"] if not setup.gradient_checkpointing else kept
    if peak is not None:
        out["peak of forward and backward"] = peak.peak
    opt.zero_grad(set_to_none=True)
    return out


def random_batch(cfg, setup: Setup, device="cpu", seed: int = 0) -> dict:
    """Seeded random inputs of the right shapes (pixels or token ids) and labels (a causal LM's
    labels are its input ids: transformers shifts them by one)."""
    g = torch.Generator().manual_seed(seed)
    b = setup.batch_size
    labels = torch.randint(0, cfg.num_labels, (b,), generator=g)
    if cfg.model_type == "vit":
        x = {"pixel_values": torch.randn(b, cfg.num_channels, cfg.image_size, cfg.image_size, generator=g)}
    else:  # token ids below the pad id, so every position counts
        x = {"input_ids": torch.randint(0, cfg.vocab_size - 1, (b, setup.seq_len), generator=g)}
        if setup.task == "causal-lm":
            labels = x["input_ids"].clone()
    return {k: v.to(device) for k, v in {**x, "labels": labels}.items()}


def build(cfg, setup: Setup, seed: int = 0, device="cpu"):
    """A randomly initialised model of ``cfg`` with ``setup`` applied, in train mode."""
    from .estimate import meta_model

    torch.manual_seed(seed)
    cls = type(meta_model(cfg, task=setup.task))
    with torch.device(device):
        model = cls(copy.deepcopy(cfg))  # prepare() may switch the cache off: not in yours
    return prepare(model.train(), setup)


def measure(cfg, setup: Setup, seed: int = 0, device="cpu", track_live=None,
            track_peak: bool = False) -> dict:  # fmt: skip
    """Build, run one step and count: see :func:`measure_step`."""
    model = build(cfg, setup, seed, device)
    batch = random_batch(cfg, setup, device, seed)
    return measure_step(model, batch, setup, track_live, track_peak)


def time_step(cfg, setup: Setup, repeats: int = 3, seed: int = 0, device="cpu") -> float:
    """Median wall seconds of one forward/backward/optimizer step (after one warm-up step)."""
    import statistics
    import time

    model = build(cfg, setup, seed, device)
    batch = random_batch(cfg, setup, device, seed)
    opt = make_optimizer(model.parameters(), setup.optimizer)
    device = torch.device(device)
    scaler = _scaler(device, setup.precision)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with _autocast(device, setup.precision):
            loss = model(**batch).loss
        _backward_and_step(loss, opt, scaler)
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])
