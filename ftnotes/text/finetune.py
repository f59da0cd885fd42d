"""Fine-tuning the encoder for classification with 🤗 ``datasets``, ``Trainer`` and peft.

One path for every fine-tuned method of notebook 10 and its bench:

* :func:`new_classifier`: ``AutoModelForSequenceClassification`` with a new head (``num_labels``,
  ``id2label``, ``label2id``, checked against each other before anything loads); ``method``
  "full" (every weight trains), "lora" (peft LoRA, Hu et al. 2021, on ``targets``; the new head
  trains in full through ``task_type="SEQ_CLS"``), or "scratch" (the same architecture, randomly
  initialised: what the examples alone give);
* :func:`tokenize`: a ``datasets.Dataset`` of texts and labels, tokenized by ``map`` (truncated
  at ``max_length``, not padded: ``DataCollatorWithPadding`` pads each batch to its longest row);
* :func:`train`: ``Trainer`` with :func:`compute_metrics` (accuracy and macro-F1), the device
  chosen like the rest of the course (:func:`ftnotes.utils.get_device`), torch's threads pinned
  for the run, and exactly one progress bar (:func:`ftnotes.hf_trainer.quiet`; ``TQDM_DISABLE=1``
  silences it).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from ftnotes.checks import check_int
from ftnotes.hf_trainer import quiet
from ftnotes.text.encoder import check_texts, load_encoder, model_dir
from ftnotes.utils import get_device, pinned_threads, progress_disabled, scratch_dir, set_seed

METHODS = ("full", "lora", "scratch")
ALL_LINEAR = ("query", "key", "value", "attention.output.dense", "intermediate.dense",
              "output.dense")  # every nn.Linear of a BERT layer (not the pooler, not the head)
QUERY_VALUE = ("query", "value")
# The head BertForSequenceClassification puts on the encoder: the pooler (dense + tanh on [CLS])
# and the classifier. all-MiniLM-L6-v2 was trained through mean pooling, so its pooler was never
# trained for sentences: frozen, it held LoRA back (validation accuracy at rate 5e-3: 0.59 with
# the classifier alone, 0.66 with the pooler too; 6 abstract categories, 60 per class, seed 0).
# LoRA trains both in full (peft's modules_to_save).
HEAD = ("pooler", "classifier")

__all__ = ["METHODS", "ALL_LINEAR", "QUERY_VALUE", "check_labels", "new_classifier", "tokenize",
           "compute_metrics", "train", "training_args"]  # fmt: skip


def check_labels(label_names=None, num_labels=None, id2label=None) -> dict[int, str]:
    """``id2label`` ({0: name, ...}) from any of the three ways to say the labels, refused
    when they disagree (a head of ``num_labels`` rows whose names do not match is a silent bug:
    predictions come out under the wrong names)."""
    if label_names is not None:
        names = list(label_names)
        if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) < len(names):
            raise ValueError(f"label_names must be distinct non-empty strings, got {label_names!r}")
        mapping = dict(enumerate(names))
        if id2label is not None and {int(k): v for k, v in id2label.items()} != mapping:
            raise ValueError(f"id2label {id2label!r} does not match label_names {names!r}")
        id2label = mapping
    if id2label is None:
        raise ValueError("give label_names or id2label: the head needs to know its classes")
    if not isinstance(id2label, dict) or sorted(id2label) != list(range(len(id2label))):
        raise ValueError(f"id2label must map 0 .. n-1 to names, got {id2label!r}")
    if len(id2label) < 2:
        raise ValueError(f"a classifier needs at least 2 labels, got id2label={id2label!r}")
    if num_labels is not None and num_labels != len(id2label):
        raise ValueError(f"num_labels={num_labels!r} but id2label has {len(id2label)} labels "
                         f"{list(id2label.values())}: they must agree")
    return dict(id2label)


def new_classifier(label_names, method="full", r=8, targets=ALL_LINEAR, lora_alpha=None,
                   seed=0, path=None, num_labels=None, id2label=None):
    """A ``BertForSequenceClassification`` with a new head for ``label_names`` (head rows
    initialised with ``seed``); for "lora" wrapped by peft (``lora_alpha`` default 2r)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    id2label = check_labels(label_names, num_labels, id2label)
    heads = dict(num_labels=len(id2label), id2label=id2label,
                 label2id={v: k for k, v in id2label.items()})  # fmt: skip
    set_seed(seed)
    if method == "scratch":
        config = AutoConfig.from_pretrained(model_dir(path), **heads)
        return AutoModelForSequenceClassification.from_config(config).train()
    model, _ = load_encoder(path, AutoModelForSequenceClassification, **heads)
    if method == "lora":
        model = add_lora(model, r, targets, lora_alpha)
    return model.train()


