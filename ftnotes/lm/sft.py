"""Supervised fine-tuning of the tiny LM: encoding with checks, the answer-only loss, a training
loop for any model (plain or peft-wrapped), greedy generation and exact match.

A training example is one chat turn, tokenised as ``prompt_ids + answer_ids``::

    <|user|> m i r r o r   a b c <|end|> <|assistant|> a b c c b a <|end|>
    '----------------- prompt: labels -100 ----------------------'  '-- answer: labels = ids --'

``labels`` equal ``input_ids`` on the answer (with its closing ``<|end|>``, so the model learns
to stop) and ``-100`` on the prompt and on padding: transformers' causal-LM loss shifts the
labels by one and ignores ``-100``, so only the answer tokens are predicted and scored. The
prompt is input, not something to learn: it is random letters the model could only memorise.
"""

from __future__ import annotations

import inspect
import re
import time
import warnings

import torch

from ftnotes.checks import check_bool, check_int, check_number
from ftnotes.lm.model import ASSISTANT, END, SPECIAL_TOKENS, USER
from ftnotes.schedules import warmup_cosine_scheduler

IGNORE = -100  # the label transformers' cross-entropy skips
_SPECIAL_LIKE = re.compile(r"<\|?[^<>|\s]*\|?>")

# Raised inside the libraries, not by our calls: prompt tuning's generate passes position ids
# that peft drops on purpose (it prepends virtual tokens), and peft's prefix tuning (0.21) passes
# the prefix as `past_key_values`, which transformers 5 renamed `cache` and announces it will
# stop accepting in 5.40. A student can do nothing about either, so they are hidden; what the
# second hides is guarded instead: tests/test_lm.py checks that a prefix-tuned forward still
# differs from the base model's, and pyproject.toml keeps transformers below 5.40.
warnings.filterwarnings("ignore", message="Position ids are not supported for parameter efficient")
warnings.filterwarnings("ignore", message="`past_key_values` is deprecated", category=FutureWarning)


def prompt_text(prompt: str) -> str:
    """The chat template for one user turn with the generation prompt, as a string (what
    ``tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
    add_generation_prompt=True)`` returns, without rendering Jinja for every example)."""
    return f"{USER}{prompt}{END}{ASSISTANT}"


def check_text(tokenizer, text, name: str = "prompt", vocab: dict | None = None) -> None:
    """ValueError naming ``name``, the offending part of ``text`` and what is allowed, if the
    tokenizer cannot encode ``text`` without ``<unk>`` (an unknown character or special token).
    ``vocab``: ``tokenizer.get_vocab()``, fetched once by callers that check many texts."""
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a str, got {type(text).__name__}: {text!r:.60}")
    vocab = tokenizer.get_vocab() if vocab is None else vocab
    for match in _SPECIAL_LIKE.finditer(text):
        if match.group() not in vocab:
            raise ValueError(
                f"{name}={text!r} contains {match.group()!r}, which is not a special token of "
                f"this tokenizer; allowed special tokens are {list(SPECIAL_TOKENS)}"
            )
    bad = sorted({c for c in _SPECIAL_LIKE.sub("", text) if c not in vocab})
    if bad:
        chars = sorted(t for t in vocab if len(t) == 1)
        raise ValueError(f"{name}={text!r} contains {bad}, which are not in the vocabulary; "
                         f"allowed characters are {''.join(chars)!r}")  # fmt: skip


def check_texts(tokenizer, texts, name) -> None:
    """:func:`check_text` for every text of a list; ``name(i)`` names the i-th in an error.

    One :func:`check_text` of all the texts joined by newlines first (the pretraining stream is
    384,000 examples; whitespace ends a special-like match, so none spans two texts); only if that
    fails does it check text by text, to name the first offender."""
    vocab = tokenizer.get_vocab()
    if all(isinstance(t, str) and "\n" not in t for t in texts):
        try:
            return check_text(tokenizer, "\n".join(texts), vocab={**vocab, "\n": -1})
        except ValueError:
            pass
    for i, text in enumerate(texts):
        check_text(tokenizer, text, name(i), vocab)


def _context(tokenizer, model=None) -> int:
    if model is not None:
        return int(getattr(model.config, "max_position_embeddings", tokenizer.model_max_length))
    return int(tokenizer.model_max_length)


