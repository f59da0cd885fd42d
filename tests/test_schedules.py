"""Each schedule's shape: warmup starts low, the peak is at the right step, decay ends near 0."""

import pytest
import torch

from ftnotes.schedules import SCHEDULES, make_scheduler, schedule_values, warmup_steps

T = 100


@pytest.mark.parametrize("name", ["warmup_cosine", "warmup_linear", "slanted_triangular"])
def test_warmup_rises_from_near_zero_to_peak_at_step_w(name):
    v = schedule_values(name, T, base_lr=2.0, warmup=0.1)
    assert v[0] < 0.1 * 2.0  # starts near 0, not at the peak
    assert max(range(T), key=v.__getitem__) == 10
    assert v[10] == pytest.approx(2.0)
    assert all(a < b for a, b in zip(v[:10], v[1:11]))  # strictly rising during warmup
    assert all(a >= b for a, b in zip(v[10:], v[11:]))  # never rising after


def test_cosine_and_linear_decay_to_about_zero():
    cos = schedule_values("warmup_cosine", T, warmup=0.1)
    lin = schedule_values("warmup_linear", T, warmup=0.1)
    assert cos[-1] < 1e-3 and lin[-1] < 0.02
    assert cos[55] == pytest.approx(0.5, abs=0.02)  # half way through the cosine part
    assert lin[55] == pytest.approx(0.5, abs=0.02)


def test_slanted_triangular_matches_ulmfit_formula():
    v = schedule_values("slanted_triangular", T, base_lr=1.0, ratio=32)
    assert v[0] == pytest.approx(1 / 32)  # lr_max / ratio at t = 0 (Howard & Ruder 2018, Eq. 3)
    cut = 10
    p = 1 - (50 - cut) / (cut * (1 / 0.1 - 1))
    assert v[50] == pytest.approx((1 + p * 31) / 32)


def test_constant_and_one_cycle():
    assert schedule_values("constant", 20, base_lr=0.3) == pytest.approx([0.3] * 20)
    oc = schedule_values("one_cycle", T, warmup=0.3)
    assert oc[0] < 0.1 and max(oc) == pytest.approx(1.0) and oc[-1] < 1e-3
    assert 25 <= max(range(T), key=oc.__getitem__) <= 30


def test_no_warmup_starts_at_peak():
    assert schedule_values("warmup_cosine", 10, warmup=0)[0] == 1.0
    assert warmup_steps(5, 10) == 5 and warmup_steps(0.25, 20) == 5


def test_group_ratios_are_kept():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.25}])
    for name in SCHEDULES:
        opt = torch.optim.AdamW([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.25}])
        s = make_scheduler(name, opt, 30)
        for _ in range(7):
            opt.step()
            s.step()
        lrs = [g["lr"] for g in opt.param_groups]
        assert lrs[1] == pytest.approx(0.25 * lrs[0]), name


def test_bad_arguments():
    with pytest.raises(ValueError, match="warmup_cosine"):  # the message lists the known names
        schedule_values("cosine", 10)
    with pytest.raises(ValueError, match="total_steps"):
        schedule_values("constant", 0)
    with pytest.raises(ValueError, match="warmup"):
        schedule_values("warmup_cosine", 10, warmup=1.5)
    with pytest.raises(ValueError, match="warmup"):
        schedule_values("warmup_cosine", 10, warmup=10)
    with pytest.raises(ValueError, match="warmup"):
        schedule_values("one_cycle", 10, warmup=0)
    with pytest.raises(ValueError, match="base_lr"):
        schedule_values("constant", 10, base_lr=0)
    with pytest.raises(ValueError, match="cut_frac"):
        schedule_values("slanted_triangular", 10, cut_frac=0)
    with pytest.raises(ValueError, match="no extra options"):
        schedule_values("warmup_cosine", 10, ratio=3)
    with pytest.raises(ValueError, match="ratio"):
        schedule_values("slanted_triangular", 10, ratio=0.5)


def test_every_panel_setting_of_notebook05_runs():
    # notebook 05's schedule panel: total_steps 20..1000 (step 20), warmup 0.01..0.5 (step 0.01)
    from ftnotes.schedules import SCHEDULES, schedule_values

    # the crashes were one_cycle with a warmup that rounds to 0 or 1 step: every such pair
    pairs = [(t, w / 100) for t in range(20, 201, 20) for w in range(1, 11) if round(w * t / 100) <= 1]
    pairs += [(t, w) for t in (20, 100, 1000) for w in (0.01, 0.1, 0.5)]
    for total, warmup in pairs:
        for name in SCHEDULES:
            values = schedule_values(name, total, warmup=warmup)
            assert len(values) == total and all(v >= 0 for v in values), (name, total, warmup)


def test_small_warmup_is_not_rounded_away_and_one_cycle_edges():
    from ftnotes.schedules import schedule_values, warmup_steps

    assert warmup_steps(0.01, 20) == 1 and warmup_steps(0.0, 20) == 0
    values = schedule_values("warmup_cosine", 20, warmup=0.01)
    assert values[0] < values[1] == max(values)  # one warmup step, then the peak
    values = schedule_values("one_cycle", 20, warmup=0.01)  # ZeroDivisionError before
    assert max(values) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs warmup > 0.*got 0.0"):
        schedule_values("one_cycle", 20, warmup=0.0)
    with pytest.raises(ValueError, match="total_steps >= 3"):
        schedule_values("one_cycle", 2, warmup=0.5)


# --- the closed-form warmup-cosine of the shipped weights (pretrain, pretrain_lm, lm.sft) ---


def _shipped_formula(step, total, warmup):
    """ftnotes.pretrain.warmup_cosine as it was when the shipped TinyViT and tiny LM were made."""
    import math

    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _shipped_step_counts():
    """(total, warmup) of every run behind the shipped files and notebook 08's numbers."""
    import math

    from ftnotes.data import load_task

    digits_steps = math.ceil(len(load_task("digits").train) / 20)  # finetune_digits, batch 20
    runs = [
        (8 * math.ceil((40_000 + 48_000) / 128), 0.05),  # pretrain: glyphs + handwriting
        (8 * math.ceil(40_000 / 128), 0.05),  # pretrain --handwriting 0 (data/printed/)
        (60 * 5, 0.1),  # transfer_report: 10 labels per class, 60 epochs
        (20 * digits_steps, 0.1),  # distance_report: whole split, 20 epochs
    ]
    out = [(t, max(1, int(frac * t))) for t, frac in runs]
    return out + [(6000, 200), (100, 10)]  # pretrain_lm; notebook 08 / lm_bench (min(10, 100))


def test_warmup_cosine_is_the_shipped_formula_at_every_step():
    from ftnotes.schedules import warmup_cosine

    for total, warmup in _shipped_step_counts():
        for step in range(total + 1):
            assert warmup_cosine(step, total, warmup) == _shipped_formula(step, total, warmup)


def test_warmup_cosine_scheduler_gives_the_shipped_rates():
    from ftnotes.schedules import warmup_cosine_scheduler

    def rates(make, total=6000):
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
        sched, out = make(opt), []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    old = rates(lambda o: torch.optim.lr_scheduler.LambdaLR(
        o, lambda s: _shipped_formula(s, 6000, 200)))  # fmt: skip
    assert rates(lambda o: warmup_cosine_scheduler(o, 6000, 200)) == old
    assert old[199] == 3e-3 and old[-1] < 1e-9
