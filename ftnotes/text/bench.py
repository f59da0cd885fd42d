"""Every method of notebook 10 over seeds: ``python -m ftnotes.text.bench [--seeds 3]``.

Same budget as the notebook by default (``--per-class`` training definitions per category,
``--epochs`` passes, batch 16), one fresh run per method and seed; the seed changes the training
definitions drawn, the new head's start and the batch order. The evaluation split (``--split``,
default ``test``: 150 per category) is fixed. Prints a table of mean and min-max accuracy and
macro-F1, trainable parameters and seconds; ``--json PATH`` keeps every run (written atomically,
the path checked before the first run). ``--lr full=2e-4`` (repeatable) replaces a method's rate
from ``ftnotes.text.methods.LR``; ``--split validation`` is how the rates were chosen.

    python -m ftnotes.text.bench --seeds 3                         # the 6 abstract categories
    python -m ftnotes.text.bench --categories concrete --seeds 3   # the 4 concrete ones
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from ftnotes import cli
from ftnotes.text.methods import BASELINES, LR, METHODS, R, run
from ftnotes.text.wordnet import ABSTRACT, CATEGORIES, CONCRETE, PUBLIC_SPLITS, SPLIT_SIZES
from ftnotes.utils import THREADS_HELP, default_threads, pinned_threads, write_json

COMMAND = "python -m ftnotes.text.bench"
PER_CLASS, EPOCHS = 45, 3  # the notebook's budget (notebook 10's settings)
GROUPS = {"abstract": ABSTRACT, "concrete": CONCRETE}


def parse_categories(text: str) -> tuple[str, ...]:
    if text in GROUPS:
        return GROUPS[text]
    cats = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown or len(set(cats)) < 2:
        raise ValueError(f"--categories must be 'abstract', 'concrete' or a comma list of at "
                         f"least 2 of {', '.join(CATEGORIES)}; got {text!r}")
    return cats


def parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"--methods must be a comma list of {', '.join(METHODS)}; got {text!r}")
    return list(dict.fromkeys(methods))


def parse_lr(items) -> dict[str, float]:
    rates = {}
    for item in items or ():
        method, _, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = float("nan")
        if method not in LR or not 0 < rate < 1:
            raise ValueError(f"--lr must be METHOD=RATE with METHOD one of {', '.join(LR)} and "
                             f"0 < RATE < 1; got {item!r}")
        rates[method] = rate
    return rates


def bench(categories=ABSTRACT, methods=METHODS, seeds=3, per_class=PER_CLASS, epochs=EPOCHS,
          split="test", lrs=None, threads=1, r=R, log=print) -> dict:
    """Every method and seed; returns the payload (settings and every run)."""
    from ftnotes.text.encoder import load_encoder
    from ftnotes.text.ledger import similarity_auc
    from ftnotes.text.methods import MAX_LENGTH
    from ftnotes.text.wordnet import load_pairs

    lrs = {**LR, **(lrs or {})}
    encoder, tokenizer = load_encoder()
    tuned = [m for m in methods if m not in BASELINES]
    pairs = load_pairs(categories) if tuned else None  # forgetting: only for fine-tuned methods
    before = similarity_auc(encoder, tokenizer, *pairs, MAX_LENGTH) if tuned else None
    cache, runs = {}, []
    start = time.perf_counter()
    for seed in range(seeds):
        for method in methods:
            res = run(method, categories, per_class, seed, split, epochs, lrs.get(method),
                      encoder, tokenizer, cache, threads, pairs=pairs, r=r)  # fmt: skip
            runs.append(res.as_dict())
            auc = res.extra.get("similarity_auc")
            log(f"seed {seed} {method:9s} accuracy {res.accuracy:.3f} macro-F1 {res.macro_f1:.3f}"
                + (f" similarity AUC {auc:.3f}" if auc is not None else "")
                + f" ({res.seconds:.1f} s)")  # fmt: skip
    return {"command": COMMAND, "categories": list(categories), "per_class": per_class,
            "epochs": epochs, "split": split, "seeds": seeds, "threads": threads, "r": r,
            "lr": {m: lrs[m] for m in methods if m not in BASELINES},
            "similarity_auc_before": before,
            "seconds": round(time.perf_counter() - start, 1), "runs": runs}  # fmt: skip


def summary(payload: dict) -> list[dict]:
    rows = []
    for m in dict.fromkeys(r["method"] for r in payload["runs"]):
        rs = [r for r in payload["runs"] if r["method"] == m]
        acc, f1 = [r["accuracy"] for r in rs], [r["macro_f1"] for r in rs]
        aucs = [r["extra"]["similarity_auc"] for r in rs if "similarity_auc" in r["extra"]]
        rows.append({"method": m, "lr": rs[0]["lr"], "accuracy": statistics.mean(acc),
                     "accuracy_min": min(acc), "accuracy_max": max(acc),
                     "macro_f1": statistics.mean(f1), "macro_f1_min": min(f1),
                     "macro_f1_max": max(f1), "trainable": rs[0]["trainable"],
                     "similarity_auc": statistics.mean(aucs) if aucs else None,
                     "seconds": statistics.mean(r["seconds"] for r in rs)})  # fmt: skip
    return rows


def markdown(payload: dict) -> str:
    lines = [f"{', '.join(payload['categories'])}: {payload['per_class']} training definitions "
             f"per category, {payload['epochs']} epochs, {payload['seeds']} seeds, scored on "
             f"{payload['split']}" + (f"; similarity AUC of the encoder before fine-tuning "
             f"{payload['similarity_auc_before']:.3f}" if payload["similarity_auc_before"]
             else ""), "",
             "| method | lr | accuracy mean (min-max) | macro-F1 mean (min-max) | similarity AUC "
             "after | trainable | s |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in summary(payload):
        lr = f"{r['lr']:.0e}" if r["lr"] else "-"
        auc = f"{r['similarity_auc']:.3f}" if r["similarity_auc"] is not None else "-"
        lines.append(f"| {r['method']} | {lr} | {r['accuracy']:.3f} ({r['accuracy_min']:.3f}-"
                     f"{r['accuracy_max']:.3f}) | {r['macro_f1']:.3f} ({r['macro_f1_min']:.3f}-"
                     f"{r['macro_f1_max']:.3f}) | {auc} | {r['trainable']:,} | "
                     f"{r['seconds']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    ap.add_argument("--categories", default="abstract",
                    help="'abstract' (default), 'concrete' or a comma list")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list (default: all)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    ap.add_argument("--per-class", type=int, default=PER_CLASS,
                    help=f"training definitions per category (default {PER_CLASS})")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=f"default {EPOCHS}")
    ap.add_argument("--split", default="test", help="test (default) or validation")
    ap.add_argument("--lr", action="append", metavar="METHOD=RATE", help="replace a rate")
    ap.add_argument("--r", type=int, default=R, help=f"LoRA rank (default {R})")
    ap.add_argument("--threads", type=cli.threads, default=default_threads(), help=THREADS_HELP)
    ap.add_argument("--json", type=cli.output_path, help="also write every run as JSON (checked "
                    "before the bench starts; written atomically)")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        cats, methods = parse_categories(args.categories), parse_methods(args.methods)
        lrs = parse_lr(args.lr)
    except ValueError as err:
        ap.error(str(err))
    for flag, value, top in (("--seeds", args.seeds, 100), ("--per-class", args.per_class,
                             SPLIT_SIZES["train"]), ("--epochs", args.epochs, 100),
                             ("--r", args.r, 384)):  # fmt: skip
        if not 1 <= value <= top:
            ap.error(f"{flag} must be an int in [1, {top}], got {value}")
    if args.split not in PUBLIC_SPLITS[1:]:
        ap.error(f"--split must be one of {PUBLIC_SPLITS[1:]}, got {args.split!r}")
    with pinned_threads(args.threads):  # BLAS too (sklearn)
        payload = bench(cats, methods, args.seeds, args.per_class, args.epochs, args.split, lrs,
                        args.threads, args.r)  # fmt: skip
    print(markdown(payload))
    if args.json:
        write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
