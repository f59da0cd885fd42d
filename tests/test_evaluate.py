"""Scoring: predictions, accuracy, confusion matrix, source retention, the IOAI score, latency."""

import copy

import numpy as np
import pytest
import torch
from peft_helpers import tiny_vit
from torch.utils.data import TensorDataset

from ftnotes.evaluate import (
    accuracy,
    as_tensors,
    confusion,
    ioai_score,
    latency_ms,
    loss_and_accuracy,
    predict,
    source_retention,
)
from ftnotes.strategies import replace_head
from ftnotes.train import fit


def data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_predict_and_accuracy_agree_with_direct_forward():
    model, (X, y) = tiny_vit(4), data()
    model.train()
    with torch.no_grad():
        model.eval()
        want = model(X).argmax(1)
    model.train()
    assert torch.equal(predict(model, (X, y), batch_size=7), want)
    assert torch.equal(predict(model, X), want)
    assert model.training  # handed back in the mode it came in
    assert accuracy(model, TensorDataset(X, y)) == pytest.approx((want == y).float().mean().item())
    loss, acc = loss_and_accuracy(model, (X, y), batch_size=9)
    with torch.no_grad():
        model.eval()
        assert loss == pytest.approx(torch.nn.functional.cross_entropy(model(X), y).item(), 1e-5)


def test_confusion_matrix():
    model, (X, y) = tiny_vit(4), data()
    cm = confusion(model, (X, y), num_classes=4)
    pred = predict(model, X)
    assert cm.shape == (4, 4) and cm.sum() == len(y)
    assert np.trace(cm) == int((pred == y).sum())
    assert cm[int(y[0]), int(pred[0])] >= 1
    with pytest.raises(ValueError, match="num_classes"):
        confusion(model, (X, y), num_classes=0)


def test_retention_of_untouched_backbone_equals_source_accuracy():
    model, source = tiny_vit(4), data(seed=1)
    fit(model, source, epochs=2, lr=3e-3, batch_size=20, progress=False)
    source_acc = accuracy(model, source)
    old_head = replace_head(model, 3)
    assert source_retention(model, old_head, source) == source_acc


def test_retention_drops_when_the_body_changes():
    model, source = tiny_vit(4), data(seed=1)
    old_head = copy.deepcopy(model.head)
    before = source_retention(model, old_head, source)
    with torch.no_grad():
        for p in model.blocks.parameters():
            p.add_(torch.randn_like(p))
    assert source_retention(model, old_head, source) != before


def test_ioai_score_and_bad_inputs():
    assert ioai_score(0.9, 0.5) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="old_acc"):
        ioai_score(1.2, 0.5)
    with pytest.raises(ValueError, match="new_acc"):
        ioai_score(0.5, float("nan"))
    X, y = data()
    with pytest.raises(ValueError, match="data"):
        as_tensors(X)
    with pytest.raises(ValueError, match="same non-zero length"):
        as_tensors((X, y[:3]))
    with pytest.raises(ValueError, match="batch_size"):
        predict(tiny_vit(4), X, batch_size=0)


def test_bad_images_and_labels_get_clear_errors():
    model = tiny_vit(4)
    X, y = data()
    for bad, match in ((float("nan"), "input contains NaN"), (float("inf"), "input contains inf")):
        Xb = X.clone()
        Xb[3, 0, 2, 2] = bad
        with pytest.raises(ValueError, match=match):
            accuracy(model, (Xb, y))
        with pytest.raises(ValueError, match="NaN or inf"):
            predict(model, Xb)
        with pytest.raises(ValueError, match=match):
            fit(model, (Xb, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\].*max 16.*divide by 16"):
        fit(model, (X * 16, y), epochs=1, progress=False)  # unscaled UCI counts
    for labels in (y + 4, y - 1):  # the model has 4 outputs
        with pytest.raises(ValueError, match="labels"):
            fit(model, (X, labels), epochs=1, progress=False)
        with pytest.raises(ValueError, match="labels"):
            accuracy(model, (X, labels))


def test_latency_ms_one_model_and_interleaved():
    model = tiny_vit(4).train()
    x = torch.rand(8, 1, 8, 8)
    calls = []
    ms = latency_ms(model, x, repeats=5, warmup=2, forward=lambda m, b: calls.append(m.training))
    assert calls == [False] * 7 and ms >= 0  # warmup + repeats passes, in eval mode
    assert model.training  # handed back in the mode it came in
    assert latency_ms(model, x, repeats=3) > 0
    other, order = tiny_vit(3).eval(), []
    ms = latency_ms({"a": model, "b": other}, x, repeats=3, warmup=1,
                    forward=lambda m, b: order.append("a" if m is model else "b"))  # fmt: skip
    assert set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]  # rotating order, round by round
    assert model.training and not other.training
    with pytest.raises(ValueError, match="repeats"):
        latency_ms(model, x, repeats=0)
    with pytest.raises(ValueError, match="models must be"):
        latency_ms({}, x)


