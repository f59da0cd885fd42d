"""Reproduce the shipped tiny LM: ``python -m ftnotes.pretrain_lm [--seed 0] [--steps N] [--out data/]``.

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

from ftnotes import cli, reproduce
from ftnotes.checkpoints import IN_CLONE, REPO_DATA_DIR, USER_WEIGHTS_DIR
from ftnotes.lm import corpus
from ftnotes.lm.model import LM_DIR_NAME, MANIFEST_NAME, build_tokenizer, new_model, save_lm
from ftnotes.lm.sft import evaluate, evaluate_skills, train_sft
from ftnotes.utils import atomic_write, replace_dir, set_seed

HELD_OUT_PER_SKILL = 200


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
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / LM_DIR_NAME
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{LM_DIR_NAME}."))
    try:
        files = save_lm(model, tokenizer, tmp)
        tmp.chmod(0o755)
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest = {**manifest, "folder": LM_DIR_NAME, "files": files}
    atomic_write(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return final


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.pretrain_lm",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("--seed", type=cli.nonnegative_int, default=0)
    ap.add_argument("--steps", type=cli.positive_int, default=6000)
    ap.add_argument("--batch-size", type=cli.positive_int, default=64)
    ap.add_argument("--lr", type=cli.positive_float, default=3e-3)
    default_out = REPO_DATA_DIR if IN_CLONE else USER_WEIGHTS_DIR
    ap.add_argument("--out", type=Path, default=default_out, help=f"default {default_out}")
    ap.add_argument("--threads", type=cli.threads, default=2, help="torch threads (fixed: floats differ)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    old = None
    manifest_file = args.out / MANIFEST_NAME
    if manifest_file.is_file():
        old = json.loads(manifest_file.read_text()).get("files")
    model, tokenizer, manifest = build(args, argv)
    folder = write(model, tokenizer, manifest, args.out)
    print("wrote", folder, "and", manifest_file, f"({manifest['train_seconds']:.0f} s training)")
    if old is not None:
        same = old == manifest.get("files") or old == json.loads(manifest_file.read_text())["files"]
        print("the new files are", "bit-identical to" if same else "different from",
              "the ones they replaced" + ("" if same else " (git diff --stat data/ shows them)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
