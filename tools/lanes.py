"""Run the test suite as two pytest processes side by side: one per core.

Why: every test and notebook runs torch on one thread (the course's rule, see the README), so a
single pytest process leaves the second core of a 2-core machine idle, and the whole suite took
80-86 of the CI's 90 minutes on a 2-core Ice Lake Xeon. Two single-threaded processes do not slow
each other there: the reference step timed 17-18 ms with a second one running beside it and
19-21 ms alone. The suite must pass with one core kept busy anyway (issue 31), which is what each
lane sees of the other.

The lanes split by what they execute, so that nothing runs twice in the same folder at once:

- ``notebooks``: nbval over every notebook, the widget-panel test (which runs the notebooks in
  place again) and the browser test, one after another, so the per-notebook timing summary
  (``conftest.py``) keeps its reference steps timed beside each notebook;
- ``units``: everything else under ``tests/``.

Each lane's output is printed line by line as it comes, after the lane's name; the exit status
is the first failing lane's, 0 when both pass. ``--lanes 1`` runs one pytest over everything.

    python tools/lanes.py [--lanes 1|2] -- <pytest arguments given to every lane>

Plain standard library; run it from the repository root with the environment's python.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

NOTEBOOK_TESTS = ["tests/test_panels.py", "tests/test_browser.py"]
LANES = {
    "notebooks": ["notebooks", *NOTEBOOK_TESTS],
    "units": ["tests", *(f"--ignore={t}" for t in NOTEBOOK_TESTS)],
}
SERIAL = {"all": ["tests", "notebooks"]}


def parse(argv: list[str]) -> tuple[int, list[str]]:
    """``(lanes, pytest arguments)`` from ``[--lanes N] [--] ARGS...``."""
    lanes, rest = 2, list(argv)
    if rest[:1] == ["--lanes"]:
        value = rest[1] if len(rest) > 1 else ""
        if value not in ("1", "2"):
            raise SystemExit(f"lanes.py: --lanes must be 1 or 2, got {value!r}")
        lanes, rest = int(value), rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return lanes, rest


def _pump(name: str, proc: subprocess.Popen, lock: threading.Lock) -> None:
    width = max(map(len, LANES))
    for line in proc.stdout:  # whole lines: two lanes never mix within one
        with lock:
            sys.stdout.write(f"{name:>{width}} | {line}")
            sys.stdout.flush()


def run(lanes: dict[str, list[str]], pytest_args: list[str]) -> int:
    """Start one ``python -m pytest`` per lane, print their lines, return the exit status."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # a pipe would hold pytest's lines in blocks
    lock, procs, pumps, started = threading.Lock(), {}, {}, time.monotonic()
    try:
        for name, paths in lanes.items():
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "pytest", *paths, *pytest_args], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1,
            )  # fmt: skip
            pumps[name] = threading.Thread(target=_pump, args=(name, procs[name], lock))
            pumps[name].start()
        codes = {}
        while len(codes) < len(procs):  # each lane reported when it ends, in the order they end
            for name, proc in procs.items():
                if name not in codes and proc.poll() is not None:
                    codes[name] = proc.returncode
                    pumps[name].join()  # its last lines first
                    with lock:
                        print(f"== lane {name}: pytest exit {codes[name]} after "
                              f"{time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
            time.sleep(0.5)
    finally:  # interrupted (Ctrl-C, a CI time limit): no pytest is left running
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for pump in pumps.values():
            pump.join()
    return next((codes[name] for name in lanes if codes[name]), 0)


def main(argv: list[str] | None = None) -> int:
    lanes, pytest_args = parse(sys.argv[1:] if argv is None else argv)
    # a TERM (a CI time limit, kill) becomes SystemExit, so run()'s cleanup ends the lanes too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    return run(LANES if lanes == 2 else SERIAL, pytest_args)


if __name__ == "__main__":
    sys.exit(main())
