"""Reproduce the shipped backbone: ``python -m ftnotes.pretrain [--seed 0] [--epochs N] [--out data/] [--verify]``.

``--export-hf-only`` skips training and only re-exports ``data/tinyvit-glyphs-hf/`` (the
Hugging Face copy, :mod:`ftnotes.hf`) from the existing ``.pt`` weights, in seconds.

Pretrains :class:`~ftnotes.models.TinyViT` on freshly drawn synthetic glyphs every epoch (an
endless stream, so the model never sees the same augmented image twice and cannot memorise),
with AdamW and a linear-warmup + cosine learning rate (Loshchilov & Hutter 2019, "Decoupled
weight decay regularization"; Goyal et al. 2017 for the warmup). Then it measures what the
manifest records: the held-out glyph test accuracy, the confused class pairs, and the transfer
to the digits (zero-shot through glyph rows 0-9; 10 labels per class, fine-tuned vs scratch).

``--handwriting N`` (default ``SHIPPED_HANDWRITING`` = 48,000, the shipped recipe) adds N
stroke-drawn handwritten digits per epoch (:func:`ftnotes.strokes.render_strokes`) to the glyphs:
they give the backbone the handwriting forms fonts lack (zero-shot on the real digits 66.1% ->
88.6%; the measurements are in :mod:`ftnotes.strokes`). ``--handwriting 0`` draws exactly the
glyph stream of the backbone shipped before, kept in ``data/printed/``
(:data:`ftnotes.checkpoints.PRINTED_WEIGHTS`). A run with N > 0 records ``handwriting`` in its
manifest.

``--verify`` retrains into a temporary folder (never writing ``--out``) and prints the verdict
of :mod:`ftnotes.reproduce` against the shipped run, by the tolerances declared for ``tinyvit``
in :mod:`ftnotes.registry`; regenerating prints the same comparison against the file it replaced.

Plain torch on purpose: this script must not depend on the training engine it feeds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ftnotes import artifacts, cli, reproduce
from ftnotes.checks import check_int
from ftnotes.data import DIGIT_CLASSES, GLYPH_CLASSES, glyph_split, load_task
from ftnotes.glyphs import render_glyphs
from ftnotes.models import SmallCNN, TinyViT, ViTConfig
from ftnotes.schedules import warmup_cosine, warmup_cosine_scheduler  # noqa: F401 (re-exported)
from ftnotes.strokes import render_strokes
from ftnotes.utils import save_weights, set_seed

STREAM_SEED = 1000  # training draws use seeds >= 1000; the glyph val/test splits use 2 and 3
HANDWRITING_SEED = 500_000  # added to the glyph stream's seed for the --handwriting draws
SHIPPED_HANDWRITING = 48_000  # stroke digits per epoch in the shipped recipe (ftnotes.strokes)


def _loop(model, batches_fn, epochs, groups, weight_decay, warmup_frac=0.05, smoothing=0.0):
    """AdamW + warmup-cosine over ``epochs``; ``batches_fn(epoch)`` yields (x, y) batches."""
    opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
    steps_per_epoch = len(list(batches_fn(-1)))
    total = epochs * steps_per_epoch
    sched = warmup_cosine_scheduler(opt, total, max(1, int(warmup_frac * total)))
    model.train()
    for epoch in range(epochs):
        for x, y in batches_fn(epoch):
            loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Predicted class indices (N,) for images (N, 1, 8, 8)."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def confusion_pairs(y_true, y_pred, classes, min_rate: float = 0.01) -> list[dict]:
    """Pairs (true -> predicted) whose rate among the true class's examples is >= ``min_rate``."""
    n = len(classes)
    cm = torch.bincount(y_true * n + y_pred, minlength=n * n).view(n, n).float()
    rates = cm / cm.sum(1, keepdim=True).clamp_min(1)
    pairs = [
        {"true": classes[i], "pred": classes[j], "rate": round(rates[i, j].item(), 4)}
        for i in range(n) for j in range(n) if i != j and rates[i, j] >= min_rate
    ]  # fmt: skip
    return sorted(pairs, key=lambda p: -p["rate"])


