"""How much slower a notebook runs while another process keeps one core busy.

Runs the notebook (nbval, as ``make test`` does) alternately on the machine as it is ("idle")
and with ``yes > /dev/null`` spinning beside it ("busy"): idle, busy, idle, busy, ... so that a
change in the machine's own load falls on both kinds of run alike. Prints every run's wall time
with the load average at its start, then the ratio of the median busy time to the median idle
time. Issue 31: with torch's default threads (one per core) notebook 07 took 23x its idle time
with one busy core; pinned to one thread (``ftnotes.utils.pin_threads``) a notebook should take
at most 1.3x.

    python tools/busy_core.py notebooks/07_huggingface.ipynb [--pairs 2]

Plain standard library; run it from the repository root (the kernel imports this checkout's
``ftnotes`` through PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(path: Path) -> float:
    """Wall seconds of one nbval run of ``path``; a failed run is an error (its time means nothing)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TQDM_DISABLE="1")
    cmd = [sys.executable, "-m", "pytest", str(path), "--nbval-lax", "--nbval-current-env", "-q",
           "-p", "no:cacheprovider"]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{path.name} failed (exit {run.returncode}):\n{run.stdout[-3000:]}")
    return seconds


def timed(path: Path, busy: bool) -> float:
    """One run, with one core kept busy by ``yes`` when ``busy``."""
    spinner = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if busy else None
    try:
        return run_notebook(path)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook", type=Path, help="a notebook path, e.g. notebooks/07_huggingface.ipynb")
    ap.add_argument("--pairs", type=int, default=2, help="idle/busy pairs, alternated (default 2)")
    args = ap.parse_args(argv)
    if not args.notebook.is_file() and (ROOT / args.notebook).is_file():
        args.notebook = ROOT / args.notebook  # a path from the repository root
    if not args.notebook.is_file():
        ap.error(f"notebook: {args.notebook} is not a file")
    if args.pairs < 1:
        ap.error(f"--pairs must be an int >= 1, got {args.pairs}")
    times = {"idle": [], "busy": []}
    print(f"{args.notebook.name}: {os.cpu_count()} cores; idle and busy runs alternated")
    for _ in range(args.pairs):
        for kind in ("idle", "busy"):
            load = os.getloadavg()[0]
            times[kind].append(timed(args.notebook, kind == "busy"))
            print(f"  {kind:4s} {times[kind][-1]:7.1f} s   (1-minute load {load:.1f} at the start)",
                  flush=True)  # fmt: skip
    idle, busy = (statistics.median(times[k]) for k in ("idle", "busy"))
    print(f"median idle {idle:.1f} s, busy {busy:.1f} s: busy / idle = {busy / idle:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