def virtual_tokens(model) -> int:
    """Positions a prompt- or prefix-tuned peft model puts before every sequence (0 otherwise):
    prompt tuning's input vectors, prefix tuning's keys and values. They use up the context
    like real tokens (the positions after them are shifted by as many)."""
    if model is None or not is_prompt_learning(model):
        return 0
    return int(model.active_peft_config.num_virtual_tokens)


def _positions(tokenizer, model) -> tuple[int, str]:
    """(positions left for real tokens, how to say what was taken) for length errors."""
    context, n = _context(tokenizer, model), virtual_tokens(model)
    said = f"the model's context (max_position_embeddings) of {context} positions"
    if n:
        said += f" less its {n} virtual tokens: {context - n} positions"
    return context - n, said


def encode_examples(tokenizer, examples, mask_prompt: bool = True, model=None) -> dict:
    """Right-padded training batch for ``examples`` (objects with ``.prompt`` and ``.answer``).

    Returns ``input_ids``, ``attention_mask`` and ``labels``, each ``(N, T)`` int64, with ``T``
    the longest example. ``labels`` is ``-100`` on padding and, if ``mask_prompt``, on the prompt.
    """
    if isinstance(examples, str):
        raise ValueError("examples must be a list of examples with .prompt and .answer, got a str")
    examples = list(examples)
    if not examples:  # before the tokenizer, which fails on an empty batch with an IndexError
        raise ValueError("examples must not be empty: pass at least one example with .prompt and .answer")
    context, said = _positions(tokenizer, model)
    check_texts(tokenizer, [e.prompt for e in examples], lambda i: f"examples[{i}].prompt")
    check_texts(tokenizer, [e.answer for e in examples], lambda i: f"examples[{i}].answer")
    # one batched call per side: the Rust tokenizer encodes 100k short strings in a second
    # verbose=False: too-long rows get our error below, not transformers' log line first.
    # (Not the Rust backend_tokenizer directly, though faster: a padded call such as
    # encode_prompts' leaves padding switched on in it.)
    ps = tokenizer([prompt_text(e.prompt) for e in examples], add_special_tokens=False,
                   verbose=False)  # fmt: skip
    as_ = tokenizer([e.answer + END for e in examples], add_special_tokens=False, verbose=False)
    rows = list(zip(ps["input_ids"], as_["input_ids"]))
    for i, (p, a) in enumerate(rows):
        if len(p) + len(a) > context:
            raise ValueError(f"examples[{i}] is {len(p) + len(a)} tokens long, more than {said}")
    T = max(len(p) + len(a) for p, a in rows)
    # whole rows as Python lists, one torch.tensor each (row-by-row writes into a tensor took a
    # minute for the 384,000 examples of pretraining)
    ids, mask, labels = [], [], []
    for p, a in rows:
        fill = T - len(p) - len(a)
        ids.append(p + a + [tokenizer.pad_token_id] * fill)
        mask.append([1] * (len(p) + len(a)) + [0] * fill)
        labels.append(([IGNORE] * len(p) if mask_prompt else p) + a + [IGNORE] * fill)
    ids, mask, labels = (torch.tensor(x, dtype=torch.long) for x in (ids, mask, labels))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def encode_prompts(tokenizer, prompts, max_new_tokens: int = 0, model=None) -> dict:
    """Left-padded generation batch: ``input_ids`` and ``attention_mask``, ``(N, T)`` int64.

    Raises ValueError for an empty list, if a prompt has a character or special token the
    tokenizer does not know, or if ``model``'s virtual tokens (prompt or prefix tuning), the
    prompt and ``max_new_tokens`` (an int >= 0) together exceed the model's context.
    """
    check_int("max_new_tokens", max_new_tokens, minimum=0)
    context, said = _positions(tokenizer, model)
    if isinstance(prompts, str):
        raise ValueError("prompts must be a list of str, got one str (wrap it in a list)")
    if not len(prompts):  # the tokenizer's own error on [] is an IndexError deep inside it
        raise ValueError("prompts must not be empty: pass at least one prompt (a str)")
    check_texts(tokenizer, list(prompts), lambda i: f"prompts[{i}]")
    texts = [prompt_text(p) for p in prompts]
    enc = tokenizer(texts, add_special_tokens=False, padding=True, padding_side="left",
                    return_tensors="pt", verbose=False)  # fmt: skip
    longest = int(enc["attention_mask"].sum(1).max())
    if longest + max_new_tokens > context:
        i = int(enc["attention_mask"].sum(1).argmax())
        raise ValueError(
            f"prompts[{i}] is {longest} tokens and max_new_tokens={max_new_tokens}: together "
            f"{longest + max_new_tokens}, more than {said}"
        )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def is_prompt_learning(model) -> bool:
    """True for a peft model carrying prompt or prefix tuning (see :func:`generate_answers`)."""
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


