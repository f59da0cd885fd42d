"""One symbolic forward per transformers architecture (ViT, BERT, Qwen2, Llama), op by op.

Each function walks the modules of ``transformers``' implementation in the order they run and
lets :class:`~ftnotes.costs.tape.Tape` record what autograd saves. Names are module paths as
``named_modules()`` gives them (below the base model), so peft's ``target_modules`` match them.
Dropout is taken as 0 (the configs of :mod:`ftnotes.costs.models` set it so): with dropout > 0
every dropout keeps a one-byte mask of its size, and SDPA falls back to a kernel that stores
the s x s attention probabilities on some devices.
"""

from __future__ import annotations

from .tape import BF16, FP32, INT64, Tape


def _cls_token(tape: Tape, x, batch: int, dim: int):
    """hidden[:, 0]: in float32 a view that keeps the whole storage; autocast copies b x dim."""
    return tape.new(batch * dim, FP32, x.grad) if tape.autocast else x


def _loss(tape: Tape, rows: int, classes: int) -> None:
    """cross_entropy = log_softmax + nll_loss over ``rows`` x ``classes`` float32 logits.

    log_softmax keeps its float32 output. At the start of the backward, the gradient of that
    output and then the gradient of its input exist next to it: 2 more float32 copies, freed
    right after (``tape.loss_backward``). For a causal LM, ``classes`` is the vocabulary and
    ``rows`` every token: Qwen2.5-0.5B at 32 x 256 tokens has 1.25e9 logits, 5 GB per copy.
    """
    tape.save(tape.new(rows * classes, FP32, True))
    tape.loss_backward = 2 * FP32 * rows * classes


def _lm_loss(tape: Tape, vocab: int) -> None:
    """transformers' ``ForCausalLMLoss``: ``logits.float()`` (under autocast a new float32 copy
    of the 16-bit logits, not saved: log_softmax saves its output), shifted labels (int64, kept
    by nll_loss), cross-entropy over every token. Forward, the 16-bit logits, their float32
    copy and the log-probabilities coexist (2 + 4 + 4 bytes per logit, 4 of them saved); the
    backward's two float32 gradients (8 bytes per logit beyond the saved 4) are the larger
    transient, so they are the term. (A loop that keeps the model's output through the
    backward, ``out = model(**b); out.loss.backward()``, also keeps ``out.logits``: Trainer
    keeps only the loss.)"""
    tape.save(tape.new(tape.tokens, INT64, False, "labels"))
    _loss(tape, tape.tokens, vocab)


