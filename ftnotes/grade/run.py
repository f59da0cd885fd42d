"""Running a notebook in the sandboxed kernel under one wall clock.

The clock starts when the kernel is launched and stops after the last cell: kernel start,
imports and every cell count against the limit, as at IOAI 2026 ("the ONLY time limit is the
wall clock"). A timer kills the sandbox at the deadline, whatever the notebook is doing (a
cell that ignores interrupts, a child that ignores SIGTERM); nbclient's per-cell timeout is
only a backstop. After the last cell, or a failure, the sandbox is killed the same way before
the grader reads anything the notebook wrote.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
LOG_TAIL_LINES = 20
OUTPUT_CAP = 4 << 20  # bytes of cell output the grader keeps; a flood is dropped, not hoarded
BANNER = re.compile(r"(NOTE: When using the `ipython kernel`|To exit, you will have|\"quit\" from a "
                    r"client|To read more about this, see|To connect another client|\s+--existing )")  # fmt: skip


@dataclass
class Run:
    """What running the notebook gave: ``status`` "ran", "time limit exceeded" or "error";
    ``seconds`` on the one clock; ``kernel_s`` of it starting the kernel; the log's lines."""

    status: str
    message: str
    seconds: float
    kernel_s: float | None = None
    log: list = field(default_factory=list)


class CappedClient(NotebookClient):
    """nbclient that keeps at most :data:`OUTPUT_CAP` bytes of output: a notebook printing in a
    loop would otherwise fill the grader's memory until the clock stops it."""

    kept = 0

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(
            len(str(v)) for v in content.get("data", {}).values())
        if self.kept > OUTPUT_CAP:
            return None
        self.kept += size
        if self.kept > OUTPUT_CAP:
            outs.append(nbformat.v4.new_output("stream", name="stderr", text=(
                f"[the grader dropped the rest of this run's output: over {OUTPUT_CAP >> 20} MiB]")))
            return None
        return super().output(outs, msg, display_id, cell_index)


def cell_label(nb, index: int) -> str:
    first = next((ln for ln in nb.cells[index].source.splitlines() if ln.strip()), "")
    number = sum(c.cell_type == "code" for c in nb.cells[: index + 1])
    return f"code cell {number} (`{first.strip()[:60]}`)"


def kill(km) -> None:
    """SIGKILL the kernel's first process (bwrap: the whole sandbox goes with it)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def notebook_log(nb, kernel_log: str = "") -> list[str]:
    """The run's log: every executed cell's printed text and errors, then the kernel's own
    stderr (crashes below Python, e.g. a process killed for memory), ANSI colours removed."""
    lines = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                lines += out.get("text", "").splitlines()
            elif out.get("output_type") == "error":
                lines += [f"--- {cell_label(nb, index)} raised:"]
                lines += "\n".join(out.get("traceback", [])).splitlines()
    lines += [ln for ln in kernel_log.splitlines() if ln.strip() and not BANNER.match(ln)]
    return [ANSI.sub("", ln) for ln in lines]


def _cells(client, nb, deadline: float, limit: float) -> tuple[str, str]:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        left = deadline - time.perf_counter()
        if left <= 0:
            return "time limit exceeded", (f"the {limit:g} s limit ran out before "
                                           f"{cell_label(nb, index)}")  # fmt: skip
        client.timeout = int(left) + 5  # a backstop: the timer kills the sandbox at the deadline
        try:
            client.execute_cell(cell, index)
        except (CellTimeoutError, DeadKernelError) as err:
            if time.perf_counter() >= deadline - 0.05:
                return "time limit exceeded", (f"still running {cell_label(nb, index)} when the "
                                               f"{limit:g} s limit ran out")  # fmt: skip
            return "error", f"the kernel died in {cell_label(nb, index)} ({type(err).__name__})"
        except CellExecutionError as err:
            last = f"{err.ename}: {err.evalue}" if getattr(err, "ename", None) else str(err)
            return "error", f"{cell_label(nb, index)} raised {last}"
    return "ran", ""


def execute(nb, km, limit: float, kernel_log_path, **launch) -> Run:
    """Run ``nb``'s code cells in ``km``'s kernel within ``limit`` seconds on one clock;
    ``launch``: ``env`` and ``cwd`` of the kernel."""
    client = CappedClient(nb, km=km, kernel_name="python3", startup_timeout=int(limit) + 5,
                            allow_errors=False, record_timing=False)  # fmt: skip
    start = time.perf_counter()
    deadline = start + limit
    timer = threading.Timer(limit, kill, args=(km,))
    timer.daemon = True
    timer.start()
    kernel_s = None
    try:
        with open(kernel_log_path, "wb") as log, client.setup_kernel(stdout=log, stderr=log,
                                                                      **launch):
            kernel_s = time.perf_counter() - start
            status, message = _cells(client, nb, deadline, limit)
            end = time.perf_counter()
    except (RuntimeError, DeadKernelError, TimeoutError) as err:  # the kernel never came up
        end = time.perf_counter()
        late = end >= deadline - 0.05
        status = "time limit exceeded" if late else "error"
        message = (f"the {limit:g} s limit ran out while the kernel started" if late else
                   f"the kernel did not start: {type(err).__name__}: {err}")  # fmt: skip
    finally:
        timer.cancel()
        kill(km)  # nothing the notebook started outlives this line
        if client.kc is not None:  # its sockets; the connection file goes with the folder
            client.kc.stop_channels()
    with open(kernel_log_path, errors="replace") as f:
        kernel_log = f.read()
    return Run(status, message, end - start, kernel_s, notebook_log(nb, kernel_log))
