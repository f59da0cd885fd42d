"""The tiny backbone and the from-scratch baseline.

``TinyViT`` is a Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words")
shrunk to 8x8 single-channel images in the UCI handwritten-digits format: 2x2 patches give
16 patch tokens plus a class token. It is written out by hand so that every PEFT method in
``ftnotes.peft`` can attach without rewriting the model:

* attention uses four separately named ``nn.Linear`` projections (``q_proj``, ``k_proj``,
  ``v_proj``, ``o_proj``: the names of transformers' ViT, Qwen and Llama), so LoRA can target
  ``q_proj`` and ``v_proj`` by name as in Hu et al. 2021;
* every sub-layer is its own module (``blocks.i.attn``, ``blocks.i.mlp``) so bottleneck adapters
  can wrap them (Houlsby et al. 2019);
* ``forward`` accepts extra prompt tokens per block (VPT, Jia et al. 2022) and per-block
  key/value prefixes (prefix tuning, Li & Liang 2021).

``SmallCNN`` is the baseline trained from scratch: its convolutions carry a locality bias that
makes it strong on tiny images, which is exactly what the pretrained ViT must beat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ftnotes.checks import check_int, check_number


@dataclass
class ViTConfig:
    """Hyperparameters of :class:`TinyViT`; validated on construction."""

    image_size: int = 8
    patch_size: int = 2
    in_chans: int = 1
    dim: int = 48
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 2.0
    num_classes: int = 34
    dropout: float = 0.0

    def __post_init__(self):
        for name in (
            "image_size",
            "patch_size",
            "in_chans",
            "dim",
            "depth",
            "num_heads",
            "num_classes",
        ):
            check_int(f"ViTConfig.{name}", getattr(self, name))
        if self.image_size % self.patch_size:
            raise ValueError(
                f"ViTConfig.patch_size={self.patch_size} must divide image_size={self.image_size}"
            )
        if self.dim % self.num_heads:
            raise ValueError(f"ViTConfig.num_heads={self.num_heads} must divide dim={self.dim}")
        check_number("ViTConfig.mlp_ratio", self.mlp_ratio, 0, strict=True)
        check_number("ViTConfig.dropout", self.dropout, 0)
        if not self.dropout < 1.0:  # 1 drops everything
            raise ValueError(f"ViTConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    """Multi-head self-attention with named projections and optional key/value prefixes.

    Shapes: ``x`` (B, T, D) -> (B, T, D). ``prefix`` is ``None`` or a pair ``(key, value)`` of
    (B, P, D) tensors prepended to the keys and values only: queries stay the T real tokens,
    so the output keeps T tokens (Li & Liang 2021, Sec. 4.2).
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, _ = t.shape  # (B, T, D) -> (B, H, T, D/H)
        return t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, prefix: tuple[torch.Tensor, torch.Tensor] | None = None):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if prefix is not None:
            prefix_k, prefix_v = prefix
            k = torch.cat([prefix_k.to(k.dtype), k], dim=1)
            v = torch.cat([prefix_v.to(v.dtype), v], dim=1)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        B, H, T, Dh = y.shape
        return self.o_proj(y.transpose(1, 2).reshape(B, T, H * Dh))


class MLP(nn.Module):
    """Position-wise feed-forward network: (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = Attention(cfg.dim, cfg.num_heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = MLP(cfg.dim, int(cfg.dim * cfg.mlp_ratio), cfg.dropout)

    def forward(self, x: torch.Tensor, prefix=None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), prefix=prefix)
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A Vision Transformer for 8x8 images (values scaled to [0, 1]).

    Input ``x``: (B, 1, 8, 8), (B, 8, 8) or (B, 64). Output: logits (B, num_classes).
    Tokens inside: [cls, prompt_1..prompt_P, patch_1..patch_N], with N = 16 for the defaults.
    """

    def __init__(self, cfg: ViTConfig | None = None, **overrides):
        super().__init__()
        cfg = cfg or ViTConfig(**overrides)
        self.cfg = cfg
        self.patch_embed = nn.Conv2d(cfg.in_chans, cfg.dim, cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.num_patches, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)
        self.apply(self._init_weights)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def _as_image(self, x: torch.Tensor) -> torch.Tensor:
        s, c = self.cfg.image_size, self.cfg.in_chans
        takes = f"(B, {c}, {s}, {s}) images, (B, {s}, {s}) or flat (B, {c * s * s}) rows"
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a tensor of {takes}, got {type(x).__name__}")
        if x.dim() == 2 and x.shape[1] == c * s * s:  # (B, 64) flat rows, as scikit-learn stores
            return x.view(x.shape[0], c, s, s)
        if x.dim() == 3 and c == 1 and tuple(x.shape[1:]) == (s, s):  # (B, 8, 8)
            return x.unsqueeze(1)
        if x.dim() == 4 and tuple(x.shape[1:]) == (c, s, s):
            return x
        # a raw conv/view shape error would not say what the model takes
        raise ValueError(
            f"x must hold {takes} (this model takes {s}x{s} images with {c} channel"
            f"{'s' if c > 1 else ''}), got shape {tuple(x.shape)}"
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> tokens (B, 1 + N, D): patch embedding, class token, position embedding."""
        patches = self.patch_embed(self._as_image(x)).flatten(2).transpose(1, 2)  # (B, N, D)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def forward_features(self, x, prompts=None, prefixes=None) -> torch.Tensor:
        """Images -> normalised class-token features (B, D).

        ``prompts``: ``None`` or a list of ``depth`` entries, each ``None`` or (B, P, D). An entry
        at block i inserts P prompt tokens after the class token, *replacing* the prompt tokens
        that came out of block i-1 (VPT-deep); only entry 0 set is VPT-shallow.
        ``prefixes``: ``None`` or a list of ``depth`` entries, each ``None`` or ``(key, value)``
        with shapes (B, P, D), passed to block i's attention.
        """
        tokens = self.embed(x)
        n_prompt = 0
        for i, block in enumerate(self.blocks):
            if prompts is not None and prompts[i] is not None:
                p = prompts[i]
                tokens = torch.cat(
                    [tokens[:, :1], p.to(tokens.dtype), tokens[:, 1 + n_prompt :]], 1
                )
                n_prompt = p.shape[1]
            tokens = block(tokens, prefix=None if prefixes is None else prefixes[i])
        return self.norm(tokens[:, 0])

    def forward(self, x, prompts=None, prefixes=None) -> torch.Tensor:
        return self.head(self.forward_features(x, prompts=prompts, prefixes=prefixes))


class SmallCNN(nn.Module):
    """A small convolutional network for 8x8 images, trained from scratch as a baseline.

    Input (B, 1, 8, 8), (B, 8, 8) or (B, 64); output logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 10, width: int = 32, dropout: float = 0.2):
        super().__init__()
        check_int("num_classes", num_classes)
        check_int("width", width)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[1] == 64:
            x = x.view(x.shape[0], 1, 8, 8)
        elif x.dim() == 3 and tuple(x.shape[1:]) == (8, 8):
            x = x.unsqueeze(1)
        elif x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(
                "x must hold (B, 1, 8, 8) images, (B, 8, 8) or flat (B, 64) rows (one channel), "
                f"got shape {tuple(x.shape)}"
            )
        return self.head(self.features(x))


def block_index(name: str) -> int | None:
    """The block number in a parameter name like ``blocks.2.attn.q_proj.weight`` (else ``None``)."""
    parts = name.split(".")
    if len(parts) > 1 and parts[0] == "blocks" and parts[1].isdigit():
        return int(parts[1])
    return None
