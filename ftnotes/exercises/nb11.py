"""Exercises of notebook 11 (a real instruct LM): the answer-only labels of a chat example with a
BPE tokenizer, a prompt that ends where the model must continue, and what a LoraConfig trains on
a Llama with grouped-query attention and tied embeddings. The reference solutions sit next to
their checkers.

The checkers build two tiny byte-level BPE tokenizers with different chat templates and EOS
tokens (the ``tokenizers`` library, trained in milliseconds on a few sentences), so a solution
that hard-codes SmolLM2's ``<|im_end|>`` or its template fails, and no model folder is needed.
"""

from __future__ import annotations

import functools
import warnings

from .core import exercise

CHATML = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TAGS = (  # another family's format: <|user|>...<|end|>, no default system turn
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = ("This noun names a kind of animal plant food person artifact location. "
          "a domesticated carnivorous mammal; a tall perennial woody plant; a baked food. "
          "You are a helpful assistant. Name the category of the noun defined by the user.")  # fmt: skip


@functools.lru_cache(maxsize=2)
def chat_tokenizer(kind: str = "chatml"):
    """A tiny byte-level BPE tokenizer (about 400 pieces) with a chat template: ``"chatml"``
    (SmolLM2's and Qwen's format, EOS ``<|im_end|>``) or ``"tags"`` (EOS ``<|end|>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] if kind == "chatml" else \
        ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]  # fmt: skip
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator([CORPUS] * 20, trainer)
    eos = "<|im_end|>" if kind == "chatml" else "<|end|>"
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=eos,
                                   chat_template=CHATML if kind == "chatml" else TAGS)  # fmt: skip


def _int_list(ctx, value, what):
    ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ctx.expect(ok, f"{what} should be a list of Python ints, got {type(value).__name__} "
               f"{value!r:.60}")  # fmt: skip


# ---------------------------------------------------------------- 11_answer_labels


def answer_example(tokenizer, messages, answer):
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return p + a, [-100] * len(p) + a


LABEL_CASES = (
    ("chatml", [{"role": "user", "content": "a domesticated carnivorous mammal"}], " animal"),
    ("tags", [{"role": "system", "content": "Name the category."},
              {"role": "user", "content": "a baked food"}], "This noun names a kind of food"),
    ("chatml", [{"role": "system", "content": "Name the category of the noun."},
                {"role": "user", "content": "a tall plant"},
                {"role": "assistant", "content": "plant"},
                {"role": "user", "content": "a person who bakes"}], "person"),
)  # fmt: skip


@exercise(
    "11_answer_labels",
    title="Answer-only labels for a chat example, with BPE and a chat template",
    kind="function",
    reference=answer_example,
    stub='''
    def answer_example(tokenizer, messages, answer):
        """messages: a chat (list of {"role", "content"}) ending with a user turn; answer: the
        assistant's reply. Return (input_ids, labels), two lists of ints of equal length: the
        chat template applied to messages with the assistant's turn opened, then the answer
        followed by the tokenizer's EOS token; labels are -100 on every prompt token and equal
        to input_ids on the answer and its EOS."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "The prompt is tokenizer.apply_chat_template(messages, tokenize=False, "
        "add_generation_prompt=True): text that ends with the assistant's header.",
        "Tokenize the prompt and (answer + tokenizer.eos_token) separately, with "
        "add_special_tokens=False; the sequence is their concatenation.",
        "labels = [-100] * len(prompt_ids) + answer_ids. Never find the EOS by its id: here the "
        "pad token is the EOS token, and masking 'padding' by id would mask the EOS too.",
    ],
)
def _check_answer_labels(fn, ctx):
    for kind, messages, answer in LABEL_CASES:
        tok = chat_tokenizer(kind)
        want_ids, want_labels = answer_example(tok, messages, answer)
        got = fn(tok, [dict(m) for m in messages], answer)
        ctx.expect(isinstance(got, tuple) and len(got) == 2, "return a tuple (input_ids, labels), "
                   f"got {type(got).__name__} {got!r:.60}")  # fmt: skip
        ids, labels = got
        _int_list(ctx, ids, "input_ids")
        _int_list(ctx, labels, "labels")
        ctx.expect(len(ids) == len(labels), f"input_ids has {len(ids)} tokens, labels {len(labels)}: "
                   "one label per token")  # fmt: skip
        n_prompt = want_labels.count(-100)
        header = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ctx.expect(ids[:n_prompt] == want_ids[:n_prompt], "the prompt tokens are not the chat "
                   f"template's with the assistant's turn opened; expected the text {header!r} "
                   "(apply_chat_template(..., tokenize=False, add_generation_prompt=True))")  # fmt: skip
        ctx.expect(ids[-1:] == [tok.eos_token_id], f"the sequence must end with the tokenizer's EOS "
                   f"{tok.eos_token!r} (id {tok.eos_token_id}), got id {ids[-1:]}: use "
                   "tokenizer.eos_token, the model learns to stop there")  # fmt: skip
        ctx.expect(ids == want_ids, f"input_ids should be {want_ids}, got {ids}")
        ctx.expect(labels[-1] != -100, "the EOS at the end is -100: it must be scored, or the model "
                   "never learns to stop (the pad = EOS trap)")  # fmt: skip
        ctx.expect(labels[:n_prompt] == [-100] * n_prompt, "some prompt tokens are scored: every "
                   "prompt token's label is -100")  # fmt: skip
        ctx.expect(labels == want_labels, f"labels should be {want_labels}, got {labels}")
    ctx.ok("the template's prompt with the assistant turn opened, then answer + EOS")
    ctx.ok("-100 on the prompt, the ids on the answer and on its EOS, for two chat formats")


