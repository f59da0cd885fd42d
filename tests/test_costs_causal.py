"""ftnotes.costs for causal LMs (Llama, Qwen2 with an LM head and the causal-LM loss): the
estimate agrees with a real step term by term within 10%, at two depths, and the LM head's
logits are counted."""

import itertools

import pytest
import torch
from transformers import AutoModelForCausalLM

from ftnotes.costs import GB, Setup, config, estimate, measure, meta_model

SMALL = {
    "qwen2.5-0.5b": {"vocab_size": 1024, "pad_token_id": 1023},
    "smollm2-135m": {"vocab_size": 1024, "pad_token_id": 1023},
}
SETUPS = list(itertools.product(SMALL, ("full", "lora"), ("fp32", "bf16-autocast"), (False, True)))
TERMS = ("weights", "gradients", "optimizer state", "activations")


def close(est, meas, rel=0.10):
    return abs(est - meas) <= rel * max(meas, 1)


@pytest.mark.parametrize("name, method, precision, gc", SETUPS, ids=lambda v: str(v))
def test_causal_lm_terms_within_10_percent_at_two_depths(name, method, precision, gc):
    setup = Setup(method=method, batch_size=2, seq_len=16, precision=precision,
                  gradient_checkpointing=gc)  # fmt: skip
    for depth in (1, 2):
        cfg = config(name, num_hidden_layers=depth, **SMALL[name])
        est = estimate(meta_model(cfg, AutoModelForCausalLM), setup).terms()
        meas = measure(cfg, setup, causal=True)
        for term in TERMS:
            assert close(est[term], meas[term]), (depth, term, est[term], meas[term])


def test_the_lm_heads_logits_are_counted_and_dominate_with_checkpointing():
    model = meta_model(config("qwen2.5-0.5b"), AutoModelForCausalLM)
    logits = 32 * 256 * 151_936 * 4  # one float32 copy, kept by the loss's log-softmax
    assert logits / GB == pytest.approx(4.98, abs=0.01)
    plain = estimate(model, Setup(method="lora", batch_size=32, seq_len=256))
    ckpt = estimate(model, Setup(method="lora", batch_size=32, seq_len=256,
                                 gradient_checkpointing=True))  # fmt: skip
    assert plain.activations > logits > plain.activations / 5  # a quarter without checkpointing
    assert ckpt.activations > logits > ckpt.activations / 2  # most of what checkpointing keeps


def test_smollm2_counts_and_a_probe_is_refused():
    model = meta_model(config("smollm2-135m"), AutoModelForCausalLM)
    est = estimate(model, Setup(method="full"))
    assert est.params == 134_515_008 == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="method='probe' .* causal LM has none"):
        estimate(model, Setup(method="probe"))
    with pytest.raises(ValueError, match="name must be one of"):
        config("smollm3")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
