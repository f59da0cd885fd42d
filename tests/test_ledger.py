"""The ledger: counts match count_params, bytes match torch.save, latency is a real timing."""

import io
from types import SimpleNamespace

import pytest
import torch
from peft_helpers import tiny_vit

from ftnotes.evaluate import accuracy, source_retention
from ftnotes.ledger import (
    Ledger,
    RunRecord,
    cost_shares,
    record_run,
    state_dict_bytes,
    trainable_state_dict,
)
from ftnotes.strategies import apply_strategy, replace_head
from ftnotes.train import fit
from ftnotes.utils import count_params


def tiny_task(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    X, y = torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)
    return SimpleNamespace(train=(X, y), val=(X[:16], y[:16]), test=(X[16:], y[16:]))


def saved_size(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return len(buf.getvalue())


def test_state_dict_bytes_match_torch_save():
    model = tiny_vit(4)
    assert state_dict_bytes(model.state_dict()) == saved_size(model.state_dict())
    apply_strategy(model, "linear_probe")
    sd = trainable_state_dict(model)
    assert set(sd) == {"head.weight", "head.bias"}
    assert state_dict_bytes(sd) == saved_size(sd) < state_dict_bytes(model.state_dict())


@pytest.mark.parametrize("strategy", ["linear_probe", "full_ft"])
def test_record_run_fills_measured_values(strategy):
    model, task = tiny_vit(4), tiny_task()
    source = tiny_task(seed=1).test
    old_head = replace_head(model, 3)
    apply_strategy(model, strategy)
    h = fit(model, task.train, task.val, epochs=1, batch_size=16, progress=False)
    r = record_run(strategy, model, h, task, source_head=old_head, source_test=source)
    assert r.trainable_params == count_params(model, trainable_only=True)
    assert r.total_params == count_params(model)
    assert r.target_acc == accuracy(model, task.test)
    assert r.source_acc == source_retention(model, old_head, source)
    assert r.full_checkpoint_bytes == saved_size(model.state_dict())
    want = model.state_dict() if strategy == "full_ft" else trainable_state_dict(model)
    assert r.checkpoint_bytes == saved_size(want)
    assert r.optimizer_state_bytes == h.optimizer_state_bytes > 0
    assert r.train_seconds == h.train_seconds > 0 and r.latency_ms > 0
    assert r.step_ms == h.step_ms > 0
    assert r.extra["latency_batch"] == 32 and r.extra["epochs"] == 1


def test_ledger_table_and_dicts():
    model, task = tiny_vit(4), tiny_task()
    h = fit(model, task.train, epochs=1, batch_size=48, progress=False)
    ledger = Ledger()
    ledger.add(record_run("full FT", model, h, task, extra={"note": "x"}))
    assert len(ledger) == 1 and ledger.records[0].source_acc is None
    md = ledger.to_markdown()
    lines = md.splitlines()
    assert len(lines) == 3 and "full FT" in lines[2] and "| - |" in lines[2]
    assert lines[0].count("|") == lines[2].count("|") and "step ms" in lines[0]
    assert ledger.to_dicts()[0]["extra"]["note"] == "x"
    with pytest.raises(ValueError, match="record"):
        ledger.add({"name": "x"})
    with pytest.raises(ValueError, match="source_head"):
        record_run("x", model, h, task, source_head=model.head)


def test_run_record_fields():
    r = RunRecord("a", 0.5, None, 1, 2, 3, 4, 5.0, 6.0, 7, 8)
    assert r.extra == {} and Ledger([r]).records == [r]


def test_cost_shares_against_the_reference_run(capsys):
    full = RunRecord("full_ft", 0.9, None, 100, 100, 808, 0, 1.0, 1.0, 0, 0, step_ms=8.0)
    lora = RunRecord("lora", 0.9, None, 5, 105, 48, 0, 1.0, 1.0, 0, 0, step_ms=6.0)
    shares = cost_shares(Ledger([full, lora]))
    assert shares["lora"] == {"trainable": 0.05, "optimizer state": 48 / 808, "step time": 0.75}
    assert shares["full_ft"]["step time"] == 1.0 and "lora" in capsys.readouterr().out
    assert cost_shares([lora], reference="lora", show=False)["lora"]["trainable"] == 1.0
    with pytest.raises(ValueError, match="reference must name one of the runs"):
        cost_shares([lora], show=False)


def test_cost_shares_of_a_run_not_timed(capsys):
    # notebook 02 times some runs interleaved (step_ms None for the others) and still compares
    # every run's optimizer state: cost_shares failed on the untimed ones
    full = RunRecord("full_ft", 0.9, None, 100, 100, 808, 0, 1.0, 1.0, 0, 0, step_ms=8.0)
    wide = RunRecord("adapter rf=32", 0.9, None, 5, 105, 48, 0, 1.0, 1.0, 0, 0, step_ms=None)
    shares = cost_shares(Ledger([full, wide]))
    assert shares["adapter rf=32"]["optimizer state"] == 48 / 808
    assert shares["adapter rf=32"]["step time"] != shares["adapter rf=32"]["step time"]  # nan
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("adapter"))
    assert row.split()[-2:] == ["-", "-"]
