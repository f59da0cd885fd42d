"""Every fine-tuning method of notebook 08 over several seeds: ``python -m ftnotes.lm_bench [--seeds 3]``.

Same budget as the notebook (``--n-train`` target examples, ``--steps`` batches of
``ftnotes.lm.methods.BATCH_SIZE``), one fresh run per method and seed; the seed changes the
training examples drawn, the batch order and the adapters' (or the scratch model's) start. The
test set and the source-skill sets are fixed. Prints a table of means and spreads (min-max) of
target exact match, mean source exact match after training (forgetting), trainable parameters,
adapter bytes and seconds; ``--json PATH`` keeps every run. ``--lr full=2e-3`` (repeatable)
replaces a method's rate from ``ftnotes.lm.methods.LR``: how more or less forgetting trades
against learning the target.
"""

from __future__ import annotations

import statistics
import sys

from ftnotes import cli
from ftnotes.lm import corpus, load_pretrained_lm
from ftnotes.lm.methods import LR, METHODS, STEPS, run
from ftnotes.lm.sft import evaluate_skills
from ftnotes.utils import pinned_threads, write_json

N_TRAIN, N_TEST, N_SOURCE = 300, 100, 20


def bench(methods=METHODS, seeds=3, n_train=N_TRAIN, steps=STEPS, lrs=None, log=print) -> dict:
    """Every method and seed; ``lrs`` (``{method: rate}``) overrides ``LR`` for some methods."""
    lrs = {**LR, **(lrs or {})}
    base, tok = load_pretrained_lm()
    held = corpus.held_out(N_SOURCE)
    source_before = evaluate_skills(base, tok, held)
    runs = []
    for seed in range(seeds):
        train, test = corpus.target_split(n_train, N_TEST, seed=seed)
        for method in methods:
            _, rec = run(method, base, tok, train, test, held, lr=lrs[method], steps=steps,
                         seed=seed)  # fmt: skip
            runs.append({"seed": seed, **rec.as_dict()})
            log(f"seed {seed} {method:10s} lr {rec.lr:.0e} target {rec.target_em:.3f} source "
                f"{statistics.mean(rec.source_em.values()):.3f} ({rec.seconds:.1f} s)")  # fmt: skip
    return {"source_before": source_before, "runs": runs, "seeds": seeds, "n_train": n_train,
            "steps": steps, "lr": {m: lrs[m] for m in methods}}  # fmt: skip


def summary(result: dict) -> list[dict]:
    rows = []
    before = statistics.mean(result["source_before"].values())
    methods = dict.fromkeys(r["method"] for r in result["runs"])
    for m in methods:
        rs = [r for r in result["runs"] if r["method"] == m]
        tgt = [r["target_em"] for r in rs]
        src = [statistics.mean(r["source_em"].values()) for r in rs]
        rows.append({"method": m, "lr": rs[0]["lr"], "target_mean": statistics.mean(tgt),
                     "target_min": min(tgt), "target_max": max(tgt),
                     "source_mean": statistics.mean(src),
                     "source_drop": before - statistics.mean(src),
                     "trainable": rs[0]["trainable"], "bytes": rs[0]["bytes"],
                     "seconds": statistics.mean(r["seconds"] for r in rs)})  # fmt: skip
    return rows


def markdown(rows, result) -> str:
    before = statistics.mean(result["source_before"].values())
    lines = [f"{result['seeds']} seeds, {result['n_train']} target examples, {result['steps']} "
             f"steps; mean source exact match before fine-tuning {before:.3f}", "",
             "| method | lr | target EM mean (min-max) | source EM after | drop | trainable "
             "| bytes | s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['method']} | {r['lr']:.0e} | {r['target_mean']:.3f} "
                     f"({r['target_min']:.2f}-{r['target_max']:.2f}) | {r['source_mean']:.3f} "
                     f"| {r['source_drop']:+.3f} "
                     f"| {r['trainable']:,} | {r['bytes']:,} | {r['seconds']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = cli.bench_parser("python -m ftnotes.lm_bench", __doc__.split("\n")[0], METHODS,
                          "ftnotes.lm.methods.LR")  # fmt: skip
    ap.add_argument("--n-train", type=cli.positive_int, default=N_TRAIN)
    ap.add_argument("--steps", type=cli.positive_int, default=STEPS)
    args = ap.parse_args(argv)
    with pinned_threads(args.threads):
        result = bench(args.methods, args.seeds, args.n_train, args.steps, dict(args.lr))
    rows = summary(result)
    print(markdown(rows, result))
    if args.json:
        write_json(args.json, {**result, "summary": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
