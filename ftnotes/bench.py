"""``python -m ftnotes.bench``: every fine-tuning method on one task, measured, in one table.

Each method runs with its default recipe from :mod:`ftnotes.recipes` on the chosen task for
``--seeds`` seeds (mean and standard deviation of the test accuracy over seeds), and the bench
prints a markdown table; ``--json``/``--markdown`` also write them to files (atomically).

    python -m ftnotes.bench                                   # all methods, digits, 1 seed
    python -m ftnotes.bench --task far --labels-per-class 10 --seeds 3 --json far.json
    python -m ftnotes.bench --methods full_ft,lora --epochs 5  # a quick look

"Trainable" counts the task head (it must train); the table also shows the count without it,
because on a model this small a 10-way head (650 numbers) is a visible share of a PEFT budget.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from ftnotes import cli
from ftnotes.checkpoints import load_manifest, load_pretrained
from ftnotes.checks import check_choice, check_int
from ftnotes.data import TASK_NAMES, load_task
from ftnotes.recipes import METHODS, NO_SOURCE_HEAD, RECIPES, check_method, run_method
from ftnotes.utils import atomic_write, count_params, get_device, pinned_threads, write_json

RESULT_KEYS = ("method", "target_test_acc", "target_test_acc_std", "source_test_acc",
               "trainable_params", "total_params", "train_seconds", "step_ms",
               "optimizer_state_bytes", "peak_memory_bytes",
               "checkpoint_bytes", "latency_ms")  # fmt: skip


def parse_methods(text) -> list[str]:
    """``"lora,full_ft"`` (or a list) -> validated method names; ValueError lists the real ones."""
    names = (
        [m.strip() for m in text.split(",") if m.strip()] if isinstance(text, str) else list(text)
    )
    if not names:
        raise ValueError(f"methods must name at least one of {', '.join(METHODS)}")
    for m in names:
        check_method(m)
    return names


def parse_labels(text):
    """``"all"`` -> None, ``"10"`` -> 10 (what ``load_task`` takes)."""
    if text in (None, "all"):
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value < 1:
        raise ValueError(f"labels_per_class must be 'all' or an int >= 1, got {text!r}")
    return value


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _summarise(method: str, runs: list) -> dict:
    """One result row from the (head parameters, record) pairs of every seed."""
    recs = [r for _, r in runs]
    accs = [r.target_acc for r in recs]
    head = runs[0][0]
    row = {
        "method": method,
        "target_test_acc": statistics.fmean(accs),
        "target_test_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "source_test_acc": None if method in NO_SOURCE_HEAD else _mean(r.source_acc for r in recs),
        "trainable_params": recs[0].trainable_params,
        "total_params": recs[0].total_params,
        "train_seconds": statistics.fmean(r.train_seconds for r in recs),
        "step_ms": statistics.fmean(r.step_ms for r in recs),
        "optimizer_state_bytes": recs[0].optimizer_state_bytes,
        "peak_memory_bytes": max(r.peak_memory_bytes for r in recs),
        "checkpoint_bytes": recs[0].checkpoint_bytes,
        "latency_ms": statistics.fmean(r.latency_ms for r in recs),
        "head_params": head,
        "trainable_params_without_head": recs[0].trainable_params - head,
        "trainable_fraction": recs[0].trainable_params / recs[0].total_params,
        "val_acc": statistics.fmean(r.extra["val_acc"] for r in recs),
        "per_seed_test_acc": accs,
    }
    skip = {"recipe", "val_acc", "seed", "latency_batch"}
    row["extra"] = {k: v for k, v in recs[0].extra.items() if k not in skip}
    row["recipe"] = {k: list(v) if isinstance(v, tuple) else v
                     for k, v in recs[0].extra["recipe"].items()}  # fmt: skip
    return row


_WORKER_BASE = None


def _init_worker(threads: int, base) -> None:
    global _WORKER_BASE
    torch.set_num_threads(threads)
    _WORKER_BASE = base


def _one_run(task, labels_per_class, progress, overrides, method, seed, base=None):
    """(head parameters, record) of one method and seed (in this process or a worker)."""
    t = load_task(task, labels_per_class=labels_per_class, seed=seed)
    model, record = run_method(method, t, seed=seed, base=base or _WORKER_BASE,
                               progress=progress, merge_latency=True, **overrides)  # fmt: skip
    return count_params(model.head), record


def run_bench(task="digits", labels_per_class=None, methods=METHODS, seeds=1, progress=False,
              base=None, jobs=1, **overrides) -> dict:  # fmt: skip
    """Run ``methods`` on ``task`` for seeds 0..seeds-1; returns the JSON-ready result dict.

    ``overrides`` (e.g. ``epochs=1``) apply to every method. ``base``: the pretrained backbone
    (default :func:`~ftnotes.checkpoints.load_pretrained`). ``jobs``: runs at a time, each in its
    own process with this process's torch threads (``python -m ftnotes.bench`` uses one per
    core, at most 2).
    """
    methods = parse_methods(methods)
    check_choice("task", task, TASK_NAMES)
    check_int("seeds", seeds)
    labels_per_class = parse_labels(labels_per_class)
    check_int("jobs", jobs)
    manifest = load_manifest()
    base = load_pretrained() if base is None else base
    start = time.perf_counter()
    todo = [(m, seed) for m in methods for seed in range(seeds)]
    job = functools.partial(_one_run, task, labels_per_class, progress, overrides)
    if jobs == 1:
        done = {key: job(*key, base=base) for key in todo}
    else:
        # One process per core, each with its own pinned threads: every run is seeded on its
        # own, so the numbers are those of jobs=1 (tested); the longest recipes start first.
        todo.sort(key=lambda k: -RECIPES[k[0]]["epochs"])
        ctx = multiprocessing.get_context("spawn")  # no forked torch state
        with ProcessPoolExecutor(jobs, ctx, initializer=_init_worker,
                                 initargs=(torch.get_num_threads(), base)) as pool:  # fmt: skip
            futures = {pool.submit(job, *key): key for key in todo}
            done = {futures[f]: f.result() for f in as_completed(futures)}
    results = []
    for method in methods:
        results.append(_summarise(method, [done[(method, seed)] for seed in range(seeds)]))
        if progress:
            print(f"{method}: test acc {results[-1]['target_test_acc']:.4f}", file=sys.stderr)
    source_acc = manifest.get("source_test_acc", manifest.get("source_test_accuracy"))
    return {
        "task": task,
        "labels_per_class": "all" if labels_per_class is None else labels_per_class,
        "seeds": seeds,
        "device": str(get_device()),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "jobs": jobs,
        "platform": platform.platform(),
        "backbone": {
            "source_test_acc": source_acc,
            "config": base.cfg.to_dict(),
            "sha256": manifest.get("sha256"),
        },  # fmt: skip
        "overrides": overrides,
        "total_seconds": time.perf_counter() - start,
        "results": results,
    }


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def to_markdown(payload: dict) -> str:
    """The results as a markdown table (accuracies in %, bytes in KB / MB)."""
    std = payload["seeds"] > 1
    lines = [
        f"Task `{payload['task']}`, labels per class: {payload['labels_per_class']}, "
        f"seeds: {payload['seeds']}, device: {payload['device']}, torch {payload['torch']}; "
        f"backbone source test acc {_pct(payload['backbone']['source_test_acc'])}%; "
        f"bench time {payload['total_seconds']:.0f} s.",
        "",
        "| method | test acc % | source acc % | trainable | trainable w/o head | % trainable "
        "| train s | step ms | optim state KB | peak mem MB | checkpoint KB | latency ms (bs 1) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["results"]:
        acc = _pct(r["target_test_acc"]) + (f" ± {_pct(r['target_test_acc_std'])}" if std else "")
        lines.append(
            f"| {r['method']} | {acc} | {_pct(r['source_test_acc'])} | {r['trainable_params']:,} "
            f"| {r['trainable_params_without_head']:,} | {_pct(r['trainable_fraction'])} "
            f"| {r['train_seconds']:.1f} | {r['step_ms']:.2f} "
            f"| {r['optimizer_state_bytes'] / 1e3:.1f} | {r['peak_memory_bytes'] / 1e6:.2f} "
            f"| {r['checkpoint_bytes'] / 1e3:.1f} | {r['latency_ms']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def unwritable(path) -> str:
    """Why ``path`` could not be written (checked before a long run), or '' if it can (None
    passes): :func:`ftnotes.cli.output_problem`, for callers outside argparse."""
    return "" if path is None else cli.output_problem(Path(path))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="digits", help=f"one of {', '.join(TASK_NAMES)}")
    ap.add_argument("--labels-per-class", default="all", help="an int, or 'all' (default)")
    ap.add_argument("--methods", type=cli.names(METHODS), default=METHODS,
                    help="comma list (default: all)")  # fmt: skip
    ap.add_argument("--seeds", type=cli.positive_int, default=1, help="seeds 0..N-1 (default 1)")
    ap.add_argument("--epochs", type=cli.positive_int, default=None,
                    help="override every recipe's epochs")  # fmt: skip
    # output paths are checked while parsing: the run takes minutes and its results would be lost
    ap.add_argument("--json", type=cli.output_path, default=None,
                    help="also write the results as JSON")  # fmt: skip
    ap.add_argument("--markdown", type=cli.output_path, default=None,
                    help="also write the table here")  # fmt: skip
    ap.add_argument("--progress", action="store_true", help="progress bars and per-method lines")
    ap.add_argument("--threads", type=cli.threads, default=1,
                    help="torch threads (default 1: tiny models gain nothing from more, and on a "
                         "busy machine extra threads wait for each other)")  # fmt: skip
    ap.add_argument("--jobs", type=cli.positive_int, default=min(2, os.cpu_count() or 1),
                    help="runs at a time, one process each (default: one per core, at most 2; "
                         "the numbers do not depend on it)")  # fmt: skip
    args = ap.parse_args(argv)
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    try:
        with pinned_threads(args.threads):
            payload = run_bench(args.task, args.labels_per_class, list(args.methods), args.seeds,
                                args.progress, jobs=args.jobs, **overrides)  # fmt: skip
    except ValueError as err:
        ap.error(str(err))
    table = to_markdown(payload)
    print(table)
    if args.json:
        write_json(args.json, payload)
    if args.markdown:
        atomic_write(args.markdown, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
