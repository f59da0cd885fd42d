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

import statistics
import sys

from ftnotes import cli
from ftnotes.reallm import forgetting, methods, task
from ftnotes.reallm.model import load_smollm2
from ftnotes.utils import get_device, pinned_threads, write_json

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


def main(argv=None) -> int:
    ap = cli.bench_parser("python -m ftnotes.reallm_bench", __doc__.split("\n")[0],
                          methods.METHODS, "ftnotes.reallm.methods.LR")  # fmt: skip
    ap.add_argument("--steps", type=cli.positive_int, default=methods.STEPS)
    ap.add_argument("--batch-size", type=cli.positive_int, default=methods.BATCH_SIZE)
    ap.add_argument("--n-train", type=cli.positive_int, default=N_TRAIN, help="per category")
    ap.add_argument("--n-test", type=cli.positive_int, default=N_TEST, help="per category")
    ap.add_argument("--split", default="test", choices=("test", "validation"))
    ap.add_argument("--shots", type=cli.nonnegative_int, default=SHOTS,
                    help="few-shot examples (0: none)")  # fmt: skip
    args = ap.parse_args(argv)
    with pinned_threads(args.threads):
        result = bench(args.methods, args.seeds, args.steps, args.n_train, args.n_test, args.split,
                       dict(args.lr), args.shots, args.batch_size)  # fmt: skip
    rows = summary(result)
    print(markdown(rows, result))
    if args.json:
        write_json(args.json, {**result, "summary": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
