"""Notebook 01's checkers reject plausible wrong solutions with the right message."""

import re

import pytest

from ftnotes.exercises import check
from ftnotes.exercises.nb01 import (
    layerwise_lr_groups,
    train_head,
    trainable_blocks,
    unfreeze_last_k,
)


def llrd(exponent_of_block, head_steps=0, embed_steps=None):
    """An LLRD builder whose block i gets decay ** exponent_of_block(i, L)."""

    def groups(model, base_lr, decay):
        depth = len(model.blocks)
        out = []
        for name, p in model.named_parameters():
            if name.startswith("blocks."):
                e = exponent_of_block(int(name.split(".")[1]), depth)
            elif name.startswith(("head.", "norm.")):
                e = head_steps
            else:
                e = depth + 1 if embed_steps is None else embed_steps(depth)
            out.append({"params": [p], "lr": base_lr * decay**e})
        return out

    return groups


def llrd_missing_embeddings(model, base_lr, decay):
    top = ("blocks.", "head.", "norm.")
    embed = {id(p) for n, p in model.named_parameters() if not n.startswith(top)}
    return [
        g
        for g in llrd(lambda i, L: L - i)(model, base_lr, decay)
        if id(g["params"][0]) not in embed
    ]


def unfreeze_first_k(model, k):
    for n, p in model.named_parameters():
        p.requires_grad = n.startswith(("head.", "norm.")) or (
            n.startswith("blocks.") and int(n.split(".")[1]) < k
        )
    return model


def unfreeze_head_frozen(model, k):
    depth = len(model.blocks)
    for n, p in model.named_parameters():
        p.requires_grad = n.startswith("blocks.") and int(n.split(".")[1]) >= depth - k
    return model


def unfreeze_k_plus_one(model, k):
    depth = len(model.blocks)
    for n, p in model.named_parameters():
        p.requires_grad = n.startswith(("head.", "norm.")) or (
            n.startswith("blocks.") and int(n.split(".")[1]) >= depth - k - 1
        )
    return model


def unfreeze_only_sets_true(model, k):
    depth = len(model.blocks)
    for n, p in model.named_parameters():
        if n.startswith("blocks.") and int(n.split(".")[1]) < depth - k:
            continue  # never freezes what an earlier call unfroze
        if n.startswith(("blocks.", "head.", "norm.")):
            p.requires_grad = True
        else:
            p.requires_grad = False
    return model


def llrd_fixed_rates(model, base_lr, decay):  # the first call's 0.1 and 0.5, typed in
    return layerwise_lr_groups(model, 0.1, 0.5)


def unfreeze_no_return(model, k):  # right, but the docstring's "Return the model" is forgotten
    unfreeze_last_k(model, k)


def unfreeze_depth_3(model, k):  # the checker's first model has 3 blocks
    for n, p in model.named_parameters():
        p.requires_grad = n.startswith(("head.", "norm.")) or (
            n.startswith("blocks.") and int(n.split(".")[1]) >= 3 - k
        )
    return model


def blocks_top_down(epoch, depth, epochs_per_stage=1):  # the right blocks, newest first
    return sorted(trainable_blocks(epoch, depth, epochs_per_stage), reverse=True)


def blocks_default_two(epoch, depth, epochs_per_stage=2):  # a default unlike the docstring's
    return trainable_blocks(epoch, depth, epochs_per_stage)


def debug_batch_32(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
    return train_head(head, features, labels, epochs, lr, 32, seed)  # the stub's batch size


def debug_fixed_lr(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
    return train_head(head, features, labels, epochs, 0.1, batch_size, seed)


def debug_fixed_seed(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
    return train_head(head, features, labels, epochs, lr, batch_size, 0)


def debug_fixed_epochs(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
    return train_head(head, features, labels, 20, lr, batch_size, seed)


def debug_no_return(head, features, labels, epochs=20, lr=0.1, batch_size=32, seed=0):
    losses = train_head(head, features, labels, epochs, lr, batch_size, seed)  # noqa: F841


WRONG = [
    ("01_llrd_groups", llrd_fixed_rates, "still give the rates of base_lr=0.1, decay=0.5"),
    ("01_unfreeze_last_k", unfreeze_no_return, "returned None: did you forget `return`"),
    ("01_unfreeze_last_k", unfreeze_depth_3, "L=5, k=2 these should be"),
    ("01_gradual_unfreezing", blocks_top_down, "wrong order.*sorted list"),
    ("01_gradual_unfreezing", blocks_default_two, r"expected \[3\]"),
    ("01_debug_run", debug_batch_32, "there are 15 batches.*batch_size arguments"),
    ("01_debug_run", debug_fixed_epochs, "there are 15 batches.*epochs"),
    ("01_debug_run", debug_fixed_lr, "use the arguments lr and seed"),
    ("01_debug_run", debug_fixed_seed, "use the arguments lr and seed"),
    ("01_debug_run", debug_no_return, "returned None: did you forget `return`"),
    ("01_llrd_groups", llrd(lambda i, L: L - i + 1), "off by one.*decay²"),
    ("01_llrd_groups", llrd(lambda i, L: L - i - 1), "off by one.*top block gets base_lr"),
    ("01_llrd_groups", llrd(lambda i, L: i + 1), "bottom-up"),
    ("01_llrd_groups", llrd(lambda i, L: L - i, head_steps=1), "should get base_lr"),
    ("01_llrd_groups", llrd(lambda i, L: L - i, embed_steps=lambda L: L), "one step below block 0"),
    ("01_llrd_groups", llrd_missing_embeddings, "missing from the groups"),
    ("01_llrd_groups", lambda m, lr, d: list(m.parameters()), "list of dicts"),
    ("01_unfreeze_last_k", unfreeze_first_k, "the first ones"),
    ("01_unfreeze_last_k", unfreeze_head_frozen, "head is frozen"),
    ("01_unfreeze_last_k", unfreeze_k_plus_one, "off by one"),
    ("01_unfreeze_last_k", unfreeze_only_sets_true, "should be frozen.*earlier call"),
    ("01_gradual_unfreezing", lambda e, d, s=1: list(range(min(e // s, d))), "from the top"),
    ("01_gradual_unfreezing", lambda e, d, s=1: list(range(d - min(e // s + 1, d), d)), "epoch 0"),
    ("01_gradual_unfreezing", lambda e, d, s=1: list(range(d - min(e, d), d)), "epochs_per_stage"),
    ("01_gradual_unfreezing", lambda e, d, s=1: list(range(d - e // s, d)), "0..depth-1"),
]


@pytest.mark.parametrize("ex_id, wrong, message", WRONG)
def test_wrong_solution_is_rejected_with_its_message(ex_id, wrong, message):
    result = check(ex_id, wrong)
    assert not result.passed and result.status == "failed"
    assert re.search(message, result.message), result.message