def pretrain(cfg: ViTConfig, seed=0, epochs=8, samples_per_epoch=40_000, batch_size=128,
             lr=1e-3, weight_decay=0.05, smoothing=0.1, log=print,
             handwriting=0) -> TinyViT:  # fmt: skip
    """Train a TinyViT on a fresh stream of glyphs; same seed -> same weights on one machine.

    ``lr`` is the peak rate. (It was once listed as 2e-3 but never passed on, so the shipped
    weights were trained at AdamW's default 1e-3; the default here is what was really used.)

    ``handwriting`` stroke digits (:mod:`ftnotes.strokes`) join each epoch's glyphs, shuffled
    in; with 0 (the default, and the shipped weights) nothing else is drawn or changed.
    """
    check_int("handwriting", handwriting, 0)  # stroke digits per epoch
    set_seed(seed)
    model = TinyViT(cfg)

    def batches(epoch):
        if epoch < 0:  # only counts the steps
            return range(math.ceil((samples_per_epoch + handwriting) / batch_size))
        t = time.time()
        x, y = render_glyphs(samples_per_epoch, seed=STREAM_SEED + seed * 100_003 + epoch)
        if handwriting:
            s_seed = HANDWRITING_SEED + STREAM_SEED + seed * 100_003 + epoch
            xh, yh = render_strokes(handwriting, seed=s_seed)
            x, y = torch.cat([x, xh]), torch.cat([y, yh])
            perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(s_seed))
            x, y = x[perm], y[perm]
        log(f"epoch {epoch + 1}/{epochs}: data {time.time() - t:.1f}s")
        return zip(x.split(batch_size), y.split(batch_size))

    groups = [{"params": model.parameters(), "lr": lr}]
    return _loop(model, batches, epochs, groups, weight_decay, 0.05, smoothing)


def finetune_digits(model: nn.Module, labels_per_class=10, epochs=60, lr_head=1e-3,
                    lr_body=3e-4, seed=0, from_glyph_head=True, task="digits") -> float:  # fmt: skip
    """Full fine-tuning on ``task`` (digits or far; new 10-way head); returns the test accuracy.

    The head starts from the glyph head's rows 0-9 when ``from_glyph_head``, i.e. from the
    zero-shot digit classifier, instead of from random weights. ``lr_body=0`` trains the head
    only (a linear probe on frozen features).
    """
    task = load_task(task, labels_per_class=labels_per_class)
    set_seed(seed)
    if isinstance(model.head, nn.Linear):  # TinyViT; SmallCNN(10) already has its 10-way head
        head = nn.Linear(model.head.in_features, 10)
        if from_glyph_head and model.head.out_features >= 10:
            head.load_state_dict({k: v[:10].clone() for k, v in model.head.state_dict().items()})
        model.head = head
    x, y = task.train.tensors
    gen = torch.Generator().manual_seed(seed)

    def batches(epoch):
        order = torch.randperm(len(x), generator=gen) if epoch >= 0 else torch.arange(len(x))
        return zip(x[order].split(20), y[order].split(20))

    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    for p in body:  # a frozen body (linear probe) gets no gradient at all
        p.requires_grad_(lr_body > 0)
    groups = [{"params": body, "lr": lr_body}, {"params": model.head.parameters(), "lr": lr_head}]
    _loop(model, batches, epochs, groups, weight_decay=0.05, warmup_frac=0.1)
    xt, yt = task.test.tensors
    return (predict(model, xt) == yt).float().mean().item()


