"""Exercises of notebook 07 (🤗 transformers and peft): a LoraConfig for a spec, picking target
modules by a rule, ``compute_metrics`` for ``Trainer``, growing a classifier. The reference
solutions sit next to their checkers."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .core import exercise
from .fixtures import images, names_list, returned, tiny_vit


def _tiny_hf(depth: int = 2, num_classes: int = 10, seed: int = 0, dim: int = 16):
    """A seeded ViTForImageClassification (width ``dim``) made from a tiny TinyViT."""
    from ftnotes.hf import to_hf  # imports transformers only when a notebook-07 check runs

    model = tiny_vit(num_classes=num_classes, depth=depth, seed=seed, dim=dim)
    return to_hf(model, [str(i) for i in range(num_classes)])


def _lora_layers(peft_model) -> dict:
    from peft.tuners.lora import LoraLayer

    return {n.removeprefix("base_model.model."): m for n, m in peft_model.named_modules()
            if isinstance(m, LoraLayer)}  # fmt: skip


def _wrap(config, model, ctx):
    """get_peft_model(model, config), or a failure that says what peft objected to."""
    from peft import PeftConfig, get_peft_model

    ctx.expect(isinstance(config, PeftConfig),
               f"return a peft config object (LoraConfig(...)), got {type(config).__name__}")  # fmt: skip
    try:
        return get_peft_model(model, config)
    except ValueError as err:
        leaves = sorted({n.rpartition(".")[2] for n, m in model.named_modules()
                         if isinstance(m, nn.Linear)})  # fmt: skip
        ctx.fail(f"peft refused the config: {str(err)[:160]}. This model's nn.Linear names "
                 f"are {', '.join(leaves)}.")  # fmt: skip


# ---------------------------------------------------------------- 07_lora_config


def make_lora_config():
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"],
                      modules_to_save=["classifier"])  # fmt: skip


@exercise(
    "07_lora_config",
    title="A LoraConfig for a stated spec",
    kind="function",
    reference=make_lora_config,
    stub='''
    def make_lora_config():
        """A peft LoraConfig: rank 8, scaling lora_alpha / r = 2, dropout 0.1 on the LoRA path,
        LoRA on the query and value projections of every layer, and the classifier trained
        in full (it is new for the task)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "from peft import LoraConfig; its fields are r, lora_alpha, lora_dropout, "
        "target_modules and modules_to_save.",
        "The attention projections of transformers' ViT are q_proj, k_proj, v_proj, o_proj; "
        "scaling = lora_alpha / r, so lora_alpha = 2 * r.",
        'LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"], '
        'modules_to_save=["classifier"])',
    ],
)
def _check_lora_config(fn, ctx):
    for depth in (3, 2):  # every layer, whatever the depth: no layer list learnt by heart
        config = returned(fn(), "make_lora_config", ctx, "a LoraConfig")
        model = _wrap(config, _tiny_hf(depth=depth), ctx)
        layers = _lora_layers(model)
        want = {f"vit.layers.{i}.attention.{p}" for i in range(depth) for p in ("q_proj", "v_proj")}
        extra, missing = sorted(set(layers) - want), sorted(want - set(layers))
        ctx.expect(not extra, f"LoRA was also put on {names_list(extra)}: the spec says query "
                   "and value projections only.")  # fmt: skip
        ctx.expect(not missing, f"on a {depth}-layer model {names_list(missing)} got no LoRA: "
                   "target q_proj and v_proj of every layer.")  # fmt: skip
    ctx.ok("LoRA wraps exactly q_proj and v_proj of every layer (models of 3 and 2 layers)")
    layer = next(iter(layers.values()))
    r, scaling = layer.r["default"], layer.scaling["default"]
    ctx.expect(r == 8, f"rank r is {r}; the spec says 8.")
    ctx.expect(scaling != 0.5, "scaling is 0.5: you swapped r and lora_alpha (scaling = α/r).")
    ctx.expect(abs(scaling - 2.0) < 1e-9, f"scaling lora_alpha / r is {scaling}; it should be 2.")
    drop = layer.lora_dropout["default"]
    p = drop.p if isinstance(drop, nn.Dropout) else 0.0
    ctx.expect(abs(p - 0.1) < 1e-9, f"LoRA dropout is {p}; the spec says 0.1.")
    ctx.ok("r = 8, scaling = 2, lora_dropout = 0.1")
    trains = {n for n, q in model.named_parameters() if q.requires_grad}
    head = [n for n in trains if "classifier" in n]
    ctx.expect(head, "the classifier does not train: name it in modules_to_save (it is new).")
    other = sorted(n for n in trains if "lora_" not in n and "classifier" not in n)
    ctx.expect(not other, f"{names_list(other)} train too: only LoRA and the classifier should.")
    ctx.ok("only lora_A, lora_B and the classifier train")