@torch.no_grad()
def _greedy_prompt_learning(model, input_ids, attention_mask, max_new_tokens: int,
                            eos_id: int) -> torch.Tensor:  # fmt: skip
    """Greedy decoding of a prompt- or prefix-tuned peft ``model`` with a KV cache, every token
    at the position it had in training: ``(N, T)`` left-padded prompts -> ``(N, max_new_tokens)``
    new ids (``eos_id`` after the end).

    Calls the frozen base model directly with peft's virtual tokens (``model.get_prompt``: the
    prefix's keys and values as a cache, or prompt tuning's input vectors) and explicit
    ``position_ids`` that skip the padding: in training the ``n`` virtual tokens sat at
    positions ``0..n-1`` and a prompt's tokens right after them, which left padding would shift
    (RoPE sees distances). Padding is masked out. Tested equal to decoding each prompt alone.
    """
    from transformers import DynamicCache

    base, n, N = model.get_base_model(), virtual_tokens(model), len(input_ids)
    # the cache argument is `cache` in recent transformers 5, `past_key_values` before
    arg = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
    mask = torch.cat([attention_mask.new_ones(N, n), attention_mask], 1)  # (N, n + T)
    pos = (mask.cumsum(1) - 1).clamp(min=0)  # (N, n + T): padding does not count
    if model.active_peft_config.peft_type == "PREFIX_TUNING":  # keys and values of n positions
        cache = model.get_prompt(N)  # a DynamicCache holding the prefix
        kw = {"input_ids": input_ids, "position_ids": pos[:, n:]}
    else:  # prompt tuning: n input vectors before the embedded prompt
        cache = DynamicCache()
        embeds = torch.cat([model.get_prompt(N), base.get_input_embeddings()(input_ids)], 1)
        kw = {"inputs_embeds": embeds, "position_ids": pos}
    out = base(**kw, attention_mask=mask, use_cache=True, **{arg: cache})  # fills the cache
    new, done, last = [], torch.zeros(N, dtype=torch.bool), pos[:, -1:]
    while True:
        nxt = out.logits[:, -1].argmax(-1).masked_fill(done, eos_id)  # (N,)
        new.append(nxt)
        done |= nxt == eos_id
        if len(new) == max_new_tokens or done.all():
            break
        mask, last = torch.cat([mask, mask.new_ones(N, 1)], 1), last + 1
        out = base(input_ids=nxt[:, None], attention_mask=mask, position_ids=last, use_cache=True,
                   **{arg: cache})  # fmt: skip
    new += [torch.full((N,), eos_id)] * (max_new_tokens - len(new))
    return torch.stack(new, 1)


@torch.no_grad()
def generate_answers(model, tokenizer, prompts, max_new_tokens: int = 14,
                     batch_size: int = 512) -> list[str]:  # fmt: skip
    """Greedy answers (text up to the first ``<|end|>``) for a list of user prompts.

    Uses ``model.generate`` with left padding, ``batch_size`` prompts at a time, except for
    prompt and prefix tuning. With peft 0.21 and transformers 5, ``generate`` on a prefix-tuned
    model drops the prefix (peft passes it as ``past_key_values``, which transformers ignores
    when it has made its own ``cache``: measured, the first generated token then agrees with the
    base model, not with the prefix model's own forward pass). And with left padding, peft puts the virtual tokens before
    the pads, so a padded row sees them from another distance than in training (RoPE is
    relative; the virtual tokens were right next to the prompt). So these models are decoded by
    :func:`_greedy_prompt_learning`, every token at its training position.
    """
    check_int("max_new_tokens", max_new_tokens)
    check_int("batch_size", batch_size)
    model.eval()
    eos = tokenizer.eos_token_id
    rows: list[list[int]] = []
    if isinstance(prompts, (list, tuple)) and not prompts:
        return []  # nothing to answer (encode_prompts refuses an empty list)
    if is_prompt_learning(model):
        enc = encode_prompts(tokenizer, prompts, max_new_tokens, model)
        rows = _greedy_prompt_learning(model, enc["input_ids"], enc["attention_mask"],
                                       max_new_tokens, eos).tolist()  # fmt: skip
    else:
        for start in range(0, len(prompts), batch_size):
            enc = encode_prompts(tokenizer, prompts[start : start + batch_size], max_new_tokens,
                                 model)  # fmt: skip
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)  # fmt: skip
            rows += gen[:, enc["input_ids"].shape[1] :].tolist()
    out = []
    for row in rows:
        end = row.index(eos) if eos in row else len(row)
        out.append(tokenizer.decode(row[:end], skip_special_tokens=True))
    return out


