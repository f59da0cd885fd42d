"""The argument checks of the command-line tools (``bench``, ``lm_bench``, ``reallm_bench``,
``text.bench``, ``pretrain``, ``pretrain_lm``), written once as ``argparse`` ``type=`` functions,
and the options the benches share (:func:`bench_parser`).

argparse calls them while it parses, before any work starts, and turns their
``ArgumentTypeError`` into a usage error (exit status 2) that names the option, the value and
what is allowed, e.g. ``argument --steps: must be an int >= 1, got '0'``. A run that takes
minutes must never end in a traceback its arguments could have predicted, nor lose its results
to an output path that could not be written.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

NAME_MAX = 255  # bytes in one file or folder name on Linux and macOS file systems


def _int(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(f"must be an int >= {minimum}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1 (steps, seeds, a batch size, examples)."""
    return _int(text, 1)


def nonnegative_int(text: str) -> int:
    """An int >= 0 (a seed; a count where 0 means none)."""
    return _int(text, 0)


def threads(text: str) -> int:
    """torch threads: an int from 1 (``torch.set_num_threads(0)`` is a RuntimeError) to this
    machine's cores (``utils.pin_threads`` refuses more: they would take turns on the cores)."""
    cores = os.cpu_count() or 1
    try:
        value = _int(text, 1)
    except argparse.ArgumentTypeError:
        value = None
    if value is None or value > cores:
        raise argparse.ArgumentTypeError(f"torch threads must be an int from 1 to this machine's "
                                         f"{cores} cores, got {text!r}")  # fmt: skip
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate): not 0, not negative, not inf or nan."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def names(allowed):
    """A type for a comma-separated list of names from ``allowed`` (at least one)."""
    allowed = tuple(allowed)

    def parse(text: str) -> tuple[str, ...]:
        got = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        unknown = [n for n in got if n not in allowed]
        if not got or unknown:
            what = f"unknown {unknown}" if unknown else "no name"
            raise argparse.ArgumentTypeError(f"{text!r} has {what}; give a comma-separated list "
                                             f"of {', '.join(allowed)}")  # fmt: skip
        return got

    parse.__name__ = "names"
    return parse


def name_rate(allowed):
    """A type for ``NAME=RATE`` (e.g. ``full=2e-3``): NAME one of ``allowed``, RATE finite > 0."""
    allowed = tuple(allowed)

    def parse(text: str) -> tuple[str, float]:
        name, _, rate = text.partition("=")
        try:
            value = positive_float(rate)
        except argparse.ArgumentTypeError:
            value = None
        if name not in allowed or value is None:
            raise argparse.ArgumentTypeError(f"{text!r}: expected METHOD=RATE with METHOD one of "
                                             f"{list(allowed)} and RATE a finite number > 0, "
                                             f"e.g. full=2e-3")  # fmt: skip
        return name, value

    parse.__name__ = "name_rate"
    return parse


def _nearest_existing(path: Path) -> Path:
    for folder in [path.parent, *path.parent.parents]:
        if folder.exists():
            return folder
    return Path(".")


def output_problem(path: Path) -> str:
    """Why a file could not be written at ``path`` (created with its missing folders, swapped
    in atomically), or '' if it can. Probes the folder with a real temporary file: as root,
    ``os.access`` says yes to ``/proc``."""
    too_long = [p for p in path.parts if len(p.encode()) > NAME_MAX]
    if too_long:
        return (f"a name in it is {len(too_long[0].encode())} bytes long ({too_long[0][:24]}...); "
                f"file systems allow {NAME_MAX}")  # fmt: skip
    try:
        if path.is_dir():
            return "is a folder, not a file"
        if path.exists() and not path.is_file():
            return "exists and is not a regular file (a device or a pipe); the result would replace it"
        folder = _nearest_existing(path)
        if not folder.is_dir():
            return f"{folder} is not a folder"
        if path.exists() and not os.access(path, os.W_OK):
            return "the file exists and is read-only"
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ftnotes-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        return f"cannot write there ({err.strerror or err})"
    return ""


def output_path(text: str) -> Path:
    """A file the tool will write at the end (``--json``, ``--markdown``): checked now, so a long
    run never ends unable to save. Missing folders are allowed (they are created, as
    ``utils.atomic_write`` does); an unwritable folder, a folder in place of the file, a
    device, or a name too long for the file system are refused."""
    path = Path(text)
    problem = output_problem(path) if text else "is empty"
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}; give a file path in a folder "
                                         f"you can write")  # fmt: skip
    return path


def bench_parser(prog: str, description: str, methods, lr_from: str,
                 seeds: int = 3) -> argparse.ArgumentParser:  # fmt: skip
    """A parser with the options every bench shares, each checked while parsing: ``--seeds``,
    ``--methods`` (a comma list of ``methods``), ``--lr METHOD=RATE`` (repeatable, instead of
    ``lr_from``'s), ``--threads`` (the course's rule: 1, or ``$FTNOTES_THREADS``) and
    ``--json`` (its folder checked before the bench starts, the file written atomically)."""
    from ftnotes.utils import THREADS_HELP, default_threads

    methods = tuple(methods)
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--seeds", type=positive_int, default=seeds,
                    help=f"seeds 0..N-1 (default {seeds})")  # fmt: skip
    ap.add_argument("--methods", type=names(methods), default=methods,
                    help=f"comma list (default: all of {','.join(methods)})")  # fmt: skip
    ap.add_argument("--lr", type=name_rate(methods), action="append", default=[],
                    metavar="METHOD=RATE", help=f"a method's learning rate instead of "
                    f"{lr_from} (repeatable)")  # fmt: skip
    ap.add_argument("--threads", type=threads, default=default_threads(), help=THREADS_HELP)
    ap.add_argument("--json", type=output_path, help="also write every run as JSON (checked "
                    "before the bench starts; written atomically)")  # fmt: skip
    return ap