# ---------------------------------------------------------------- 07_pick_targets


def pick_targets(model, last_k):
    depth = model.config.num_hidden_layers
    names = []
    for name, module in model.named_modules():
        parts = name.split(".")
        if isinstance(module, nn.Linear) and parts[:2] == ["vit", "layers"]:
            if int(parts[2]) >= depth - last_k:
                names.append(name)
    return names


@exercise(
    "07_pick_targets",
    title="Target modules from named_modules() by a rule",
    kind="function",
    reference=pick_targets,
    stub='''
    def pick_targets(model, last_k):
        """Full names (as model.named_modules() gives them) of every nn.Linear inside the last
        `last_k` encoder layers `vit.layers.N` (attention and MLP), never the classifier."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Loop over model.named_modules(); keep isinstance(module, nn.Linear) whose name starts "
        "with vit.layers.",
        "The layer number is name.split('.')[2]; the last k of depth = "
        "model.config.num_hidden_layers layers are those with number >= depth - k.",
        "names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and "
        "n.startswith('vit.layers.') and int(n.split('.')[2]) >= depth - last_k]",
    ],
)
def _check_pick_targets(fn, ctx):
    for depth, k in ((3, 1), (4, 2), (2, 2)):
        model = _tiny_hf(depth=depth)
        got = returned(fn(model, k), "pick_targets", ctx, "a list of module names")
        ctx.expect(isinstance(got, (list, tuple)) and all(isinstance(n, str) for n in got),
                   f"return a list of module names (str), got {got!r:.80}")  # fmt: skip
        twice = sorted({n for n in got if list(got).count(n) > 1})
        ctx.expect(not twice, f"{names_list(twice)} appear twice in your list: name each once.")
        got, want = set(got), set(pick_targets(model, k))
        ctx.expect("classifier" not in got, "the classifier is in your list: it is the task "
                   "head (modules_to_save), not a LoRA target.")  # fmt: skip
        short = {n for n in got if "." not in n}
        ctx.expect(not short, f"{names_list(short)}: give full names such as "
                   "vit.layers.3.attention.q_proj, not leaf names (those match every layer).")  # fmt: skip
        ctx.expect(not (got - want), f"depth {depth}, last_k={k}: {names_list(got - want)} "
                   f"are not in the last {k} layer(s) (count from the top: the layer number "
                   f"must be >= {depth - k}).")  # fmt: skip
        ctx.expect(not (want - got), f"depth {depth}, last_k={k}: {names_list(want - got)} "
                   "are missing (every nn.Linear: q_proj, k_proj, v_proj, o_proj, fc1, fc2).")  # fmt: skip
    ctx.ok("the right nn.Linear names for depths 2, 3, 4 and last_k 1, 2")
    from peft import LoraConfig

    model = _tiny_hf(depth=3)
    wrapped = _wrap(LoraConfig(r=2, target_modules=list(fn(model, 1))), model, ctx)
    ctx.expect(len(_lora_layers(wrapped)) == 6, "peft should wrap the 6 Linear layers of the "
               "top layer with your names.")  # fmt: skip
    ctx.ok("peft's LoraConfig(target_modules=your list) wraps exactly the top layer's 6 Linears")


# ---------------------------------------------------------------- 07_compute_metrics


def compute_metrics(eval_pred):
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):  # some models also return hidden states
        logits = logits[0]
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def _eval_pred(logits, labels):
    from transformers import EvalPrediction

    return EvalPrediction(predictions=logits, label_ids=labels)


@exercise(
    "07_compute_metrics",
    title="compute_metrics for Trainer",
    kind="function",
    reference=compute_metrics,
    stub='''
    def compute_metrics(eval_pred):
        """Trainer calls this after each evaluation with an EvalPrediction: .predictions
        (numpy logits (N, C), or a tuple whose first entry they are) and .label_ids (N,).
        Return {"accuracy": a Python float}."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "eval_pred.predictions and eval_pred.label_ids are numpy arrays; the predicted class is "
        "the argmax over the classes, the last axis.",
        "Some models return more than logits: then predictions is a tuple, logits first.",
        "Compare the predicted classes with the labels element by element, take the mean of that "
        "boolean array, and turn the numpy scalar into a Python float before you put it in the "
        "dict under the key 'accuracy'.",
    ],
)
def _check_compute_metrics(fn, ctx):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 6)).astype(np.float32)  # square: a wrong axis still runs
    labels = np.argmax(logits, -1)
    labels[:2] = (labels[:2] + 1) % 6  # 4 of 6 right
    want = 4 / 6
    got = returned(fn(_eval_pred(logits, labels)), "compute_metrics", ctx, "{'accuracy': ...}")
    ctx.expect(isinstance(got, dict), f"return a dict such as {{'accuracy': 0.5}}, got {got!r:.80}")
    ctx.expect("accuracy" in got, f"the key should be 'accuracy' (Trainer logs it as "
               f"eval_accuracy), got keys {sorted(got)}")  # fmt: skip
    acc = got["accuracy"]
    ctx.expect(isinstance(acc, float) and not isinstance(acc, bool),
               f"accuracy should be a Python float (JSON-logged), got {type(acc).__name__}")  # fmt: skip
    wrong_axis = float((np.argmax(logits, 0) == labels).mean())
    ctx.expect(abs(acc - wrong_axis) > 1e-6, "that is the argmax over examples (axis 0): take "
               "it over the classes (axis -1).")  # fmt: skip
    ctx.expect(abs(acc - (1 - want)) > 1e-6, "you counted the wrong predictions, not the right.")
    ctx.expect(abs(acc - want) < 1e-6, f"accuracy should be 4/6 = {want:.4f}, got {acc}")
    ctx.ok("accuracy = share of argmax over classes equal to the label, as a float")
    got = fn(_eval_pred((logits, rng.normal(size=(6, 3, 4))), labels))
    ctx.expect(isinstance(got, dict) and abs(got.get("accuracy", -1) - want) < 1e-6,
               "with predictions = (logits, hidden_states) take the first entry.")  # fmt: skip
    ctx.ok("also when predictions is a tuple (logits first)")
    logits = rng.normal(size=(10, 3)).astype(np.float32)  # another N and C: 7 of 10 right
    labels = np.argmax(logits, -1)
    labels[:3] = (labels[:3] + 1) % 3
    got = fn(_eval_pred(logits, labels))
    acc = got.get("accuracy", -1) if isinstance(got, dict) else got
    ctx.expect(isinstance(acc, float) and abs(acc - 0.7) < 1e-6, f"on 10 examples of 3 classes "
               f"(7 right) accuracy should be 0.7, got {acc!r}: divide by the number of "
               "examples, not a fixed number.")  # fmt: skip
    ctx.ok("0.7 on 10 examples of 3 classes")


# ---------------------------------------------------------------- 07_grow_classifier


def grow_classifier(model, new_labels):
    old = model.classifier
    n_old = old.out_features
    head = nn.Linear(old.in_features, n_old + len(new_labels))
    with torch.no_grad():
        head.weight[:n_old] = old.weight
        head.bias[:n_old] = old.bias
    model.classifier = head
    labels = [model.config.id2label[i] for i in range(n_old)] + list(new_labels)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {c: i for i, c in enumerate(labels)}
    model.num_labels = model.config.num_labels = len(labels)
    return model


@exercise(
    "07_grow_classifier",
    title="Grow an HF classifier, keeping the old rows",
    kind="function",
    reference=grow_classifier,
    stub='''
    def grow_classifier(model, new_labels):
        """Give a ViTForImageClassification len(new_labels) more classes: a new
        model.classifier (nn.Linear) whose first rows (weight and bias) are the old ones,
        and config.id2label / label2id / num_labels (and model.num_labels) updated to the old
        labels followed by new_labels. Return the model."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Make head = nn.Linear(in_features, old + new); copy old.weight and old.bias into its "
        "first rows under torch.no_grad(); set model.classifier = head.",
        "The config drives the labels: id2label maps index -> name, label2id the reverse; "
        "num_labels follows from them (set model.num_labels too).",
        "ignore_mismatched_sizes=True would re-initialise all rows: copying is the point.",
    ],
)
def _check_grow_classifier(fn, ctx):
    # two models (10 classes of width 16 + 3 new; 5 classes of width 24 + 2 new): no size fixed
    _check_grow_on(fn, ctx, classes=10, dim=16, new=["A", "B", "C"], first=True)
    _check_grow_on(fn, ctx, classes=5, dim=24, new=["x", "y"], first=False)
    ctx.ok("the same for a width-24 model with 5 classes and 2 new ones")