def transfer_report(model: TinyViT, labels_per_class: int = 10, seed: int = 0) -> dict:
    """Digits numbers for the manifest: zero-shot, fine-tuned, ViT scratch and SmallCNN scratch."""
    import copy

    xt, yt = load_task("digits").test.tensors
    with torch.no_grad():
        zero = (model(xt)[:, : len(DIGIT_CLASSES)].argmax(1) == yt).float().mean().item()
    out = {"zero_shot": zero, "labels_per_class": labels_per_class}
    out["finetuned"] = finetune_digits(copy.deepcopy(model), labels_per_class, seed=seed)
    set_seed(seed)
    scratch = TinyViT(ViTConfig(**{**model.cfg.to_dict(), "num_classes": 10}))
    out["vit_scratch"] = finetune_digits(scratch, labels_per_class, lr_body=1e-3, seed=seed,
                                         from_glyph_head=False)  # fmt: skip
    set_seed(seed)
    out["cnn_scratch"] = finetune_digits(SmallCNN(10), labels_per_class, lr_body=3e-3,
                                         lr_head=3e-3, seed=seed, from_glyph_head=False)  # fmt: skip
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def distance_report(model: TinyViT, seed: int = 0, epochs: int = 20) -> dict:
    """Linear probe vs full fine-tuning on ``digits`` and ``far`` (whole training split).

    If pretrained features suit the near task better, the probe-to-full-FT gap is smaller on
    ``digits`` than on ``far``.
    """
    import copy

    out = {}
    for task in ("digits", "far"):
        probe = finetune_digits(copy.deepcopy(model), None, epochs, lr_head=1e-2, lr_body=0.0,
                                seed=seed, from_glyph_head=False, task=task)  # fmt: skip
        full = finetune_digits(copy.deepcopy(model), None, epochs, seed=seed,
                               from_glyph_head=False, task=task)  # fmt: skip
        out[task] = {"linear_probe": round(probe, 4), "full_finetune": round(full, 4),
                     "gap": round(full - probe, 4)}  # fmt: skip
    return out


def save(model: TinyViT, out_dir: Path, manifest: dict, stem: str = "tinyvit_glyphs") -> Path:
    """Write ``<stem>.pt`` and ``<stem>.json`` (with the weights' sha256) atomically."""
    weights = Path(out_dir) / f"{stem}.pt"
    save_weights(model, weights)  # atomic and byte-stable for identical tensors
    artifacts.write_manifest(weights.with_suffix(".json"),
                             {**manifest, "sha256": artifacts.sha256_file(weights)})  # fmt: skip
    return weights


