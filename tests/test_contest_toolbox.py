"""The old + new classes toolbox: head expansion, replay, distillation, training the expanded
model, solutions built from it and their timed, scored runs (tiny models); the one old + new
scorer's two options."""

import copy

import pytest
import torch
from peft_helpers import tiny_vit

from ftnotes.contest import ContestData, get_task
from ftnotes.contest import toolbox as T
from ftnotes.contest.metrics import old_new_score
from ftnotes.contest.oldnew import NUM_NEW, NUM_OLD

S, N = NUM_OLD, NUM_NEW
TASK = get_task("keep_glyphs")


def fake_data(n_new=40, per_old_class=3, seed=0):
    """ContestData shaped like keep_glyphs' (new labels 34-43) and a test (X, y) of both."""
    g = torch.Generator().manual_seed(seed)
    xs = torch.rand(S * per_old_class, 1, 8, 8, generator=g)
    ys = torch.arange(S).repeat_interleave(per_old_class)
    xt = torch.rand(n_new, 1, 8, 8, generator=g)
    yt = torch.arange(n_new) % N + S
    data = ContestData("keep_glyphs", (xt, yt), (xt[:10], yt[:10]), torch.arange(5), xt[:5],
                       extra={"old_train": (xs, ys), "old_val": (xs[:20], ys[:20])})  # fmt: skip
    return data, (torch.cat([xs, xt]), torch.cat([ys, yt]))


def test_expand_head_keeps_old_rows_and_aligns_new_ones():
    model = tiny_vit(S)
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        before = model(x)
        T.expand_head(model, N, range(N))
        after = model(x)
    assert after.shape == (8, S + N)
    assert torch.equal(after[:, :S], before)  # the old predictions are untouched
    assert torch.allclose(after[:, S:], before[:, :N])  # new rows = old rows "0"-"9"
    random_rows = T.expand_head(tiny_vit(S), N).head.weight[S:]
    assert random_rows.abs().max() < 0.1  # small random init, not a copy


def test_expand_head_agrees_with_notebook_06_exercise_reference():
    from ftnotes.exercises.nb06 import expand_rows

    model = tiny_vit(S)
    head = copy.deepcopy(model.head)
    T.expand_head(model, N, range(N))
    by_hand = expand_rows(head, N, list(range(N)))
    assert torch.equal(model.head.weight, by_hand.weight)
    assert torch.equal(model.head.bias, by_hand.bias)