class _Clock:
    """A fake perf_counter that moves only when a model runs: deterministic step times."""

    def __init__(self):
        self.now, self.calls = 0.0, 0

    def __call__(self):
        return self.now


def _costed(model, clock, cost, load):
    """``model`` whose forward advances the fake clock by cost x the load of this round."""

    class Costed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            clock.now += cost * load(clock.calls // 2)  # two models: two calls a round
            clock.calls += 1
            return self.inner(x)

    return Costed()


def test_step_times_are_interleaved_so_load_falls_on_every_model_alike(monkeypatch):
    """Two models, one twice as costly; a load burst (5x) in the middle of the timing. Timed
    interleaved, the per-round ratio is exactly 2 in every round, burst or not."""
    import ftnotes.evaluate as ev

    clock = _Clock()
    monkeypatch.setattr(ev.time, "perf_counter", clock)
    load = lambda round_: 5.0 if 20 <= round_ < 40 else 1.0  # noqa: E731
    models = {"cheap": _costed(tiny_vit(num_classes=4), clock, 0.01, load),
              "dear": _costed(tiny_vit(num_classes=4), clock, 0.02, load)}  # fmt: skip
    X, y = torch.rand(64, 1, 8, 8), torch.arange(64) % 4
    steps = ev.step_times(models, (X, y), batch_size=16, rounds=60, warmup=2)
    assert len(steps) == 60 and set(steps.seconds) == {"cheap", "dear"}
    ratios = steps.ratios("dear", "cheap")
    assert ratios[0] == pytest.approx(2.0) and ratios[-1] == pytest.approx(2.0)
    assert steps.ratio("dear", "cheap") == pytest.approx(2.0)
    assert steps.describe("dear", "cheap") == "2.00x (2.00-2.00)"
    assert max(steps.seconds["cheap"]) == pytest.approx(5 * min(steps.seconds["cheap"]))


def test_step_times_use_the_same_batch_for_every_model_and_leave_the_models_unchanged():
    from ftnotes.evaluate import step_times

    seen = {"a": [], "b": []}
    models = {name: tiny_vit(num_classes=4, seed=i) for i, name in enumerate(seen)}
    for name, m in models.items():
        m.tag = name  # copied along with the model
    before = {name: copy.deepcopy(m.state_dict()) for name, m in models.items()}
    X, y = torch.rand(40, 1, 8, 8), torch.arange(40) % 4

    def forward(model, xb):
        seen[model.tag].append(xb.clone())
        return model(xb)

    step_times(models, (X, y), batch_size=16, rounds=4, warmup=1, forward=forward)
    assert len(seen["a"]) == len(seen["b"]) == 5
    assert all(torch.equal(a, b) for a, b in zip(seen["a"], seen["b"]))  # same batch each round
    assert not torch.equal(seen["a"][0], seen["a"][1])  # the next round, the next batch
    for name, m in models.items():  # timed on copies
        assert all(torch.equal(v, before[name][k]) for k, v in m.state_dict().items())


def test_step_times_bad_input():
    from ftnotes.evaluate import step_times

    data = (torch.rand(8, 1, 8, 8), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="at least two"):
        step_times({"a": tiny_vit(num_classes=2)}, data)
    frozen = tiny_vit(num_classes=2).requires_grad_(False)
    with pytest.raises(ValueError, match=r"models\['b'\] has no trainable parameters"):
        step_times({"a": tiny_vit(num_classes=2), "b": frozen}, data)
    with pytest.raises(ValueError, match="rounds must be an int >= 2"):
        step_times({"a": tiny_vit(num_classes=2), "b": tiny_vit(num_classes=2)}, data, rounds=1)
