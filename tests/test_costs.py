"""The memory model of ftnotes.costs agrees with a real step, term by term, within 10%.

Small copies of the real configs (real widths, 1 and 2 layers, short sequences, batch 2) run a
real forward/backward/AdamW step on the CPU; every setup of the issue (full fine-tuning, LoRA,
a frozen-encoder probe; float32 and bf16 autocast; with and without checkpointing) is checked
at two depths, and the per-layer slope (what extrapolating to 12 or 24 layers relies on) too.
"""

import itertools
import math

import pytest
import torch

from ftnotes.costs import (
    DEVICES,
    GB,
    Setup,
    config,
    estimate,
    measure,
    meta_model,
    step_seconds,
    steps_in,
)

SMALL = {
    "vit-b16": {"image_size": 32},
    "bert-base": {"vocab_size": 1024, "max_position_embeddings": 64},
    "qwen2.5-0.5b": {"vocab_size": 1024, "pad_token_id": 1023},
}
SETUPS = list(itertools.product(SMALL, ("full", "lora", "probe"), ("fp32", "bf16-autocast"), (False, True)))
TERMS = ("weights", "gradients", "optimizer state", "activations")


def close(est, meas, rel=0.10):
    return abs(est - meas) <= rel * max(meas, 1)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name, method, precision, gc", SETUPS, ids=lambda v: str(v))
def test_every_term_within_10_percent_at_two_depths(name, method, precision, gc):
    setup = Setup(method=method, batch_size=2, seq_len=16, precision=precision,
                  gradient_checkpointing=gc)  # fmt: skip
    found = {}
    for depth in (1, 2):
        cfg = config(name, num_hidden_layers=depth, **SMALL[name])
        est, meas = estimate(cfg, setup).terms(), measure(cfg, setup)
        for term in TERMS:
            assert close(est[term], meas[term]), (depth, term, est[term], meas[term])
        found[depth] = (est["activations"], meas["activations"])
    slope_est, slope_meas = found[2][0] - found[1][0], found[2][1] - found[1][1]
    assert close(slope_est, slope_meas), ("per-layer activations", slope_est, slope_meas)


def test_hooks_and_live_storages_agree_without_checkpointing():
    cfg = config("qwen2.5-0.5b", num_hidden_layers=1, **SMALL["qwen2.5-0.5b"])
    m = measure(cfg, Setup(batch_size=2, seq_len=16), track_live=True)
    assert m["saved by autograd"] == m["activations"]
    assert close(m["alive after forward"], m["saved by autograd"], rel=0.01)


@pytest.mark.parametrize("name, params", [("vit-b16", 85.8e6), ("bert-base", 109.5e6),
                                          ("qwen2.5-0.5b", 494.0e6)])  # fmt: skip
def test_real_size_parameter_counts_on_the_meta_device(name, params):
    model = meta_model(config(name))
    est = estimate(model, Setup())
    assert est.params == sum(p.numel() for p in model.parameters())
    assert abs(est.params - params) < 0.01 * params
    assert est.weights == 4 * est.params and est.optimizer == 8 * est.params + 4 * len(list(model.parameters()))


def test_lora_and_probe_train_far_fewer_and_checkpointing_saves_activations():
    model = meta_model(config("qwen2.5-0.5b"))
    full, lora, probe = (estimate(model, Setup(method=m, seq_len=512)) for m in ("full", "lora", "probe"))
    assert probe.trainable < lora.trainable < 0.01 * full.trainable
    gc = estimate(model, Setup(seq_len=512, gradient_checkpointing=True))
    assert gc.activations < 0.2 * full.activations and gc.flops["recompute"] > 0
    # "6 x params x tokens" for full fine-tuning, up to attention and the embedding lookup
    dense = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)
    assert 0.9 < full.step_flops / (6 * dense * full.tokens) < 1.3


def test_t0_3b_against_peft_readme():
    """peft README: T0_3B full fine-tuning 47.14 GB, LoRA 14.4 GB on an A100 (batch not stated)."""
    from transformers import AutoModelForSeq2SeqLM

    model = meta_model(config("t0-3b"), AutoModelForSeq2SeqLM)
    full = estimate(model, Setup(method="full"), states_only=True)
    lora = estimate(model, Setup(method="lora", target_modules=("q", "v")), states_only=True)
    assert full.activations is None  # no symbolic forward for T5: the model states only
    assert 40 < full.model_states / GB < 47.14 and 11 < lora.model_states / GB < 14.4


def test_time_and_bad_input():
    est = estimate(meta_model(config("bert-base")), Setup(seq_len=128, batch_size=32))
    t4 = DEVICES["T4"]
    assert step_seconds(est, t4.peak("fp16-autocast"), 0.4) < step_seconds(est, t4.peak("fp32"), 0.4)
    assert steps_in(600, est, t4.peak("fp32"), 0.4) >= 1
    with pytest.raises(ValueError, match="mfu must be a finite number in"):
        step_seconds(est, 65, 1.5)
    with pytest.raises(ValueError, match="method must be one of"):
        Setup(method="adapters")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        Setup(batch_size=0)
    with pytest.raises(ValueError, match="target_modules must name nn.Linear"):
        estimate(meta_model(config("bert-base")), Setup(method="lora", target_modules=("nope",)))