def add_lora(model, r=8, targets=ALL_LINEAR, lora_alpha=None):
    """peft LoRA on ``targets`` (names matched as peft does: the module name ends with one);
    the classification head trains in full (``task_type="SEQ_CLS"`` puts it in
    ``modules_to_save``). Refuses a model that already has an adapter: no stacking."""
    from peft import LoraConfig, get_peft_model

    check_int("r", r)
    if hasattr(model, "peft_config"):
        raise ValueError("model already has a peft adapter: start from a fresh classifier")
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    unknown = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if unknown or not targets:
        raise ValueError(f"targets {unknown or targets!r} match no nn.Linear of the model; "
                         f"layer 0 has {[n.split('layer.0.')[1] for n in names if 'layer.0.' in n]}")
    config = LoraConfig(r=r, lora_alpha=lora_alpha or 2 * r, lora_dropout=0.0,
                        target_modules=list(targets), task_type="SEQ_CLS",
                        modules_to_save=list(HEAD))  # fmt: skip
    with warnings.catch_warnings():  # peft 0.21 still reads transformers' deprecated name
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
        return get_peft_model(model, config)


def tokenize(tokenizer, texts, labels=None, max_length=64, sort=False):
    """A ``datasets.Dataset`` with ``input_ids``, ``attention_mask`` (and ``labels``), made by
    ``map`` in batches: each text truncated to ``max_length`` tokens ([CLS] and [SEP]
    included), not padded. ``sort=True`` orders rows by length (for evaluation: each batch then
    pads little; the metrics do not depend on the order)."""
    import datasets

    texts = check_texts(texts)
    check_int("max_length", max_length, 3)
    columns = {"text": texts}
    if labels is not None:
        labels = [int(y) for y in labels]
        if len(labels) != len(texts):
            raise ValueError(f"labels has {len(labels)} entries for {len(texts)} texts")
        columns["labels"] = labels
    datasets.disable_progress_bars()  # map's bars: one bar per training, none elsewhere
    ds = datasets.Dataset.from_dict(columns)
    ds = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
                batched=True, remove_columns=["text"])  # fmt: skip
    if sort:
        order = sorted(range(len(ds)), key=lambda i: len(ds[i]["input_ids"]))
        ds = ds.select(order)
    return ds


def compute_metrics(eval_pred) -> dict[str, float]:
    """Accuracy and macro-F1 (the mean over classes of each class's F1) from an
    ``EvalPrediction``: what ``Trainer`` calls after every evaluation."""
    from sklearn.metrics import f1_score

    logits = eval_pred.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    pred, labels = np.argmax(logits, axis=-1), eval_pred.label_ids
    return {"accuracy": float((pred == labels).mean()),
            "macro_f1": float(f1_score(labels, pred, average="macro"))}  # fmt: skip


def training_args(output_dir, lr, epochs, batch_size=16, seed=0, device=None, **overrides):
    """``TrainingArguments`` of every run: linear decay after 10% warmup, weight decay 0.01,
    gradients clipped at norm 1 (Trainer's defaults but the warmup), no checkpoints, no eval
    during training, no reporting; bf16 on a GPU that has it, else fp16 (with a grad scaler)."""
    from transformers import TrainingArguments

    device = get_device(device)
    cuda = device.type == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    kw = dict(output_dir=str(output_dir), learning_rate=lr, num_train_epochs=epochs,
              per_device_train_batch_size=batch_size, per_device_eval_batch_size=64,
              seed=seed, data_seed=seed, warmup_steps=0.1, weight_decay=0.01, max_grad_norm=1.0,
              lr_scheduler_type="linear", eval_strategy="no", save_strategy="no",
              logging_strategy="steps", logging_steps=5, report_to="none",
              disable_tqdm=progress_disabled(),
              use_cpu=device.type == "cpu", bf16=bf16, fp16=cuda and not bf16,
              dataloader_num_workers=0)  # fmt: skip
    return TrainingArguments(**(kw | overrides))


def train(model, tokenizer, train_ds, lr, epochs, batch_size=16, seed=0, threads=1, device=None,
          desc="train", **overrides):
    """Train ``model`` on ``train_ds`` with ``Trainer``; returns ``(trainer, seconds)``. Torch
    runs on ``threads`` threads during the run (the course's rule: 1 unless you say otherwise)."""
    from transformers import DataCollatorWithPadding, Trainer

    check_int("epochs", epochs)
    check_int("batch_size", batch_size)
    check_int("threads", threads)
    if not (isinstance(lr, float | int) and 0 < lr < 1):
        raise ValueError(f"lr must be a number in (0, 1), got {lr!r}")
    args = training_args(scratch_dir(), float(lr), epochs, batch_size, seed, device, **overrides)
    trainer = quiet(Trainer(model=model, args=args, train_dataset=train_ds,
                            data_collator=DataCollatorWithPadding(tokenizer),
                            compute_metrics=compute_metrics), desc, leave=False)  # fmt: skip
    with pinned_threads(threads):
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return trainer, seconds
