"""Reproduce the shipped tiny LM: ``python -m ftnotes.pretrain_lm [--seed 0] [--steps N] [--out data/] [--verify]``.

Pretrains the tiny ``LlamaForCausalLM`` of :mod:`ftnotes.lm.model` on a stream of chat turns of
the source skills (:mod:`ftnotes.lm.corpus`: copy, reverse, add, count, copy_reverse, several
phrasings each, in the shares of ``corpus.MIX``; never the target skill ``mirror``), with the
loss on the answer tokens only, AdamW and a linear warmup + cosine rate (the schedule of
``ftnotes.pretrain``). Then it measures the held-out exact match of every source skill (and, for
the record, of the target, which it was never shown) and writes ``data/tiny-lm/``
(``save_pretrained`` of model and tokenizer) and its manifest ``data/tiny-lm.json``
(config, seed, sha256 of every file, accuracies, command, time).

Deterministic from the seed: the corpus, torch's initialisation and the batch order are all
drawn from it; bit-identical on the same kind of CPU with the same thread count and torch.
About 7-12 minutes on 2 cores (556 s of training for the shipped run, reference step 20.4 ms).
Elsewhere it is the same model within the declared tolerances (``tiny-lm`` in
:mod:`ftnotes.registry`: held-out exact match per source skill): ``--verify`` retrains into a
temporary folder (never writing ``--out``) and prints the verdict of :mod:`ftnotes.reproduce`,
``identical``, ``within tolerance`` or ``differs`` (exit 1 only for ``differs``); regenerating
prints the same comparison against the folder it replaced.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from ftnotes import artifacts, cli, reproduce
from ftnotes.lm import corpus
from ftnotes.lm.model import LM_DIR_NAME, MANIFEST_NAME, build_tokenizer, new_model, save_lm
from ftnotes.lm.sft import evaluate, evaluate_skills, train_sft
from ftnotes.utils import set_seed

HELD_OUT_PER_SKILL = 200
RECIPE = ("seed", "steps", "batch_size", "lr")  # what --verify needs to match the shipped run


def pretrain(seed=0, steps=6000, batch_size=64, lr=3e-3, log=print):
    """``(model, tokenizer, held_out)``: the tiny LM trained on ``steps`` batches of the source
    stream (held-out prompts excluded). Same seed -> same weights on one machine."""
    set_seed(seed)
    tokenizer = build_tokenizer()
    held = corpus.held_out(HELD_OUT_PER_SKILL, seed=seed)
    exclude = {e.prompt for exs in held.values() for e in exs}
    stream = corpus.source_stream(steps * batch_size, seed=seed, exclude=exclude)
    corpus.assert_no_target(stream)  # by construction; checked again on what is really used
    model = new_model(seed)
    train_sft(model, tokenizer, stream, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
              weight_decay=0.01, warmup=200, log_every=500 if log else 0,
              max_grad_norm=None)  # fmt: skip  (the shipped run: unclipped, stable at this rate)
    return model, tokenizer, held


def build(args, argv):
    t0 = time.time()
    model, tokenizer, held = pretrain(args.seed, args.steps, args.batch_size, args.lr)
    train_s = time.time() - t0
    acc = evaluate_skills(model, tokenizer, held)
    _, target_test = corpus.target_split(0, 200)
    target_zero = evaluate(model, tokenizer, target_test)
    print("held-out exact match:", json.dumps({k: round(v, 4) for k, v in acc.items()}),
          f"| target {corpus.TARGET_SKILL!r} zero-shot {target_zero:.3f}")  # fmt: skip
    manifest = {
        "architecture": type(model).__name__, "config": model.config.to_diff_dict(),
        "seed": args.seed, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
        "threads": args.threads, "source_skills": list(corpus.SOURCE_SKILLS),
        "phrasings": {k: list(v) for k, v in corpus.PHRASINGS.items()}, "mix": corpus.MIX,
        "target_skill": corpus.TARGET_SKILL,
        "source_exact_match": {k: round(v, 4) for k, v in acc.items()},
        "held_out_sizes": {k: len(v) for k, v in held.items()},
        "target_zero_shot_exact_match": round(target_zero, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "machine": reproduce.machine(),
        "command": " ".join(["python -m ftnotes.pretrain_lm",
                             *(argv if argv is not None else sys.argv[1:])]),
        "train_seconds": round(train_s, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip
    return model, tokenizer, manifest


def write(model, tokenizer, manifest: dict, out_dir: Path) -> Path:
    """Write ``out_dir/tiny-lm/`` (swapped in whole at the end) and ``out_dir/tiny-lm.json``."""
    final = Path(out_dir) / LM_DIR_NAME
    files = save_lm(model, tokenizer, final)
    artifacts.write_manifest(Path(out_dir) / MANIFEST_NAME,
                             {**manifest, "folder": LM_DIR_NAME, "files": files})  # fmt: skip
    return final


def compare(shipped_dir: Path, new_dir: Path) -> reproduce.Verdict:
    """Verdict of the run in ``new_dir`` against the one in ``shipped_dir`` (both ``--out``
    folders), by the declared tolerances."""
    from safetensors.torch import load_file

    runs = [Path(d) / LM_DIR_NAME for d in (shipped_dir, new_dir)]
    shipped, new = (artifacts.read_manifest("tiny-lm", run) for run in runs)
    a, b = (load_file(run / "model.safetensors") for run in runs)
    return reproduce.verdict(shipped, new, artifacts.get("tiny-lm").tolerances,
                             shipped["files"] == new["files"], reproduce.max_abs_diff(a, b))  # fmt: skip


def verify(args, argv) -> int:
    """``--verify``: retrain into a temporary folder and compare with ``args.out``."""
    try:
        shipped = artifacts.read_manifest("tiny-lm", args.out / LM_DIR_NAME)
    except artifacts.WeightsError as err:
        print(f"--verify: no shipped model in {args.out} to compare with ({err})", file=sys.stderr)
        return 2
    other = {k: shipped[k] for k in RECIPE if shipped[k] != getattr(args, k)}
    if other:  # another recipe: it could only differ
        print(f"--verify: {args.out} was trained with {other}, not "
              f"{ {k: getattr(args, k) for k in other} }", file=sys.stderr)  # fmt: skip
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, manifest = build(args, argv)
        write(model, tokenizer, manifest, Path(tmp))
        result = compare(args.out, Path(tmp))
    reproduce.print_verdict(result, str(args.out / LM_DIR_NAME))
    return result.exit_code


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.pretrain_lm",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("--seed", type=cli.nonnegative_int, default=0)
    ap.add_argument("--steps", type=cli.positive_int, default=6000)
    ap.add_argument("--batch-size", type=cli.positive_int, default=64)
    ap.add_argument("--lr", type=cli.positive_float, default=3e-3)
    # a clone regenerates its data/; an installed copy writes to the user's cache, never into
    # site-packages (then point $FTNOTES_LM at the folder, as the loader's message says)
    default_out = artifacts.DATA_DIR if artifacts.IN_CLONE else artifacts.cache_dir() / "weights"
    ap.add_argument("--out", type=Path, default=default_out, help=f"default {default_out}")
    ap.add_argument("--threads", type=cli.threads, default=2, help="torch threads (fixed: floats differ)")
    ap.add_argument("--verify", action="store_true",
                    help="retrain into a temporary folder and compare with --out (never writes "
                         "there); exit 1 only if the result differs beyond tolerance")  # fmt: skip
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.verify:
        return verify(args, argv)
    previous = None
    if (args.out / MANIFEST_NAME).is_file() and (args.out / LM_DIR_NAME).is_dir():
        previous = tempfile.TemporaryDirectory()  # the previous run, to say how the new compares
        shutil.copytree(args.out / LM_DIR_NAME, Path(previous.name) / LM_DIR_NAME)
        shutil.copy(args.out / MANIFEST_NAME, previous.name)
    model, tokenizer, manifest = build(args, argv)
    folder = write(model, tokenizer, manifest, args.out)
    print("wrote", folder, "and", args.out / MANIFEST_NAME,
          f"({manifest['train_seconds']:.0f} s training)")  # fmt: skip
    if previous is not None:
        with previous:
            try:
                result = compare(Path(previous.name), args.out)
            except artifacts.WeightsError as err:
                print(f"the replaced folder could not be compared: {err}")
                return 0
        reproduce.print_verdict(result, "the new folder against the one it replaced")
        if result.status != reproduce.IDENTICAL:
            print("  (git holds the old files: `git diff --stat data/` shows them, "
                  "`git checkout data/` restores them)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