def test_an_unknown_family_is_refused_naming_the_supported_ones():
    from transformers import GPT2Config

    with pytest.raises(ValueError, match=r"model_type 'gpt2'.*\['bert', 'llama', 'qwen2', 'vit'\].*states_only=True"):
        estimate(GPT2Config(n_layer=2), Setup())
    states = estimate(GPT2Config(n_layer=2), Setup(), states_only=True)
    assert states.model_states > 0 and states.activations is None
    with pytest.raises(ValueError, match="has no activations.*model_states"):
        states.total  # noqa: B018  (a fit check must not see the states alone as the total)
    with pytest.raises(ValueError, match="est must be an Estimate with FLOPs"):
        steps_in(600, states, 65, 0.4)


@pytest.mark.parametrize("seconds, peak, mfu, message", [
    (600, math.inf, 0.4, "peak_tflops must be a finite number > 0, got inf"),
    (600, math.nan, 0.4, "peak_tflops must be a finite number > 0, got nan"),
    (600, 0, 0.4, "peak_tflops must be a finite number > 0, got 0"),
    (-600, 65, 0.4, "seconds must be a finite number >= 0, got -600"),
    (math.inf, 65, 0.4, "seconds must be a finite number >= 0, got inf"),
    (True, 65, 0.4, "seconds must be a finite number >= 0, got True"),
    (600, 65, 0, "mfu must be a finite number in \\(0, 1\\], got 0"),
])  # fmt: skip
def test_steps_in_refuses_bad_numbers(seconds, peak, mfu, message):
    est = estimate(meta_model(config("bert-base")), Setup(seq_len=128, batch_size=32))
    with pytest.raises(ValueError, match=message):
        steps_in(seconds, est, peak, mfu)
    assert steps_in(0, est, 65, 0.4) == 0


@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_checkpointing_must_be_a_bool(value):
    with pytest.raises(ValueError, match=f"gradient_checkpointing must be True or False, got {value!r}"):
        Setup(gradient_checkpointing=value)


def test_sequence_longer_than_the_model_is_refused():
    with pytest.raises(ValueError, match="seq_len must be <= the model's max_position_embeddings \\(512\\), got 513"):
        estimate(config("bert-base"), Setup(seq_len=513))
    estimate(config("bert-base"), Setup(seq_len=512))
    estimate(config("vit-b16"), Setup(seq_len=10_000))  # a ViT sees its patches, whatever seq_len says


def test_negative_sizes_are_refused():
    with pytest.raises(ValueError, match="BertConfig.num_hidden_layers must be an int >= 1, got -1"):
        config("bert-base", num_hidden_layers=-1)
    for field, bad in (("num_hidden_layers", -1), ("hidden_size", 0)):
        cfg = config("qwen2.5-0.5b")
        setattr(cfg, field, bad)  # a config edited after transformers validated it
        with pytest.raises(ValueError, match=f"Qwen2Config.{field} must be an int >= 1, got {bad}"):
            estimate(cfg, Setup())


def test_a_t4_has_no_bf16():
    t4, a100 = DEVICES["T4"], DEVICES["A100-80GB"]
    with pytest.raises(ValueError, match="the T4 has no bf16 tensor cores; use 'fp16-autocast'"):
        t4.peak("bf16-autocast")
    assert t4.peak("fp16-autocast") == 65 and t4.autocast == "fp16-autocast"
    assert a100.peak("bf16-autocast") == a100.peak("fp16-autocast") == 312
    assert a100.autocast == "bf16-autocast"
    bf16, fp16 = (estimate(config("bert-base"), Setup(precision=p)) for p in ("bf16-autocast", "fp16-autocast"))
    assert bf16.terms() == fp16.terms() and bf16.flops == fp16.flops  # the same bytes


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU check runs only where one is present")
@pytest.mark.parametrize("method", ["full", "lora", "probe"])
def test_cuda_peak_memory_matches_the_estimate(method):
    """On a GPU, max_memory_allocated over one step ~ weights + grads + optimizer + activations."""
    cfg = config("bert-base", num_hidden_layers=4)
    setup = Setup(method=method, batch_size=8, seq_len=256, precision="bf16-autocast")
    m, est = measure(cfg, setup, device="cuda"), estimate(cfg, setup)
    for term in TERMS:
        assert close(est.terms()[term], m[term]), (term, est.terms()[term], m[term])
    # the peak also holds the gradients while the optimizer's state is created, and the
    # backward's temporaries: it must lie above the model states and not far above the total
    peak = m["cuda peak - start"] + m["weights"]
    assert est.weights + est.optimizer <= peak <= 1.5 * est.total + 256e6
