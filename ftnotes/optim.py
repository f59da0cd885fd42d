"""The optimizer ``fit`` builds: AdamW (Loshchilov & Hutter 2019) with the field's weight-decay
rule, applied inside every parameter group (layer-wise rates keep their decay split).
"""

from __future__ import annotations

import torch
from torch import nn

NO_DECAY_NAMES = ("cls_token", "pos_embed")  # TinyViT's learned tokens: no weight decay


def decays(name: str, param: torch.Tensor) -> bool:
    """Whether AdamW's weight decay applies to parameter ``name``: the field's rule.

    Decay only matrices and kernels (``ndim >= 2``), never biases or norms' weights (every
    tensor with ``ndim < 2``), as nanoGPT's ``configure_optimizers`` (Karpathy) does and as
    Hugging Face Trainer's ``get_decay_parameter_names`` does by name (biases, LayerNorm);
    and never the class token or the position embeddings (their last name part is in
    ``NO_DECAY_NAMES``), as timm's ViT does (``no_weight_decay()``: ``pos_embed``,
    ``cls_token``), where nanoGPT and Trainer would decay them. Shrinking a bias, a norm's gain
    or a position embedding towards 0 is no regularisation, it only moves the model's offsets.
    The learned prompts / prefixes of prompt and prefix tuning (``(P, D)`` or more) and LoRA's
    ``A``/``B`` are >= 2-D and keep their decay.
    """
    return param.ndim >= 2 and name.rsplit(".", 1)[-1] not in NO_DECAY_NAMES


def decay_param_groups(model_or_named_params, weight_decay: float = 0.01) -> list[dict]:
    """AdamW parameter groups: ``[{"params": decayed, "weight_decay": weight_decay},
    {"params": not decayed, "weight_decay": 0.0}]`` by :func:`decays`; an empty group is left
    out. ``model_or_named_params``: an ``nn.Module`` (all its parameters, frozen ones too) or
    ``(name, parameter)`` pairs. Splitting a group changes no optimizer state (AdamW keeps its
    moments per tensor), so ``memory.adamw_state_bytes`` holds either way.
    """
    named = model_or_named_params
    if isinstance(named, nn.Module):
        named = named.named_parameters()
    decay, no_decay = [], []
    for name, p in named:
        (decay if decays(name, p) else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]  # fmt: skip
    return [g for g in groups if g["params"]]


def _split_decay(group: dict, names: dict, weight_decay: float) -> list[dict]:
    """One parameter group -> its decay and no-decay halves (other keys kept: lr, name)."""
    wd = group.get("weight_decay", weight_decay)
    params = group["params"]
    params = [params] if torch.is_tensor(params) else list(params)
    named = [(names.get(id(p), ""), p) for p in params]
    return [{**group, **half} for half in decay_param_groups(named, wd)]


def check_param_groups(param_groups) -> None:
    """ValueError unless ``param_groups`` is None or a list of dicts with a 'params' key."""
    if param_groups is None:
        return
    if not isinstance(param_groups, (list, tuple)) or not all(
        isinstance(g, dict) and "params" in g for g in param_groups
    ):
        raise ValueError(
            "param_groups must be a list of dicts with a 'params' key (as torch takes)"
        )


def make_adamw(model, lr: float, weight_decay: float, param_groups=None,
               keep_frozen: bool = False) -> torch.optim.AdamW:  # fmt: skip
    """AdamW over ``model``'s trainable parameters, or over ``param_groups`` (e.g.
    ``strategies.layerwise_lr_groups``; ``lr`` and ``weight_decay`` fill in what a group lacks),
    each group split by :func:`decays`. ``keep_frozen``: frozen parameters go in too, for a
    callback that unfreezes them later (AdamW skips a parameter whose ``.grad`` is None,
    weight decay included)."""
    check_param_groups(param_groups)
    names = {id(p): n for n, p in model.named_parameters()}
    if param_groups is None:
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("model has no trainable parameters (all requires_grad=False)")
        params = [p for p in model.parameters() if p.requires_grad or keep_frozen]
        groups = _split_decay({"params": params}, names, weight_decay)
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if not any(p.requires_grad for g in param_groups for p in g["params"]):
        raise ValueError("param_groups hold no trainable parameters (all requires_grad=False)")
    # New dicts: torch writes the scheduled rate into each group, and the caller may reuse them.
    groups = [half for g in param_groups for half in _split_decay(g, names, weight_decay)]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
