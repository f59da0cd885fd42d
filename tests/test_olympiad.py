"""The olympiad task: head expansion, the toolbox, the scorer and its time budget (tiny models)."""

import copy

import pytest
import torch
from peft_helpers import tiny_vit

from ftnotes import olympiad as O

S, T = O.NUM_SOURCE, O.NUM_TARGET


def fake_data(n_target=40, per_source_class=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = torch.rand(S * per_source_class, 1, 8, 8, generator=g)
    ys = torch.arange(S).repeat_interleave(per_source_class)
    xt = torch.rand(n_target, 1, 8, 8, generator=g)
    yt = torch.arange(n_target) % T
    data = O.OlympiadData((xt, yt), (xt[:10], yt[:10]), (xs, ys), (xs[:20], ys[:20]))
    return data, {"source": (xs, ys), "target": (xt, yt)}


def test_expand_head_keeps_source_rows_and_aligns_new_ones():
    model = tiny_vit(S)
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
        O.expand_head(model, T, range(T))
        after = model(x)
    assert after.shape == (8, S + T)
    assert torch.equal(after[:, :S], before)  # the glyph predictions are untouched
    assert torch.allclose(after[:, S:], before[:, :T])  # digit rows = glyph rows "0"-"9"
    random_rows = O.expand_head(tiny_vit(S), T).head.weight[S:]
    assert random_rows.abs().max() < 0.1  # small random init, not a copy


def test_bad_inputs_raise_value_errors_naming_the_parameter():
    with pytest.raises(ValueError, match="num_new"):
        O.expand_head(tiny_vit(S), 0)
    with pytest.raises(ValueError, match="init_from_rows"):
        O.expand_head(tiny_vit(S), T, range(40, 50))
    with pytest.raises(ValueError, match="head"):
        O.expand_head(torch.nn.Sequential(), T)
    with pytest.raises(ValueError, match="temperature"):
        O.distill_loss(torch.zeros(2, S), torch.zeros(2, S), temperature=0)
    with pytest.raises(ValueError, match="strategy"):
        O.make_solution("magic")
    data, _ = fake_data()
    with pytest.raises(ValueError, match="per_class"):
        data.replay(0)
    model = O.expand_head(tiny_vit(S), T)
    with pytest.raises(ValueError, match="epochs"):
        O.train_expanded(model, data, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        O.train_expanded(model, data, lr=float("nan"))
    with pytest.raises(ValueError, match="head_lr"):
        O.train_expanded(model, data, head_lr=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        O.train_expanded(model, data, batch_size=0)
    with pytest.raises(ValueError, match="replay_per_class"):
        O.train_expanded(model, data, replay_per_class=-1)
    with pytest.raises(ValueError, match="teacher"):
        O.train_expanded(model, data, distill_weight=1.0)
    with pytest.raises(ValueError, match="budget_s"):
        O.run_solution(lambda m, d: m, tiny_vit(S), data, {}, budget_s=0)
    with pytest.raises(ValueError, match="k must"):  # more blocks than the model has
        O.make_solution("partial_ft", k=99, epochs=1)(tiny_vit(S), data)


def test_replay_takes_per_class_examples_reproducibly():
    data, _ = fake_data(per_source_class=3)
    x, y = data.replay(2, seed=1)
    assert torch.equal(torch.bincount(y, minlength=S), torch.full((S,), 2))
    assert torch.equal(data.replay(2, seed=1)[0], x)


def test_distill_loss_is_zero_for_the_teacher_itself_and_positive_otherwise():
    a, b = torch.randn(5, S), torch.randn(5, S)
    assert O.distill_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert O.distill_loss(a, b).item() > 0.01


def test_linear_probe_keeps_the_source_predictions_exactly():
    data, tests = fake_data()
    model = O.make_solution("linear_probe", epochs=2, lr=1e-2)(tiny_vit(S), data)
    with torch.no_grad():
        assert torch.equal(model(tests["source"][0])[:, :S], tiny_vit(S)(tests["source"][0]))


def test_training_lowers_the_loss_and_replay_distill_run():
    data, _ = fake_data()
    teacher = tiny_vit(S).requires_grad_(False)
    model = O.expand_head(tiny_vit(S), T, range(T))
    losses = O.train_expanded(model, data, epochs=6, lr=3e-3, replay_per_class=2,
                              distill_weight=1.0, teacher=teacher, batch_size=8)  # fmt: skip
    assert len(losses) == 6 * 5
    assert sum(losses[-5:]) < sum(losses[:5])


def test_lora_solution_trains_only_lora_and_head():
    data, tests = fake_data()
    base = tiny_vit(S)
    result = O.run_solution(O.make_solution("lora", epochs=1, r=2), base, data, tests)
    full = O.run_solution(O.make_solution("full_ft", epochs=1), base, data, tests)
    assert result.status == full.status == "scored"
    lora_count = 2 * 2 * 2 * (16 + 16)  # depth 2 x (q_proj, v_proj) x r (in + out)
    assert result.trainable_params == lora_count + 16 * (S + T) + S + T
    assert result.checkpoint_bytes < full.checkpoint_bytes
    assert full.trainable_params == sum(p.numel() for p in base.parameters()) + 17 * T


def test_score_is_half_old_plus_half_new():
    data, tests = fake_data()
    model = O.expand_head(tiny_vit(S), T)
    score, src, tgt = O.score_model(model, tests)
    with torch.no_grad():
        want_src = (model(tests["source"][0])[:, :S].argmax(1) == tests["source"][1]).float()
        want_tgt = (model(tests["target"][0])[:, S:].argmax(1) == tests["target"][1]).float()
    assert src == pytest.approx(want_src.mean().item())
    assert tgt == pytest.approx(want_tgt.mean().item())
    assert score == pytest.approx(0.5 * src + 0.5 * tgt)


def test_run_solution_reports_not_attempted_failures_and_over_budget():
    data, tests = fake_data()
    base = tiny_vit(S)

    def stub(model, data):
        raise NotImplementedError("your code here")

    r = O.run_solution(stub, base, data, tests)
    assert r.status == "not attempted" and "not attempted yet" in str(r) and r.counted_score == 0
    r = O.run_solution(lambda m, d: m, base, data, tests)  # forgot expand_head
    assert r.status == "failed" and "expand_head" in r.message
    r = O.run_solution(lambda m, d: 1 / 0, base, data, tests)
    assert r.status == "failed" and "ZeroDivisionError" in r.message
    r = O.run_solution(lambda m, d: O.expand_head(m), base, data, tests, budget_s=1e-9)
    assert r.status == "over budget" and r.score is not None and r.counted_score == 0.0
    on_time = O.run_solution(lambda m, d: O.expand_head(m), base, data, tests, budget_s=60)
    assert on_time.status == "scored" and on_time.counted_score == on_time.score


def test_divergence_is_reported_not_crashed():
    data, tests = fake_data()
    solve = O.make_solution("full_ft", lr=1e6, epochs=2)  # a slider pushed to the far end
    r = O.run_solution(solve, tiny_vit(S), data, tests)
    assert r.status == "failed" and r.counted_score == 0.0
    assert "TrainingDiverged" in r.message and "learning rate" in r.message


def test_run_solution_never_changes_the_base_model():
    data, tests = fake_data()
    base = tiny_vit(S)
    before = copy.deepcopy(base.state_dict())
    O.run_solution(O.make_solution("full_ft", epochs=1), base, data, tests)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    assert base.head.out_features == S


def test_show_reference_solution_prints_its_code(capsys):
    O.show_reference_solution()
    out = capsys.readouterr().out
    assert "def reference_solution" in out and "replay_per_class" in out


@pytest.mark.parametrize("name", ["head_lr", "distill_weight", "lr"])
def test_infinite_rates_and_weights_are_blamed_on_themselves(name):
    data, _ = fake_data()
    model = O.expand_head(tiny_vit(S), T, range(T))
    with pytest.raises(ValueError, match=f"^{name} must be .*finite.*inf"):
        O.train_expanded(model, data, epochs=1, teacher=tiny_vit(S), **{name: float("inf")})


def test_run_solution_trains_on_one_thread_and_restores_it():
    data, tests = fake_data()
    seen = []

    def solve(model, data):
        seen.append(torch.get_num_threads())
        return O.expand_head(model, T, range(T))

    torch.set_num_threads(2)
    try:
        O.run_solution(solve, tiny_vit(S), data, tests)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
