"""Exercise of notebook 05 (workflow): write the training loop yourself.

Checked by behaviour, not by reading the code: the optimizer, the scheduler and the model are
watched while the student's loop runs, so any correct loop passes and a loop that forgets a
step (or takes them in the wrong order, or ignores an argument) fails with the step named.
Its own module because notebook 05's other exercises fill ``nb05.py``.
"""

from __future__ import annotations

import torch

from ..utils import check_int
from .core import exercise
from .fixtures import returned

# ---------------------------------------------------------------- reference solution


def train_loop(model, loader, optimizer, scheduler, epochs):
    """Train ``model`` with cross-entropy for ``epochs`` passes over ``loader``; per-batch losses."""
    check_int("epochs", epochs)
    model.train()  # dropout and normalisation layers behave as in training
    losses = []
    for _ in range(epochs):
        for inputs, labels in loader:
            optimizer.zero_grad()  # gradients add up in .grad: clear last batch's first
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()  # once per batch, after the optimizer step it schedules
            losses.append(loss.item())  # a float: a kept tensor would keep its graph alive
    return losses


# ---------------------------------------------------------------- 05_training_loop


def _loop_task(batch_size=16, hidden=32):
    """A small model and four well-separated blobs (128 points in 8 dimensions), in batches."""
    g = torch.Generator().manual_seed(5)
    centres = 3 * torch.randn(4, 8, generator=g)
    y = torch.arange(4).repeat(32)
    X = centres[y] + 0.5 * torch.randn(128, 8, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(6)
        model = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(),
                                    torch.nn.Dropout(0.2), torch.nn.Linear(hidden, 4))  # fmt: skip
    data = torch.utils.data.TensorDataset(X, y)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, generator=g)
    return model, loader, X, y


def _spy(obj, name, tag, events):
    """Replace ``obj.name`` by a wrapper that logs ``tag`` in ``events``, then calls it."""
    original = getattr(obj, name)

    def spy(*args, **kwargs):
        events.append(tag)
        return original(*args, **kwargs)

    setattr(obj, name, spy)


def _watch(model, events, sgd=False):
    """An optimizer and a scheduler on ``model`` that log their calls; backward and forwards too.
    AdamW with a LambdaLR, or (``sgd``) SGD with a StepLR."""
    if sgd:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    _spy(optimizer, "zero_grad", "zero_grad", events)
    optimizer.register_step_post_hook(lambda *args: events.append("step"))  # torch's own hook
    if sgd:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.9)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (1 + 0.01 * s))
    _spy(scheduler, "step", "scheduler", events)
    model[0].weight.register_hook(lambda grad: events.append("backward"))
    model.register_forward_pre_hook(lambda module, args: events.append(("forward", module.training)))
    return optimizer, scheduler


def _replay_order(events, ctx):
    """Walk the logged calls like the gradients would, failing at the first misplaced one."""
    clean, fresh, due = True, False, False
    for event in events:
        if event == "zero_grad":
            clean = True
        elif event == "backward":
            ctx.expect(clean, "loss.backward() found last batch's gradients still in .grad: they "
                       "add up. Clear them once per batch, before backward.")  # fmt: skip
            clean, fresh = False, True
        elif event == "step":
            ctx.expect(fresh, "optimizer.step() ran without a fresh loss.backward() before it.")
            fresh, due = False, True
        elif event == "scheduler":
            ctx.expect(due, "scheduler.step() ran before optimizer.step() (or twice for one "
                       "batch): advance it once per batch, after the optimizer's step.")  # fmt: skip
            due = False


@exercise(
    "05_training_loop",
    title="Write the training loop yourself",
    kind="function",
    reference=train_loop,
    stub='''
    def train_loop(model, loader, optimizer, scheduler, epochs):
        """Train `model` with cross-entropy for `epochs` passes over `loader` (batches of
        (inputs, labels)). Per batch: clear the old gradients, compute the loss, backpropagate,
        step the optimizer, then step the scheduler. Return the per-batch losses as floats."""
        raise NotImplementedError("your code here")
    ''',
    hints=[
        "Two nested loops: over epochs, then over `for inputs, labels in loader:`. Put the model "
        "in training mode first.",
        "In each batch, four calls in this order: clear the gradients on the optimizer, the "
        "loss's backward pass, the optimizer's step, the scheduler's step.",
        "The loss is torch.nn.functional.cross_entropy of the model's logits and the labels; "
        "keep its value as a Python float (the tensor's item) in a list you return at the end.",
    ],
)
def _check_training_loop(fn, ctx):
    model, X, y = _run_loop(fn, ctx, epochs=3, batch_size=16, sgd=False)
    ctx.ok("zero_grad, backward, optimizer step, scheduler step: once per batch, in that order")
    ctx.ok("the model trains in training mode")
    _run_loop(fn, ctx, epochs=2, batch_size=24, sgd=True)
    ctx.ok("the same for 2 epochs of batches of 24, with SGD and a StepLR, on a narrower model")
    model.eval()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    ctx.expect(acc >= 0.9, f"after 3 epochs the model reaches {acc:.0%} training accuracy; a "
               "correct loop reaches at least 90% here.")  # fmt: skip
    ctx.ok(f"it learns: {acc:.0%} training accuracy after 3 epochs (at least 90% asked)")


def _run_loop(fn, ctx, epochs, batch_size, sgd):
    """Run the student's loop on a watched task; check the calls, their order and the losses."""
    model, loader, X, y = _loop_task(batch_size, hidden=32 if not sgd else 24)
    events = []
    optimizer, scheduler = _watch(model, events, sgd)
    model.eval()  # the loop must put the model in training mode itself
    losses = returned(fn(model, loader, optimizer, scheduler, epochs), "train_loop", ctx,
                      "the per-batch losses")  # fmt: skip
    n = epochs * len(loader)
    calls = [e for e in events if isinstance(e, str)]
    ctx.expect(calls.count("step") == n, f"optimizer.step() ran {calls.count('step')} times in "
               f"{epochs} epochs of {len(loader)} batches (batch size {batch_size}); it must run "
               f"once per batch ({n}): loop over `epochs` and over the loader you were given.")  # fmt: skip
    ctx.expect(calls.count("backward") == n, "call loss.backward() once per batch.")
    _replay_order(calls, ctx)
    ctx.expect(calls.count("scheduler") == n, "step the scheduler once per batch "
               f"({n} times), not once per epoch; it ran {calls.count('scheduler')} times.")  # fmt: skip
    modes = [training for e, training in (x for x in events if isinstance(x, tuple))]
    ctx.expect(all(modes), "the model was in eval mode during training: call model.train() first "
               "(dropout is off in eval mode).")  # fmt: skip
    ctx.expect(isinstance(losses, (list, tuple)) and len(losses) == n,
               f"return the list of the {n} per-batch losses.")  # fmt: skip
    ctx.expect(all(isinstance(v, float) for v in losses),
               "return the losses as Python floats (loss.item()), not tensors.")  # fmt: skip
    return model, X, y