# ---------------------------------------------------------------- 11_continue_prompt


def continuation_prompt(tokenizer, system, user, prefill):
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + prefill


CONTINUE_CASES = (
    ("chatml", "Name the category of the noun.", "a domesticated dog", "This noun names a kind of"),
    ("tags", "Answer in one word.", "a baked food made of flour", "It is a"),
)  # fmt: skip


@exercise(
    "11_continue_prompt",
    title="A prompt that ends where the model must continue",
    kind="function",
    reference=continuation_prompt,
    stub='''
    def continuation_prompt(tokenizer, system, user, prefill):
        """The prompt text for a system turn and a user turn, with the assistant's turn opened
        and already begun with prefill, so that the model's next token continues prefill
        (e.g. prefill = "This noun names a kind of", next token " animal")."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Start from apply_chat_template([system turn, user turn], tokenize=False, "
        "add_generation_prompt=True): it ends with the assistant's header.",
        "Do not put the prefill in an assistant message: the template closes every message "
        "with its end-of-turn token, and the model would start a new turn.",
        "Append prefill to that text exactly, with no space after it: BPE pieces carry their "
        "leading space ('Ġanimal'), so the space belongs to the model's next token.",
    ],
)
def _check_continue_prompt(fn, ctx):
    for kind, system, user, prefill in CONTINUE_CASES:
        tok = chat_tokenizer(kind)
        want = continuation_prompt(tok, system, user, prefill)
        got = fn(tok, system, user, prefill)
        ctx.expect(isinstance(got, str), f"return the prompt as a str, got {type(got).__name__}")
        ctx.expect(not got.endswith(prefill + " "), "the prompt ends with a space after the "
                   "prefill: BPE tokens carry their leading space ('Ġanimal'), so the model would "
                   "have to continue with a token that starts without one")  # fmt: skip
        ctx.expect(not got.rstrip().endswith(tok.eos_token), "the prompt ends with "
                   f"{tok.eos_token!r}: the template closed the assistant's message holding the "
                   "prefill, so the model would start a new turn instead of continuing it")  # fmt: skip
        ctx.expect(got.endswith(prefill), "the prompt must end with the prefill itself, after the "
                   "opened assistant header (not inside the user's message): the model continues "
                   "from its last token")  # fmt: skip
        ctx.expect(system in got, "the system turn is missing: without it this template adds "
                   "its own default system turn, or none")  # fmt: skip
        opened = tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
        header = opened[len(tok.apply_chat_template([{"role": "user", "content": "x"}],
                                                    tokenize=False)):]  # fmt: skip
        ctx.expect(got.endswith(header + prefill), f"the assistant's turn is not opened: the "
                   f"prefill must follow the header {header!r} (add_generation_prompt=True)")  # fmt: skip
        ctx.expect(got == want, f"expected {want!r}, got {got!r}")
    ctx.ok("the template's text with the assistant's turn opened, ending exactly with the prefill")
    ctx.ok("for two chat formats, systems, users and prefills")


# ---------------------------------------------------------------- 11_lora_budget

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_budget(config, r, target_modules):
    d, f, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = d // config.num_attention_heads
    q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    shapes = {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
              "gate_proj": (d, f), "up_proj": (d, f), "down_proj": (f, d)}  # (in, out)  # fmt: skip
    targets = LINEAR if target_modules == "all-linear" else target_modules
    trainable = n * sum(r * (shapes[m][0] + shapes[m][1]) for m in targets)
    per_layer = sum(i * o for i, o in shapes.values()) + 2 * d  # 7 matrices, 2 RMSNorms
    embeddings = config.vocab_size * d * (1 if config.tie_word_embeddings else 2)
    return trainable, n * per_layer + d + embeddings + trainable  # + the final norm


def _peft_budget(config, r, targets):
    import peft
    from transformers import LlamaForCausalLM

    with warnings.catch_warnings():  # peft 0.21 reads a name transformers 5 deprecated
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
        model = peft.get_peft_model(LlamaForCausalLM(config), peft.LoraConfig(r=r, target_modules=targets))
    return model.get_nb_trainable_parameters()


BUDGET_CASES = (
    (dict(vocab_size=50, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
          num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True), 2, "all-linear"),
    (dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
          num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=False), 3,
     ["q_proj", "v_proj"]),
    (dict(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
          num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True), 4,
     ["k_proj", "o_proj", "down_proj"]),
)  # fmt: skip


@exercise(
    "11_lora_budget",
    title="What a LoraConfig trains on a Llama with grouped-query attention",
    kind="function",
    reference=lora_budget,
    stub='''
    def lora_budget(config, r, target_modules):
        """(trainable, total) of LoraConfig(r=r, target_modules=target_modules) on a
        LlamaForCausalLM built from config (vocab_size, hidden_size, intermediate_size,
        num_hidden_layers, num_attention_heads, num_key_value_heads, tie_word_embeddings;
        head_dim = hidden_size // num_attention_heads). target_modules: a list of names among
        q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or "all-linear" (all
        seven). trainable: the LoRA parameters. total: every parameter of the wrapped model,
        LoRA included (embeddings, a tied LM head counted once, every RMSNorm weight)."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "LoRA on a Linear with in_features n and out_features m adds r * (n + m), in every layer. "
        "k_proj and v_proj have num_key_value_heads * head_dim outputs, not hidden_size.",
        "A layer's base weights: q, k, v, o, gate, up, down (no biases) and two RMSNorm vectors "
        "of hidden_size. After the layers: one more RMSNorm.",
        "The embedding is vocab_size x hidden_size; with tie_word_embeddings the LM head is the "
        "same tensor (counted once), otherwise a second matrix of that size.",
    ],
)
def _check_lora_budget(fn, ctx):
    from transformers import LlamaConfig

    for kw, r, targets in BUDGET_CASES:
        config = LlamaConfig(**kw)
        got = fn(config, r, targets if isinstance(targets, str) else list(targets))
        want = _peft_budget(config, r, targets)  # after the call: a stub fails fast
        ctx.expect(isinstance(got, tuple) and len(got) == 2 and
                   all(isinstance(v, int) and not isinstance(v, bool) for v in got),
                   f"return a tuple of two ints (trainable, total), got {got!r:.60}")  # fmt: skip
        where = f"r={r}, target_modules={targets!r} on {kw}"
        ctx.expect(got[0] <= got[1], f"{got}: trainable comes first, then total (the order of "
                   "peft's get_nb_trainable_parameters)")  # fmt: skip
        if kw["num_key_value_heads"] < kw["num_attention_heads"] and got[0] != want[0]:
            ctx.fail(f"trainable {got[0]:,} for {where}; peft counts {want[0]:,}. With "
                     f"num_key_value_heads={kw['num_key_value_heads']}, k_proj and v_proj have "
                     "fewer outputs than hidden_size (grouped-query attention); 'all-linear' means "
                     "all seven projections, not the LM head.")  # fmt: skip
        ctx.expect(got[0] == want[0], f"trainable {got[0]:,} for {where}; peft counts {want[0]:,}: "
                   "r * (in + out) per targeted Linear, in every layer")  # fmt: skip
        tied = "tied: the LM head is the embedding, counted once" if kw["tie_word_embeddings"] \
            else "not tied: the LM head is a second vocab x hidden matrix"  # fmt: skip
        ctx.expect(got[1] == want[1], f"total {got[1]:,} for {where}; peft counts {want[1]:,}. "
                   f"Count every base weight (two RMSNorms per layer and a final one) plus the "
                   f"LoRA parameters; embeddings {tied}.")  # fmt: skip
    ctx.ok("trainable and total equal peft's for 3 configs (grouped-query attention, tied and "
           "untied embeddings, 'all-linear')")