def _check_grow_on(fn, ctx, classes, dim, new, first):
    model, total = _tiny_hf(num_classes=classes, dim=dim), classes + len(new)
    x = images(6)
    with torch.no_grad():
        before = model(pixel_values=x).logits
    w_old = model.classifier.weight.detach().clone()
    out = returned(fn(model, list(new)), "grow_classifier", ctx, "the model")
    ctx.expect(hasattr(out, "classifier"), "return the model.")
    head = out.classifier
    ctx.expect(isinstance(head, nn.Linear) and (head.in_features, head.out_features)
               == (dim, total), f"the classifier should be nn.Linear({dim} -> {total}) "
               f"({classes} old + {len(new)} new classes), got {head}")  # fmt: skip
    ctx.expect(torch.equal(head.weight[:classes], w_old), f"the first {classes} weight rows are "
               f"not the old ones: copy old.weight into head.weight[:{classes}].")  # fmt: skip
    frozen = [n for n, p in head.named_parameters() if not p.requires_grad]
    ctx.expect(not frozen, f"the new classifier's {', '.join(frozen)} is frozen: the new rows "
               "must train.")  # fmt: skip
    with torch.no_grad():
        after = out(pixel_values=x).logits
    ctx.expect(after.shape == (6, total), f"logits should be (6, {total}), got {tuple(after.shape)}")
    ctx.expect(torch.allclose(after[:, :classes], before, atol=1e-6), "the old classes' logits "
               "changed: copy the old bias too.")  # fmt: skip
    if first:
        ctx.ok("13 outputs, all trainable; the old 10 give exactly the old logits")
    cfg = out.config
    want = [str(i) for i in range(classes)] + list(new)
    got = [cfg.id2label.get(i) for i in range(total)]
    ctx.expect(got == want, f"config.id2label should list {want}, got {got}")
    ctx.expect(cfg.label2id == {c: i for i, c in enumerate(want)}, "config.label2id should be "
               "the reverse of id2label (name -> index).")  # fmt: skip
    ctx.expect(cfg.num_labels == total and getattr(out, "num_labels", None) == total,
               f"set config.num_labels and model.num_labels to {total}.")  # fmt: skip
    if first:
        ctx.ok("config.id2label, label2id and num_labels updated, old labels first")
    y = torch.tensor([0, total - 2, total - 1, 3, classes, 1])
    loss = out(pixel_values=x, labels=y).loss
    ctx.expect(loss is not None and torch.isfinite(loss), "the model's loss with the new "
               "labels should be finite.")  # fmt: skip
    if first:
        ctx.ok("the model trains with labels of the new classes")
