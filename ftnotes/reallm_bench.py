"""The methods of notebook 11 over seeds: ``python -m ftnotes.reallm_bench [--seeds 3]``.

SmolLM2-135M-Instruct, the WordNet category task of :mod:`ftnotes.reallm.task`, the notebook's
budget by default (``--steps`` optimizer steps of ``--batch-size``, ``--n-train`` training
definitions per category drawn by the seed). Zero-shot and few-shot accuracy are measured once
(they do not depend on the seed); each method and seed is one fresh run from the same base.
Prints a table of accuracy (mean, min-max), its lift over zero-shot, the answer log-likelihood
on general instructions after fine-tuning (forgetting; before: the ``base`` row), trainable
parameters and seconds per step; ``--json PATH`` keeps every run (the path is checked before
the runs start, the file written atomically). ``--lr lora_all=3e-3`` (repeatable) replaces a
method's rate from ``ftnotes.reallm.methods.LR``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from ftnotes.bench import unwritable
from ftnotes.reallm import forgetting, methods, task
from ftnotes.reallm.model import load_smollm2
from ftnotes.utils import atomic_write, get_device, pinned_threads

N_TRAIN, N_TEST, SHOTS = 16, 20, 2  # per category; solved examples in the few-shot prompt


def bench(method_names=methods.METHODS, seeds=3, steps=methods.STEPS, n_train=N_TRAIN,
          n_test=N_TEST, split="test", lrs=None, shots=SHOTS, batch_size=methods.BATCH_SIZE,
          log=print) -> dict:  # fmt: skip
    """Every method and seed; ``lrs`` (``{method: rate}``) overrides ``methods.LR``."""
    lrs = {**methods.LR, **(lrs or {})}
    device = get_device()
    base, tok = load_smollm2(device=device)
    test = task.load_examples(split, per_class=n_test)
    shot_examples = task.load_examples("train", per_class=1, seed=99)[:shots]
    before = {"zero_shot": methods.zero_shot(base, tok, test),
              "few_shot": methods.zero_shot(base, tok, test, shot_examples) if shots else None,
              "loglik": forgetting.answer_loglik(base, tok)}  # fmt: skip
    log(f"base: zero-shot {before['zero_shot']:.3f}, {shots}-shot {before['few_shot']}, "
        f"answer log-likelihood {before['loglik']:.3f}")  # fmt: skip
    runs = []
    for seed in range(seeds):
        train = task.load_examples("train", per_class=n_train, seed=seed)
        for m in method_names:
            _, rec = methods.run(m, base, tok, train, test, steps=steps, lr=lrs[m], seed=seed,
                                 batch_size=batch_size, device=device)  # fmt: skip
            runs.append(rec.as_dict())
            log(f"seed {seed} {m:10s} lr {rec.lr:g}: accuracy {rec.accuracy:.3f}, log-lik "
                f"{rec.loglik:.3f}, {rec.step_seconds:.2f} s/step")  # fmt: skip
    return {"before": before, "runs": runs, "seeds": seeds, "steps": steps, "batch_size": batch_size,
            "n_train": n_train,
            "n_test": n_test, "split": split, "shots": shots, "device": str(device),
            "lr": {m: lrs[m] for m in method_names}}  # fmt: skip


def summary(result: dict) -> list[dict]:
    rows = []
    for m in dict.fromkeys(r["method"] for r in result["runs"]):
        rs = [r for r in result["runs"] if r["method"] == m]
        acc = [r["accuracy"] for r in rs]
        rows.append({"method": m, "lr": rs[0]["lr"], "mean": statistics.mean(acc),
                     "min": min(acc), "max": max(acc),
                     "lift": statistics.mean(acc) - result["before"]["zero_shot"],
                     "loglik": statistics.mean(r["loglik"] for r in rs),
                     "trainable": rs[0]["trainable"],
                     "step_seconds": statistics.mean(r["step_seconds"] for r in rs)})  # fmt: skip
    return rows


def markdown(rows, result) -> str:
    b = result["before"]
    few = "" if b["few_shot"] is None else f", {result['shots']}-shot {b['few_shot']:.3f}"
    lines = [f"{result['seeds']} seeds, {result['steps']} steps of {result['batch_size']}, "
             f"{result['n_train']} train / "
             f"{result['n_test']} {result['split']} definitions per category; base: zero-shot "
             f"{b['zero_shot']:.3f}{few}, answer log-likelihood {b['loglik']:.3f}", "",
             "| method | lr | accuracy mean (min-max) | lift over zero-shot | answer log-lik after "
             "| trainable | s/step |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['method']} | {r['lr']:g} | {r['mean']:.3f} ({r['min']:.3f}-"
                     f"{r['max']:.3f}) | {100 * r['lift']:+.1f} points | {r['loglik']:.3f} | "
                     f"{r['trainable']:,} | {r['step_seconds']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def _positive(ap, flag, value):
    if value < 1:
        ap.error(f"{flag} must be an int >= 1, got {value}")


def parse_lrs(ap, items) -> dict:
    lrs = {}
    for item in items:
        method, _, rate = item.partition("=")
        try:
            lrs[method] = float(rate)
        except ValueError:
            ap.error(f"--lr {item!r}: expected METHOD=RATE, e.g. lora_all=3e-3")
        if method not in methods.METHODS or not 0 < lrs[method] < float("inf"):
            ap.error(f"--lr {item!r}: METHOD must be one of {list(methods.METHODS)} and RATE a "
                     "finite number > 0")  # fmt: skip
    return lrs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.reallm_bench",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", default=",".join(methods.METHODS))
    ap.add_argument("--steps", type=int, default=methods.STEPS)
    ap.add_argument("--batch-size", type=int, default=methods.BATCH_SIZE)
    ap.add_argument("--n-train", type=int, default=N_TRAIN, help="per category")
    ap.add_argument("--n-test", type=int, default=N_TEST, help="per category")
    ap.add_argument("--split", default="test", choices=("test", "validation"))
    ap.add_argument("--shots", type=int, default=SHOTS, help="few-shot examples (0: none)")
    ap.add_argument("--lr", action="append", default=[], metavar="METHOD=RATE")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    for flag in ("seeds", "steps", "batch_size", "n_train", "n_test", "threads"):
        _positive(ap, "--" + flag.replace("_", "-"), getattr(args, flag))
    if args.shots < 0:
        ap.error(f"--shots must be an int >= 0, got {args.shots}")
    names = tuple(m for m in args.methods.split(",") if m)
    unknown = sorted(set(names) - set(methods.METHODS))
    if unknown or not names:
        ap.error(f"--methods: unknown {unknown or names}; allowed {list(methods.METHODS)}")
    lrs = parse_lrs(ap, args.lr)
    problem = unwritable(args.json)
    if problem:  # say so now: the runs take minutes and their results would be lost
        ap.error(f"--json {args.json}: {problem}")
    with pinned_threads(args.threads):
        result = bench(names, args.seeds, args.steps, args.n_train, args.n_test, args.split, lrs,
                       args.shots, args.batch_size)  # fmt: skip
    rows = summary(result)
    print(markdown(rows, result))
    if args.json:
        atomic_write(args.json, json.dumps({**result, "summary": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