def vit(tape: Tape, cfg, batch: int, seq_len: int, checkpoint: bool, task="classification") -> None:
    """ViTForImageClassification (Dosovitskiy et al. 2021, arXiv:2010.11929), pre-LayerNorm."""
    h, i, heads = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads
    patches = (cfg.image_size // cfg.patch_size) ** 2
    seq = patches + 1
    pixels = tape.new(batch * cfg.num_channels * cfg.image_size**2, FP32, False)
    emb = "embeddings.patch_embeddings.projection"
    fan_in = cfg.num_channels * cfg.patch_size**2
    p = tape.linear(pixels, emb, fan_in, h, batch * patches)  # the 16x16 conv is a matmul
    if tape.autocast and tape.is_trained(emb):  # a conv keeps its weight even if x has no grad
        tape.save(tape.new(fan_in * h, BF16, True, f"W:{emb}"))
    x = tape.new(batch * seq * h, FP32, p.grad or tape.input_grad)
    if tape.input_grad and not p.grad:  # requires_grad_() made the frozen patch output a kept leaf
        tape.save(p)
    for n in range(cfg.num_hidden_layers):
        pre = f"encoder.layer.{n}."
        with tape.layer((x,), checkpoint):
            a = tape.layer_norm(x, pre + "layernorm_before")
            qkv = [tape.linear(a, pre + f"attention.attention.{m}", h, h) for m in ("query", "key", "value")]
            ctx = tape.sdpa(*qkv, heads, seq, h // heads)  # kernels return it (b, s, heads, d)
            x = tape.add(tape.linear(ctx, pre + "attention.output.dense", h, h), x)
            f = tape.act(tape.linear(tape.layer_norm(x, pre + "layernorm_after"), pre + "intermediate.dense", h, i))
            x = tape.add(tape.linear(f, pre + "output.dense", i, h), x)
    x = _cls_token(tape, tape.layer_norm(x, "layernorm"), batch, h)
    tape.linear(x, "classifier", h, cfg.num_labels, rows=batch)
    _loss(tape, batch, cfg.num_labels)


def bert(tape: Tape, cfg, batch: int, seq_len: int, checkpoint: bool, task="classification") -> None:
    """BertForSequenceClassification (Devlin et al. 2019, arXiv:1810.04805), post-LayerNorm."""
    h, i, heads, s = cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, seq_len
    if tape.is_trained("embeddings.word_embeddings"):
        tape.save(tape.new(batch * s, INT64, False))  # the embedding keeps the token ids
        for buffer in ("position_ids", "token_type_ids"):  # slices of (1, 512) int64 buffers
            tape.save(tape.new(cfg.max_position_embeddings, INT64, False, buffer))
    trained = tape.is_trained("embeddings.word_embeddings")
    x = tape.new(batch * s * h, FP32, trained or tape.input_grad)
    if tape.input_grad and not trained:  # requires_grad_() made the frozen lookup a kept leaf
        tape.save(tape.new(x.numel, FP32, True))
    x = tape.layer_norm(x, "embeddings.LayerNorm")
    for n in range(cfg.num_hidden_layers):
        pre = f"encoder.layer.{n}."
        with tape.layer((x,), checkpoint):
            qkv = [tape.linear(x, pre + f"attention.self.{m}", h, h) for m in ("query", "key", "value")]
            ctx = tape.sdpa(*qkv, heads, s, h // heads)
            o = tape.linear(ctx, pre + "attention.output.dense", h, h)
            x = tape.layer_norm(tape.add(o, x), pre + "attention.output.LayerNorm")
            f = tape.act(tape.linear(x, pre + "intermediate.dense", h, i))
            o = tape.linear(f, pre + "output.dense", i, h)
            x = tape.layer_norm(tape.add(o, x), pre + "output.LayerNorm")
    pooled = tape.act(tape.linear(_cls_token(tape, x, batch, h), "pooler.dense", h, h, rows=batch))
    tape.linear(pooled, "classifier", h, cfg.num_labels, rows=batch)
    _loss(tape, batch, cfg.num_labels)


def _rope(tape: Tape, q, cos, sin):
    """q * cos + rotate_half(q) * sin: keeps cos and sin (float32, shared by every layer)."""
    return tape.add(tape.mul(q, cos), tape.mul(tape.copy(q), sin))


def decoder(tape: Tape, cfg, batch: int, seq_len: int, checkpoint: bool,
            task: str = "classification") -> None:  # fmt: skip
    """Qwen2 (Qwen2 report, arXiv:2407.10671) and Llama (Touvron et al. 2023, arXiv:2302.13971)
    decoders: RMSNorm, grouped-query attention, RoPE, SwiGLU. Qwen2's q/k/v biases change no
    saved tensor. ``task``: "causal-lm" (``*ForCausalLM``: ``lm_head`` over the vocabulary at
    every token, the next-token loss) or "classification" (``*ForSequenceClassification``:
    ``score`` at every token, the last one pooled)."""
    h, i, s = cfg.hidden_size, cfg.intermediate_size, seq_len
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads or cfg.num_attention_heads
    d = getattr(cfg, "head_dim", None) or h // heads
    if tape.is_trained("embed_tokens"):
        tape.save(tape.new(batch * s, INT64, False))
    x = tape.new(batch * s * h, FP32, tape.is_trained("embed_tokens") or tape.input_grad)
    cos, sin = (tape.new(s * d, FP32, False, key) for key in ("cos", "sin"))
    for n in range(cfg.num_hidden_layers):
        pre = f"layers.{n}."
        with tape.layer((x, cos, sin), checkpoint):
            a = tape.rms_norm(x, pre + "input_layernorm")
            q = _rope(tape, tape.linear(a, pre + "self_attn.q_proj", h, heads * d), cos, sin)
            k = _rope(tape, tape.linear(a, pre + "self_attn.k_proj", h, kv * d), cos, sin)
            v = tape.linear(a, pre + "self_attn.v_proj", h, kv * d)
            ctx = tape.sdpa(q, k, v, heads, s // 2, d)  # causal: half the pairs
            x = tape.add(x, tape.linear(ctx, pre + "self_attn.o_proj", heads * d, h))
            a = tape.rms_norm(x, pre + "post_attention_layernorm")
            gate = tape.act(tape.linear(a, pre + "mlp.gate_proj", h, i))
            up = tape.linear(a, pre + "mlp.up_proj", h, i)
            x = tape.add(x, tape.linear(tape.mul(gate, up), pre + "mlp.down_proj", i, h))
    x = tape.rms_norm(x, "norm")
    if task == "causal-lm":
        tape.linear(x, "lm_head", h, cfg.vocab_size)
        _lm_loss(tape, cfg.vocab_size)
    else:
        tape.linear(x, "score", h, cfg.num_labels)
        _loss(tape, batch, cfg.num_labels)


FAMILIES = {"vit": vit, "bert": bert, "qwen2": decoder, "llama": decoder}
DECODERS = ("qwen2", "llama")  # the families with a causal-LM head
