"""Exercises of notebook 08 (language models): the answer-only label mask, exact match with
normalisation, and predicting the trainable count of a LoraConfig on a Llama-style model. The
reference solutions sit next to their checkers."""

from __future__ import annotations

import torch

from .core import exercise
from .fixtures import as_int, returned

# ---------------------------------------------------------------- 08_label_mask


def build_labels(input_ids, attention_mask, prompt_lengths):
    labels = input_ids.clone()
    positions = torch.arange(input_ids.shape[1]).unsqueeze(0)  # (1, T)
    labels[positions < torch.as_tensor(prompt_lengths).unsqueeze(1)] = -100
    labels[attention_mask == 0] = -100
    return labels


def _batch():
    # two right-padded rows: prompt 4 + answer 3, prompt 3 + answer 2 (+ 2 pads); pad id 0
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 4], [5, 6, 8, 11, 4, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    return ids, mask, [4, 3]


@exercise(
    "08_label_mask",
    title="Labels for the loss on the answer only",
    kind="function",
    reference=build_labels,
    stub='''
    def build_labels(input_ids, attention_mask, prompt_lengths):
        """input_ids, attention_mask: (B, T) int64, right-padded; prompt_lengths: B ints, the
        number of prompt tokens at the start of each row. Return labels (B, T): a new tensor
        equal to input_ids on the answer tokens and -100 on the prompt and on padding."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Start from input_ids.clone() (never change the caller's tensor), then overwrite the "
        "positions that must not be scored with -100.",
        "Row i's prompt is positions 0 .. prompt_lengths[i] - 1; padding is where "
        "attention_mask == 0. torch.arange(T) compared with the lengths gives the prompt mask.",
        "Compare a (1, T) row of positions with a (B, 1) column of prompt lengths: broadcasting "
        "gives the (B, T) prompt mask. Set the labels to -100 there and wherever the attention "
        "mask is 0.",
    ],
)
def _check_label_mask(fn, ctx):
    ids, mask, lengths = _batch()
    want = build_labels(ids, mask, lengths)
    got = returned(fn(ids.clone(), mask.clone(), list(lengths)), "build_labels", ctx,
                   "the labels (B, T)")  # fmt: skip
    ctx.expect(isinstance(got, torch.Tensor) and got.shape == ids.shape,
               f"return a tensor of shape {tuple(ids.shape)}, got {got!r:.80}")  # fmt: skip
    ctx.expect(not ((got == 0) & (want == -100) & (mask == 1)).any(), "you put 0 where the loss must "
               "skip a token: 0 is a real token id (<pad>); transformers skips -100.")  # fmt: skip
    ctx.expect(not ((got[:, :3] == ids[:, :3]).all()), "the prompt tokens keep their ids: the "
               "model is trained to predict the prompt too. Set them to -100.")  # fmt: skip
    ctx.expect(not (got[1, 5:] != -100).any(), "the padding at the end of row 1 is scored: set "
               "labels to -100 where attention_mask == 0.")  # fmt: skip
    ctx.expect(got[0, 4] != -100 and got[1, 3] != -100, "the first answer token is -100: "
               "positions 0 .. prompt_length - 1 are the prompt, prompt_length is the answer.")  # fmt: skip
    ctx.expect(got[0, 3] == -100 and got[1, 2] == -100, "the last prompt token is scored: it "
               "belongs to the prompt (mask positions < prompt_length).")  # fmt: skip
    ctx.expect(torch.equal(got, want), f"labels should be {want.tolist()}, got {got.tolist()}")
    ctx.ok("-100 on the prompt and the padding, the token ids on the answer")
    # other lengths, T and a batch of 3 rows: nothing about the first batch may be fixed
    for ids2, lengths2 in ((torch.tensor([[5, 6, 9, 4, 0], [7, 8, 9, 10, 4]]), [2, 1]),
                           (torch.tensor([[5, 9, 4, 0, 0, 0], [6, 7, 8, 9, 10, 4],
                                          [8, 8, 5, 6, 4, 0]]), [1, 3, 2])):  # fmt: skip
        mask2 = (ids2 != 0).long()
        got = fn(ids2, mask2, lengths2)
        ctx.expect(isinstance(got, torch.Tensor) and torch.equal(got, build_labels(ids2, mask2, lengths2)),
                   f"wrong on a batch of {len(ids2)} rows of {ids2.shape[1]} tokens (prompt "
                   f"lengths {lengths2}): use the shapes and lengths you are given, never fixed "
                   "sizes.")  # fmt: skip
    ctx.ok("also on batches of 2 x 5 and 3 x 6 tokens")


# ---------------------------------------------------------------- 08_exact_match


def normalized_exact_match(predictions, answers):
    def norm(text):
        return " ".join(text.lower().split())

    return sum(norm(p) == norm(a) for p, a in zip(predictions, answers)) / len(answers)


@exercise(
    "08_exact_match",
    title="Exact match with normalisation",
    kind="function",
    reference=normalized_exact_match,
    stub='''
    def normalized_exact_match(predictions, answers):
        """Share (a float in [0, 1]) of predictions equal to their answer after normalising both:
        lowercase, no leading or trailing whitespace, runs of whitespace inside as one space."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Write norm(text) once and apply it to both sides; compare pair by pair with zip.",
        "text.split() with no argument splits on any run of whitespace and drops the ends; "
        "' '.join(...) puts single spaces back.",
        "Count the pairs whose normalised strings are equal and divide by the number of answers "
        "(true division gives a float).",
    ],
)
def _check_exact_match(fn, ctx):
    def run(preds, answers):
        got = returned(fn(list(preds), list(answers)), "normalized_exact_match", ctx, "a float")
        ctx.expect(isinstance(got, float) and not isinstance(got, bool),
                   f"return a Python float, got {type(got).__name__} {got!r:.40}")  # fmt: skip
        return got

    ctx.expect(abs(run(["abc", "x"], ["abc", "y"]) - 0.5) < 1e-9, "1 of 2 right should give 0.5")
    ctx.ok("plain matches counted as a share")
    got = run(["abc ", " ab"], ["abc", "ab"])
    ctx.expect(got == 1.0, f"'abc ' vs 'abc' should match (strip the ends), you gave {got}")
    got = run(["ABC", "Ab"], ["abc", "ab"])
    ctx.expect(got == 1.0, f"'ABC' vs 'abc' should match (lowercase both), you gave {got}")
    got = run(["a  b", "a\tb"], ["a b", "a b"])
    ctx.expect(got == 1.0, "'a  b' (two spaces) vs 'a b' should match: collapse runs of "
               f"whitespace inside, you gave {got}")  # fmt: skip
    ctx.ok("strip, lowercase and collapsed whitespace")
    got = run(["ab", "abc", "b a"], ["abc", "ab", "a b"])
    ctx.expect(got == 0.0, f"'ab' vs 'abc' or 'b a' vs 'a b' are different answers (no "
               f"prefix or bag-of-letters matching), you gave {got}")  # fmt: skip
    ctx.ok("different strings never match")
    got = run(["x", "b", "c"], ["x", "y", "z"])
    ctx.expect(abs(got - 1 / 3) < 1e-9, f"1 of 3 right should give 1/3 = {1 / 3!r}, you gave "
               f"{got!r}: return the share unrounded, with true division.")  # fmt: skip
    got = run(["x", " Y", "z", "w"], ["x", "y", "z", "v"])
    ctx.expect(abs(got - 0.75) < 1e-9, f"3 of 4 right should give 0.75, you gave {got}: divide by "
               "the number of answers.")  # fmt: skip
    ctx.ok("1 of 3 gives 1/3 unrounded, 3 of 4 give 0.75")


# ---------------------------------------------------------------- 08_lora_count


def lora_trainable(config, r, target_modules):
    d, f = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    shapes = {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
              "gate_proj": (d, f), "up_proj": (d, f), "down_proj": (f, d)}  # (in, out)  # fmt: skip
    per_layer = sum(r * (shapes[m][0] + shapes[m][1]) for m in target_modules)  # A: r x in, B: out x r
    return config.num_hidden_layers * per_layer


def _peft_count(config, r, targets) -> int:
    import peft
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(config)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=r, target_modules=list(targets)))
    return wrapped.get_nb_trainable_parameters()[0]


@exercise(
    "08_lora_count",
    title="Predict the trainable parameters of a LoraConfig",
    kind="function",
    reference=lora_trainable,
    stub='''
    def lora_trainable(config, r, target_modules):
        """Trainable parameters of LoraConfig(r=r, target_modules=target_modules) on a
        LlamaForCausalLM with this LlamaConfig (hidden_size, intermediate_size,
        num_hidden_layers, num_attention_heads, num_key_value_heads; head_dim = hidden_size //
        num_attention_heads). target_modules: names among q_proj, k_proj, v_proj, o_proj,
        gate_proj, up_proj, down_proj. Predict it from the config: build no model."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "LoRA on a Linear with in_features n and out_features m adds A (r x n) and B (m x r): "
        "r * (n + m) parameters, in every layer.",
        "q_proj and o_proj are hidden x (heads * head_dim); k_proj and v_proj have only "
        "num_key_value_heads * head_dim outputs (grouped-query attention); gate_proj and "
        "up_proj go hidden -> intermediate, down_proj back.",
        "num_hidden_layers * sum(r * (in + out) for each target)",
    ],
)
def _check_lora_count(fn, ctx):
    from transformers import LlamaConfig

    cases = [
        (dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=4), 4, ("q_proj", "v_proj")),
        (dict(hidden_size=32, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2), 2, ("q_proj", "k_proj", "v_proj", "o_proj")),
        (dict(hidden_size=16, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=1), 3, ("gate_proj", "up_proj", "down_proj", "v_proj")),
    ]  # fmt: skip
    for kw, r, targets in cases:
        config = LlamaConfig(vocab_size=20, **kw)
        want = _peft_count(config, r, targets)
        got = as_int(fn(config, r, list(targets)), "lora_trainable", ctx)
        per_layer = want // kw["num_hidden_layers"]
        ctx.expect(got != per_layer, f"{got} is one layer's count: LoRA goes into every one of "
                   f"the {kw['num_hidden_layers']} layers.")  # fmt: skip
        square = kw["num_hidden_layers"] * r * 2 * kw["hidden_size"] * len(targets)
        if kw["num_key_value_heads"] < kw["num_attention_heads"] and got == square:
            ctx.fail(f"{got} counts k_proj/v_proj as hidden x hidden: with num_key_value_heads="
                     f"{kw['num_key_value_heads']} they have fewer outputs (grouped-query "
                     "attention).")  # fmt: skip
        ctx.expect(got == want, f"r={r} on {list(targets)} ({kw}): peft counts {want:,}, you "
                   f"predicted {got:,}. Each Linear (in n, out m) adds r * (n + m).")  # fmt: skip
    ctx.ok("equal to peft's count for 3 configs (with grouped-query attention and the MLP)")
