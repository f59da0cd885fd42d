"""What "same seed" guarantees for a shipped model, and the verdict of every ``--verify``.

Float kernels differ between CPU kinds (AVX-512 vs AVX2 pick other reduction orders), between
thread counts (OpenMP splits sums differently) and between torch versions. So a retrained model is

* **identical** (same bytes) on the same kind of CPU (its instruction-set flags, not only torch's
  capability level), thread count and torch version;
* elsewhere the **same model within tolerance**: its measured metrics (source accuracy,
  transfer, held-out exact match) agree within the tolerances its declaration states
  (``tolerances`` of ``tinyvit`` and ``tiny-lm`` in :mod:`ftnotes.registry`), while single
  weights may differ a lot (training amplifies last-bit differences, so the largest weight
  difference is reported but not judged);
* else it **differs**: a real change of the recipe, the data or the library.

:func:`machine` is what every manifest records about where it was made; :func:`verdict`
compares a retrained run with the shipped one; :func:`print_verdict` is the report that
``python -m ftnotes.pretrain --verify`` and ``python -m ftnotes.pretrain_lm --verify`` print
(and both print after regenerating, against the files they replaced). Models obtained from a
registry package are not retrained: their check is the sha256 of every file
(``python -m ftnotes.obtain --check``).
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ftnotes.registry import LM_TOLERANCES, VIT_TOLERANCES  # noqa: F401  (names cited in manifests)

IDENTICAL, WITHIN, DIFFERS = "identical", "within tolerance", "differs"


#: Instruction-set flags that change which float kernels oneDNN/MKL pick. torch's capability
#: level alone is too coarse: two "AVX512" Xeons (one with AMX and AVX512-BF16) trained the same
#: command to different bytes (measured, README).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "avx_vnni",
             "amx_tile", "amx_bf16", "amx_int8")  # fmt: skip


def machine() -> dict:
    """Where a model was made: what decides whether a retrained copy is bit-identical."""
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa": _isa_flags(),
        "cpu": _cpu_name(),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }


def _isa_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ISA_FLAGS if f in have]
    except OSError:
        pass
    return []


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _lookup(manifest: dict, path: str):
    value = manifest
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


@dataclass
class Verdict:
    """The outcome of a comparison: ``status`` is one of identical / within tolerance / differs."""

    status: str
    metrics: list = field(default_factory=list)  # (path, shipped, new, |diff|, tolerance, ok)
    max_weight_diff: float = 0.0
    same_bytes: bool = False
    notes: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.status == DIFFERS else 0


def max_abs_diff(a: dict, b: dict) -> float:
    """Largest |a - b| over two state dicts with the same keys and shapes (inf if they do not fit)."""
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return math.inf
    diffs = [(a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].numel()]
    return max(diffs, default=0.0)


def verdict(shipped: dict, new: dict, tolerances: dict, same_bytes: bool,
            weight_diff: float) -> Verdict:  # fmt: skip
    """Compare a retrained manifest ``new`` with the ``shipped`` one.

    ``same_bytes``: every shipped file hashed the same. A metric missing from both manifests, or
    whose whole section the new run did not measure (``--no-transfer``), is skipped; any other
    metric missing from one side is a difference.
    """
    rows, notes = [], []
    for path, tol in tolerances.items():
        a, b = _lookup(shipped, path), _lookup(new, path)
        if a is None and b is None:
            continue
        if b is None and path.split(".")[0] not in new:  # e.g. --no-transfer: not measured
            notes.append(f"{path} not measured in the new run")
            continue
        ok = a is not None and b is not None and abs(a - b) <= tol
        rows.append((path, a, b, None if a is None or b is None else abs(a - b), tol, ok))
    for key in ("cpu_capability", "isa", "threads", "torch_version"):
        was, now = _lookup(shipped, f"machine.{key}"), _lookup(new, f"machine.{key}")
        if was is not None and was != now:
            notes.append(f"{key}: shipped {was}, here {now}: bit-identity is not expected")
    if not all(r[-1] for r in rows) or not math.isfinite(weight_diff):
        status = DIFFERS  # also with the same bytes: then the measuring code has changed
    else:
        status = IDENTICAL if same_bytes else WITHIN
    return Verdict(status, rows, weight_diff, same_bytes, notes)


def print_verdict(v: Verdict, what: str, log=print) -> None:
    """The report: status, per-metric differences, largest weight difference, machine notes."""
    log(f"verify {what}: {v.status.upper()}")
    for path, a, b, d, tol, ok in v.metrics:
        diff = "missing" if d is None else f"{d:.4f}"
        log(f"  {path:36s} shipped {a!s:>8}  new {b!s:>8}  |diff| {diff:>7}  tol {tol}"
            f"  {'ok' if ok else 'OUT OF TOLERANCE'}")  # fmt: skip
    log(f"  largest weight difference: {v.max_weight_diff:.3g}"
        f" ({'same bytes' if v.same_bytes else 'bytes differ'})")  # fmt: skip
    for note in v.notes:
        log(f"  note: {note}")