def build(args, argv) -> tuple[TinyViT, dict]:
    """Pretrain with ``args`` and measure everything the manifest records."""
    cfg = ViTConfig(num_classes=len(GLYPH_CLASSES))
    t0 = time.time()
    model = pretrain(
        cfg, args.seed, args.epochs, args.samples_per_epoch, handwriting=args.handwriting
    )
    train_s = time.time() - t0
    xt, yt = glyph_split("test")
    pred = predict(model, xt)
    acc = (pred == yt).float().mean().item()
    print(f"glyph test accuracy {acc:.4f} after {train_s:.0f}s")
    manifest = {
        "config": cfg.to_dict(), "classes": list(GLYPH_CLASSES), "seed": args.seed,
        "epochs": args.epochs, "samples_per_epoch": args.samples_per_epoch,
        "source_test_accuracy": round(acc, 4), "source_test_size": len(yt),
        "confusion_pairs": confusion_pairs(yt, pred, GLYPH_CLASSES),
        "machine": reproduce.machine(), "reproducibility": REPRODUCIBILITY,
        "command": " ".join(["python -m ftnotes.pretrain", *(argv if argv is not None else sys.argv[1:])]),
        "train_seconds": round(train_s, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }  # fmt: skip
    if args.handwriting:  # only then: a glyphs-only manifest stays as it was before the option
        manifest["handwriting"] = args.handwriting
    if not args.no_transfer:
        manifest["digits_transfer"] = transfer_report(model, seed=args.seed)
        print(json.dumps(manifest["digits_transfer"]))
        manifest["near_vs_far"] = distance_report(model, seed=args.seed)
        print(json.dumps(manifest["near_vs_far"]))
    return model, manifest


#: What the manifest promises (README, "Where the pretrained weights come from").
REPRODUCIBILITY = (
    "bit-identical when retrained with the same command on the same kind of CPU (instruction-set "
    "flags as in 'machine', not only torch's capability level), thread count and torch version; "
    "elsewhere the same model within the tolerances of "
    "ftnotes.reproduce.VIT_TOLERANCES (python -m ftnotes.pretrain --verify checks)"
)


def compare(shipped_dir: Path, new_dir: Path, stem: str = "tinyvit_glyphs") -> reproduce.Verdict:
    """Verdict of the run in ``new_dir`` against the one in ``shipped_dir``, by the tolerances
    declared for the backbone."""
    files = [Path(d) / f"{stem}.pt" for d in (shipped_dir, new_dir)]
    shipped, new = (artifacts.read_manifest("tinyvit", f) for f in files)
    a, b = (torch.load(f, map_location="cpu", weights_only=True) for f in files)
    same = shipped["sha256"] == new["sha256"]
    if "hf" in shipped:  # the Hugging Face export of the same weights must hash the same too
        same = same and shipped["hf"].get("files") == new.get("hf", {}).get("files")
    return reproduce.verdict(shipped, new, artifacts.get("tinyvit").tolerances, same,
                             reproduce.max_abs_diff(a, b))  # fmt: skip


def _shipped(out_dir: Path, stem: str = "tinyvit_glyphs") -> bool:
    try:
        artifacts.read_manifest("tinyvit", out_dir / f"{stem}.pt")
    except artifacts.WeightsError:
        return False
    return (out_dir / f"{stem}.pt").is_file()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ftnotes.pretrain", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--seed", type=cli.nonnegative_int, default=0)
    ap.add_argument("--epochs", type=cli.positive_int, default=8)
    ap.add_argument("--samples-per-epoch", type=cli.positive_int, default=40_000)
    ap.add_argument("--handwriting", type=cli.nonnegative_int, default=SHIPPED_HANDWRITING, metavar="N",
                    help="stroke-drawn handwritten digits per epoch next to the glyphs "
                         f"(ftnotes.strokes; default {SHIPPED_HANDWRITING}, the shipped recipe; "
                         "0 trains on printed glyphs only)")  # fmt: skip
    # a clone regenerates its data/; an installed copy writes to the user's cache, never into
    # site-packages (then point $FTNOTES_WEIGHTS at the file, as the loader's message says)
    default_out = artifacts.DATA_DIR if artifacts.IN_CLONE else artifacts.cache_dir() / "weights"
    ap.add_argument("--out", type=Path, default=default_out, help=f"default {default_out}")
    ap.add_argument("--threads", type=cli.threads, default=1, help="torch threads (fixed: floats differ)")
    ap.add_argument("--no-transfer", action="store_true", help="skip the digits measurements")
    ap.add_argument("--export-hf-only", action="store_true",
                    help="only re-export the Hugging Face folder from the existing .pt")  # fmt: skip
    ap.add_argument("--verify", action="store_true",
                    help="retrain into a temporary folder and compare with --out (never writes "
                         "there); exit 1 only if the result differs beyond tolerance")  # fmt: skip
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.export_hf_only:
        return _export_hf(args.out / "tinyvit_glyphs.pt")
    if args.verify:
        if not _shipped(args.out):
            print(f"--verify: no shipped model in {args.out} to compare with", file=sys.stderr)
            return 2
        shipped = artifacts.read_manifest("tinyvit", args.out / "tinyvit_glyphs.pt")
        shipped_hw = shipped.get("handwriting", 0)  # absent: trained without
        if shipped_hw != args.handwriting:  # another recipe: it could only differ
            print(f"--verify: {args.out} was trained with --handwriting {shipped_hw}, "
                  f"not {args.handwriting}", file=sys.stderr)  # fmt: skip
            return 2
        with tempfile.TemporaryDirectory() as tmp:
            model, manifest = build(args, argv)
            _export_hf(save(model, Path(tmp), manifest))
            result = compare(args.out, Path(tmp))
        reproduce.print_verdict(result, f"{args.out / 'tinyvit_glyphs.pt'}")
        return result.exit_code
    had_model = _shipped(args.out)
    if had_model:  # keep the previous run to say how the new one compares
        previous = tempfile.TemporaryDirectory()
        for suffix in (".pt", ".json"):
            shutil.copy(args.out / f"tinyvit_glyphs{suffix}", previous.name)
    model, manifest = build(args, argv)
    weights = save(model, args.out, manifest)
    print("wrote", weights)
    _export_hf(weights)
    if had_model:
        result = compare(Path(previous.name), args.out)
        reproduce.print_verdict(result, "the new file against the one it replaced")
        if result.status != reproduce.IDENTICAL:
            print("  (git holds the old file: `git diff --stat data/` shows it, "
                  "`git checkout data/` restores it)")  # fmt: skip
        previous.cleanup()
    return 0


def _export_hf(weights: Path) -> int:
    """The Hugging Face folder is derived from the .pt, so it is (re)made from the file."""
    from ftnotes.hf import export_hf  # imports transformers: only when it is needed

    print("wrote", export_hf(weights))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