def exact_match(predictions, answers) -> float:
    """Share of predictions equal to their answer after stripping surrounding whitespace."""
    if len(predictions) != len(answers) or not answers:
        raise ValueError(f"predictions and answers must be non-empty and of equal length, got "
                         f"{len(predictions)} and {len(answers)}")  # fmt: skip
    return sum(p.strip() == a.strip() for p, a in zip(predictions, answers)) / len(answers)


def evaluate(model, tokenizer, examples, max_new_tokens: int = 14) -> float:
    """Exact match of greedy answers on ``examples``."""
    preds = generate_answers(model, tokenizer, [e.prompt for e in examples], max_new_tokens)
    return exact_match(preds, [e.answer for e in examples])


def evaluate_skills(model, tokenizer, sets: dict, max_new_tokens: int = 14) -> dict[str, float]:
    """``{skill: exact match}`` for ``{skill: examples}``, all skills in one generation batch."""
    flat = [(s, e) for s, exs in sets.items() for e in exs]
    preds = generate_answers(model, tokenizer, [e.prompt for _, e in flat], max_new_tokens)
    out = {}
    for skill in sets:
        pairs = [(p, e.answer) for p, (s, e) in zip(preds, flat) if s == skill]
        out[skill] = exact_match(*zip(*pairs))
    return out


def train_sft(model, tokenizer, examples, steps: int = 150, lr: float = 1e-3,
              batch_size: int = 32, seed: int = 0, mask_prompt: bool = True,
              weight_decay: float = 0.0, warmup: int = 10, log_every: int = 0,
              max_grad_norm: float | None = 1.0) -> dict:  # fmt: skip
    """AdamW on the parameters that require gradients (all of a plain model; the adapter of a
    peft model), linear warmup then cosine (:func:`ftnotes.schedules.warmup_cosine`), ``steps``
    batches drawn in shuffled epochs, the gradient clipped to norm ``max_grad_norm`` (``None``:
    not clipped; 1.0 is the default of transformers' ``Trainer``).

    The language model's own loop, not ``train.fit`` (the image classifiers'): its batches are
    dicts of token ids whose padding columns are trimmed per batch, its budget is a number of
    steps, not epochs, and it has no classes to count or validate against.

    Returns ``{"loss": [per-step loss], "seconds": wall time, "steps": steps}``.
    """
    check_int("steps", steps)
    check_int("batch_size", batch_size)
    check_number("lr", lr, 0, strict=True)
    check_number("weight_decay", weight_decay, 0)
    check_int("warmup", warmup, 0)
    check_number("max_grad_norm", max_grad_norm, 0, strict=True, optional=True)
    check_bool("mask_prompt", mask_prompt)
    batch = encode_examples(tokenizer, examples, mask_prompt=mask_prompt, model=model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameter with requires_grad=True: nothing would train")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = warmup_cosine_scheduler(opt, steps, min(warmup, steps))
    gen = torch.Generator().manual_seed(seed)
    n = batch["input_ids"].shape[0]
    order, pos, losses = torch.randperm(n, generator=gen), 0, []
    model.train()
    t0 = time.perf_counter()
    for step in range(steps):
        if pos + batch_size > n and pos > 0:  # a new shuffled epoch
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos : pos + batch_size]
        pos += batch_size
        width = int(batch["attention_mask"][idx].sum(1).max())  # trim padding columns
        inputs = {k: v[idx, :width] for k, v in batch.items()}
        loss = model(**inputs).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: loss {sum(losses[-log_every:]) / log_every:.3f}")
    model.eval()
    return {"loss": losses, "seconds": time.perf_counter() - t0, "steps": steps}