def test_bad_inputs_raise_value_errors_naming_the_parameter():
    with pytest.raises(ValueError, match="num_new"):
        T.expand_head(tiny_vit(S), 0)
    with pytest.raises(ValueError, match="init_from_rows"):
        T.expand_head(tiny_vit(S), N, range(40, 50))
    with pytest.raises(ValueError, match="head"):
        T.expand_head(torch.nn.Sequential(), N)
    with pytest.raises(ValueError, match="temperature"):
        T.distill_loss(torch.zeros(2, S), torch.zeros(2, S), temperature=0)
    with pytest.raises(ValueError, match="strategy"):
        T.make_solution("magic")
    data, test = fake_data()
    with pytest.raises(ValueError, match="per_class"):
        T.replay_set(data, 0)
    model = T.expand_head(tiny_vit(S), N)
    for kw, name in (({"epochs": 0}, "epochs"), ({"lr": float("nan")}, "lr"),
                     ({"head_lr": -1.0}, "head_lr"), ({"batch_size": 0}, "batch_size"),
                     ({"replay_per_class": -1}, "replay_per_class"),
                     ({"distill_weight": 1.0}, "teacher"), ({"lr": True}, "lr")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            T.train_expanded(model, data, **kw)
    old_labels = ContestData("t", data.extra["old_train"], data.val, data.test_ids, data.test_x,
                             extra=data.extra)  # fmt: skip
    with pytest.raises(ValueError, match="new-class labels 34-43"):
        T.train_expanded(model, old_labels)
    with pytest.raises(ValueError, match="time_limit_s"):
        T.run_solution(TASK, lambda m, d: m, tiny_vit(S), data, test, time_limit_s=0)
    with pytest.raises(ValueError, match="k must"):  # more blocks than the model has
        T.make_solution("partial_ft", k=99, epochs=1)(tiny_vit(S), data)


def test_replay_takes_per_class_examples_reproducibly():
    data, _ = fake_data(per_old_class=3)
    x, y = T.replay_set(data, 2, seed=1)
    assert torch.equal(torch.bincount(y, minlength=S), torch.full((S,), 2))
    assert torch.equal(T.replay_set(data, 2, seed=1)[0], x)


def test_distill_loss_is_zero_for_the_teacher_itself_and_positive_otherwise():
    a, b = torch.randn(5, S), torch.randn(5, S)
    assert T.distill_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert T.distill_loss(a, b).item() > 0.01


def test_linear_probe_keeps_the_old_predictions_exactly():
    data, (x, _) = fake_data()
    model = T.make_solution("linear_probe", epochs=2, lr=1e-2)(tiny_vit(S), data)
    with torch.no_grad():
        assert torch.equal(model(x)[:, :S], tiny_vit(S)(x))


def test_training_lowers_the_loss_and_replay_distill_run():
    data, _ = fake_data()
    teacher = tiny_vit(S).requires_grad_(False)
    model = T.expand_head(tiny_vit(S), N, range(N))
    losses = T.train_expanded(model, data, epochs=6, lr=3e-3, replay_per_class=2,
                              distill_weight=1.0, teacher=teacher, batch_size=8)  # fmt: skip
    assert len(losses) == 6 * 5
    assert sum(losses[-5:]) < sum(losses[:5])


def test_lora_solution_trains_only_lora_and_head():
    data, test = fake_data()
    base = tiny_vit(S)
    result = T.run_solution(TASK, T.make_solution("lora", epochs=1, r=2), base, data, test)
    full = T.run_solution(TASK, T.make_solution("full_ft", epochs=1), base, data, test)
    assert result.status == full.status == "scored"
    lora_count = 2 * 2 * 2 * (16 + 16)  # depth 2 x (q_proj, v_proj) x r (in + out)
    assert result.extra["trainable_params"] == lora_count + 16 * (S + N) + S + N
    assert result.extra["checkpoint_bytes"] < full.extra["checkpoint_bytes"]
    assert full.extra["trainable_params"] == sum(p.numel() for p in base.parameters()) + 17 * N


def test_one_scorer_one_softmax_or_task_aware():
    y = torch.tensor([0, 1, 34, 35])
    scores = torch.zeros(4, S + N)
    scores[0, 0] = scores[1, 40] = scores[2, 34] = scores[3, 1] = 5.0  # 1 and 3 cross over
    scores[1, 1] = scores[3, 35] = 1.0  # ... but their own rows are right
    one = old_new_score(scores, y, S)
    aware = old_new_score(scores, y, S, task_aware=True)
    assert (one["acc_old"], one["acc_new"], one["score"]) == (0.5, 0.5, 0.5)
    assert (aware["acc_old"], aware["acc_new"], aware["score"]) == (1.0, 1.0, 1.0)
    labels = torch.tensor([0, 40, 34, -1])  # labels are scored as given; -1 is invalid: wrong
    assert old_new_score(labels, y, S, task_aware=True) == {"score": 0.5, "acc_old": 0.5,
                                                            "acc_new": 0.5}  # fmt: skip
    with pytest.raises(ValueError, match="old .* and the new classes"):
        old_new_score(labels[:2], y[:2], S)
    with pytest.raises(ValueError, match="scores"):
        old_new_score(scores[:3], y, S)


def test_run_solution_scores_task_aware_outputs_as_half_old_plus_half_new():
    data, (x, y) = fake_data()
    r = T.run_solution(TASK, lambda m, d: T.expand_head(m, N), tiny_vit(S), data, (x, y))
    model = T.expand_head(tiny_vit(S), N)
    with torch.no_grad():
        out = model(x)
    want_old = (out[y < S, :S].argmax(1) == y[y < S]).float().mean().item()
    want_new = (out[y >= S, S:].argmax(1) + S == y[y >= S]).float().mean().item()
    assert r.parts["acc_old"] == pytest.approx(want_old)
    assert r.parts["acc_new"] == pytest.approx(want_new)
    assert r.score == pytest.approx(0.5 * want_old + 0.5 * want_new)
    pred = T.predict_task_aware(model, x, y < S)
    assert torch.equal(pred[y < S] < S, torch.ones(int((y < S).sum()), dtype=torch.bool))


def test_run_solution_reports_not_attempted_failures_and_time_limit():
    data, test = fake_data()
    base = tiny_vit(S)

    def stub(model, data):
        raise NotImplementedError("your code here")

    r = T.run_solution(TASK, stub, base, data, test)
    assert r.status == "not attempted" and "not attempted yet" in str(r) and r.score is None
    r = T.run_solution(TASK, lambda m, d: m, base, data, test)  # forgot expand_head
    assert r.status == "error" and "expand_head" in r.message
    r = T.run_solution(TASK, lambda m, d: 1 / 0, base, data, test)
    assert r.status == "error" and "ZeroDivisionError" in r.message
    r = T.run_solution(TASK, lambda m, d: T.expand_head(m), base, data, test, time_limit_s=1e-9)
    assert r.status == "time limit exceeded" and r.score is not None and "count 0" in r.message
    on_time = T.run_solution(TASK, lambda m, d: T.expand_head(m), base, data, test)
    assert on_time.status == "scored" and on_time.time_limit_s == TASK.time_limit_s


def test_divergence_is_reported_not_crashed():
    data, test = fake_data()
    solve = T.make_solution("full_ft", lr=1e6, epochs=2)  # a slider pushed to the far end
    r = T.run_solution(TASK, solve, tiny_vit(S), data, test)
    assert r.status == "error" and r.score is None
    assert "TrainingDiverged" in r.message and "learning rate" in r.message


def test_run_solution_never_changes_the_base_model():
    data, test = fake_data()
    base = tiny_vit(S)
    before = copy.deepcopy(base.state_dict())
    T.run_solution(TASK, T.make_solution("full_ft", epochs=1), base, data, test)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    assert base.head.out_features == S


def test_show_reference_prints_the_recipe(capsys):
    TASK.show_reference()
    out = capsys.readouterr().out
    assert "def reference_solution" in out and "replay_per_class" in out
    assert "def make_solution" in out


@pytest.mark.parametrize("name", ["head_lr", "distill_weight", "lr"])
def test_infinite_rates_and_weights_are_blamed_on_themselves(name):
    data, _ = fake_data()
    model = T.expand_head(tiny_vit(S), N, range(N))
    with pytest.raises(ValueError, match=f"^{name} must be .*finite.*inf"):
        T.train_expanded(model, data, epochs=1, teacher=tiny_vit(S), **{name: float("inf")})


def test_run_solution_trains_on_one_thread_and_restores_it():
    data, test = fake_data()
    seen = []

    def solve(model, data):
        seen.append(torch.get_num_threads())
        return T.expand_head(model, N, range(N))

    torch.set_num_threads(2)
    try:
        T.run_solution(TASK, solve, tiny_vit(S), data, test)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
