"""The one place that seeds random generators, picks the device and pins torch's threads.

Every notebook and script calls :func:`set_seed` right before a random step that matters
(minGPT's ``utils.set_seed`` habit), :func:`get_device` instead of hard-coding ``"cpu"``, and
:func:`pin_threads` once at the start (the course's one thread rule).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .checks import check_int  # re-exported: the validation vocabulary lives in ftnotes.checks

__all__ = ["set_seed", "get_device", "pinned_threads", "model_device", "check_int", "count_params",
           "replace_dir", "atomic_write", "write_json", "save_weights"]  # fmt: skip


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device) for a reproducible run."""
    check_int("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    return kind == "cpu" or (kind == "mps" and mps is not None and mps.is_available())


def get_device(prefer=None) -> torch.device:
    """Pick the device: ``prefer`` (or env ``FTNOTES_DEVICE``) if given, else cuda, then mps, then cpu.

    A requested device this machine lacks is a ValueError naming where the request came from
    (torch's own "no NVIDIA driver" error never mentions ``FTNOTES_DEVICE``).
    """
    source = "device"
    if prefer is None and os.environ.get("FTNOTES_DEVICE"):
        prefer, source = os.environ["FTNOTES_DEVICE"], "FTNOTES_DEVICE"
    if isinstance(prefer, torch.device):
        prefer = str(prefer)
    if prefer is not None and not isinstance(prefer, str):
        raise ValueError(f"device must be None, a str or a torch.device, got {prefer!r}")
    if prefer:
        allowed = ("cpu", "cuda", "mps")
        kind = prefer.split(":")[0]
        if kind not in allowed:
            raise ValueError(f"{source} must be one of {allowed}, got {prefer!r}")
        if not _available(kind):
            unset = " (unset it to pick automatically)" if source == "FTNOTES_DEVICE" else ""
            raise ValueError(
                f"{source}={prefer!r} but this machine has no {kind} device{unset}; use 'cpu'"
            )
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


THREADS_ENV = "FTNOTES_THREADS"
THREADS_HELP = "torch threads (default: $FTNOTES_THREADS, else 1: the course's one thread rule)"


def default_threads() -> int:
    """The course's torch thread count: ``$FTNOTES_THREADS`` if set, else 1.

    One rule for every notebook, bench, ``Trainer`` run and command-line tool. The models here
    are tiny: a second thread only adds synchronisation, and when another process keeps a core
    busy, threads that wait for each other make every step several times slower (notebook 07
    with torch's default of one thread per core: 23x on a 2-core machine with one busy core).
    A ValueError names the variable when it is not a whole number >= 1.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 1
    cores = os.cpu_count() or 1
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= cores:
        raise ValueError(
            f"{THREADS_ENV} must be a whole number of torch threads from 1 to {cores} (this "
            f"machine's cores), got {raw!r}; unset it for the default, 1"
        )
    return int(raw)


def pin_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads by the course's rule and return the count.

    ``n`` if given, else :func:`default_threads` (``$FTNOTES_THREADS``, else 1). Every notebook
    calls it in its first code cell. ``torch.set_num_threads`` sets the OpenMP and MKL pools
    that CPU kernels use; transformers' ``Trainer`` keeps the count (it changes it only for
    multi-process CPU training, which the course never starts). The BLAS under NumPy and
    scikit-learn gets the same count (``threadpoolctl``, scikit-learn's own dependency): with
    two BLAS threads one TF-IDF logistic regression took 90x longer on a busy 2-core machine.
    """
    n = default_threads() if n is None else n
    check_int("n", n)
    cores = os.cpu_count() or 1
    if n > cores:  # more threads than cores: they take turns, and every step waits for the last
        raise ValueError(f"n must be at most this machine's {cores} cores, got {n}")
    torch.set_num_threads(n)
    threadpool_limits(n)
    return n


@contextlib.contextmanager
def pinned_threads(n: int | None = None):
    """Run the block with torch at ``n`` threads (default: :func:`default_threads`), then
    restore the previous count.

    Where the package trains or times outside a notebook (grading a solution, a check, the
    bench): on a busy machine torch's default of one thread per core spins workers that wait
    for each other (a LoRA run took 6.8 s instead of 2.6 s with one other busy core), and
    fixed threads also keep the float results the same from run to run.
    """
    before = torch.get_num_threads()
    with threadpool_limits(None):  # restores the BLAS pools on exit
        pin_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters in ``model`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def progress_disabled() -> bool:
    """Whether ``$TQDM_DISABLE`` asks for no progress bars (``make test`` sets it).

    tqdm reads that variable itself, except in Jupyter: ``tqdm.notebook`` (what ``tqdm.auto``
    picks there, and what ``Trainer`` uses) passes ``disable=False`` explicitly, which
    overrides it. So the course's bars read it here: ``fit``'s and every ``Trainer``'s
    (:mod:`ftnotes.hf_trainer`).
    """
    return os.environ.get("TQDM_DISABLE", "") not in ("", "0")


@functools.cache  # one per process; kept referenced, so it is deleted only when the process ends
def _scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="ftnotes-trainer-")


def scratch_dir() -> str:
    """One empty folder per process for the ``output_dir`` of a ``Trainer`` that saves nothing
    (``save_strategy="no"``), deleted when the process ends. A ``mkdtemp`` per run left an empty
    folder in the system's temp folder behind every training (a test run left about 70)."""
    return _scratch().name


def replace_dir(new, final) -> Path:
    """Move the finished folder ``new`` to ``final`` (same parent folder), replacing what is
    there. The previous folder is renamed aside (to ``.<name>.old``) and deleted only once
    ``new`` is in place: writers build ``new`` completely first, so a failed write never
    touches the previous folder."""
    new, final = Path(new), Path(final)
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def atomic_write(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` without ever leaving a half-written file.

    The bytes go to a temp file in the same folder, then ``os.replace`` swaps it in: if anything
    fails (disk full, Ctrl-C), the user's previous file is still there, untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else bytes(data)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:  # name the file the user asked for, not our random temp name
        raise OSError(err.errno, f"cannot write {path}: {err.strerror}", str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; saved weights should be readable
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path, obj, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`atomic_write`): ``indent`` spaces
    (None: one line) and a closing newline, the shape of every JSON file the course writes."""
    return atomic_write(path, json.dumps(obj, indent=indent) + "\n")


def save_weights(model_or_state_dict, path) -> Path:
    """``torch.save`` a model's state dict (or a state dict) atomically; returns the path.

    Serialised in memory first: torch.save names the archive's root folder after the file it
    writes, so writing through a random temp name would make identical weights hash differently.
    """
    state = getattr(model_or_state_dict, "state_dict", None)
    state = state() if callable(state) else model_or_state_dict
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write(path, buf.getvalue())
