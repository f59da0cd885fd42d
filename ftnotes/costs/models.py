"""Real-size transformers configs (random weights, nothing downloaded) and their small copies.

The sizes are the published ones: ViT-B/16 (google/vit-base-patch16-224: 12 layers, width 768,
86M parameters), BERT-base (bert-base-uncased: 12 layers, width 768, 110M), Qwen2.5-0.5B
(24 layers, width 896, 14 query / 2 key-value heads, 494M with tied embeddings), SmolLM2-135M
(HuggingFaceTB/SmolLM2-135M: a Llama, 30 layers, width 576, 9 query / 3 key-value heads, 134.5M
with tied embeddings) and T0_3B (bigscience/T0_3B, a T5 v1.1 XL: 24+24 layers, width 2048, 2.8B). Dropout is set to 0 so the
attention runs the memory-efficient kernel on every device (see :mod:`ftnotes.costs.families`).
"""

from __future__ import annotations

from transformers import BertConfig, LlamaConfig, Qwen2Config, T5Config, ViTConfig

from .estimate import check_config

MODELS = ("vit-b16", "bert-base", "qwen2.5-0.5b")
OTHERS = ("smollm2-135m", "t0-3b")


def config(name: str, num_labels: int = 2, **overrides):
    """The config of ``name`` (one of MODELS or OTHERS), with ``overrides`` (e.g. fewer layers)."""
    if name == "vit-b16":
        cfg = ViTConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, image_size=224, patch_size=16,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    elif name == "bert-base":
        cfg = BertConfig(vocab_size=30522, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)  # fmt: skip
    elif name == "qwen2.5-0.5b":
        cfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                          num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                          max_position_embeddings=32768, rope_theta=1e6, tie_word_embeddings=True,
                          pad_token_id=151935, attention_dropout=0.0)  # fmt: skip
    elif name == "smollm2-135m":
        cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                          num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                          max_position_embeddings=8192, rope_theta=1e5, tie_word_embeddings=True,
                          pad_token_id=2, attention_dropout=0.0)  # fmt: skip
    elif name == "t0-3b":
        cfg = T5Config(vocab_size=32128, d_model=2048, d_kv=64, d_ff=5120, num_layers=24,
                       num_heads=32, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                       dropout_rate=0.0)  # fmt: skip
    else:
        raise ValueError(f"name must be one of {MODELS + OTHERS}, got {name!r}")
    cfg.num_labels = num_labels
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"overrides must be fields of {type(cfg).__name__}, got {key!r}")
        setattr(cfg, key, value)
    check_config(cfg)  # num_hidden_layers=-1 is a typo, not a model
    cfg._attn_implementation = "sdpa"
    return cfg


def depth_key(cfg) -> str:
    return "num_layers" if cfg.model_type == "t5" else "num_hidden_layers"
