"""``python -m ftnotes.contest.measure``: every task's baseline and reference on both boards over
seeds, the numbers the statements print, and what the hidden inputs' jitter changes.

Seed ``s`` trains with seed ``s`` and builds the boards with its own secret, ``measure_secret(s)``
(fixed, so the table is reproducible; a grading run draws a fresh one). The jitter column scores
the reference's predictions on the same board with and without the jitter (same secret, same
training): how much byte-exact lookup protection costs an honest solution.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
from unittest import mock

import torch

from ftnotes import contest
from ftnotes.cli import names, positive_int
from ftnotes.contest import core
from ftnotes.contest.core import BOARDS, Secret
from ftnotes.utils import pinned_threads


def measure_secret(seed: int) -> Secret:
    return Secret(hashlib.sha256(f"ftnotes measure {seed}".encode()).digest())


def _run(task, board: str, seed: int) -> dict:
    secret = measure_secret(seed)
    data, y = task.build(seed, board, secret)
    row = {"baseline": task.score(task.baseline(data, seed), y)["score"]}
    pred = task.reference(data, seed)
    row["reference"] = task.score(pred, y)["score"]
    if not isinstance(data.test_x, torch.Tensor):  # text: nothing is jittered, nothing to rerun
        row["jitter"] = 0.0
        return row
    with mock.patch.object(core, "JITTER", 0.0):
        plain, plain_y = task.build(seed, board, secret)
    row["jitter"] = row["reference"] - task.score(task.reference(plain, seed), plain_y)["score"]
    return row


def measure(names, seeds, boards=BOARDS) -> dict:
    """{task: {board: [row per seed]}}, each row baseline, reference, jitter effect."""
    out = {}
    with pinned_threads(1):
        for name in names:
            task = contest.get_task(name)
            out[name] = {b: [_run(task, b, s) for s in seeds] for b in boards}
    return out


def _cell(values) -> str:
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def table(results: dict) -> str:
    lines = ["| task | board | baseline, mean (min-max) | reference, mean (min-max) | "
             "smallest margin | reference: jittered - plain, largest |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, boards in results.items():
        for board, rows in boards.items():
            base, ref = [r["baseline"] for r in rows], [r["reference"] for r in rows]
            margin = min(r - b for r, b in zip(ref, base))
            jitter = max((r["jitter"] for r in rows), key=abs)
            lines.append(f"| `{name}` | {board} | {_cell(base)} | {_cell(ref)} | {margin:.3f} | "
                         f"{jitter:+.4f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.contest.measure",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("--tasks", type=names(contest.task_names()), default=contest.task_names(),
                    help="comma-separated task names (default: all)")  # fmt: skip
    ap.add_argument("--seeds", type=positive_int, default=3, help="seeds 0..N-1 (default 3)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(table(measure(args.tasks, range(args.seeds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
