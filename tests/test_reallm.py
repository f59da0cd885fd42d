"""ftnotes.reallm without the SmolLM2 folder: the task's prompts and answers, the answer-only
batch and loss (equal to TRL's on a tiny Llama), the SFT config, the methods' runner on a tiny
model, forgetting, generation order, and the bench's argument checks."""

import math
import warnings
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ftnotes.exercises.nb11 import chat_tokenizer
from ftnotes.reallm import forgetting, methods, sft, task
from ftnotes.reallm.model import generate

TOK = chat_tokenizer("chatml")


def tiny_model(seed=0, layers=2):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(TOK), hidden_size=32, intermediate_size=48,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=True,
                      pad_token_id=TOK.pad_token_id, eos_token_id=TOK.eos_token_id)  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


EXAMPLES = [task.Example("a domesticated carnivorous mammal", "animal"),
            task.Example("a tall perennial woody plant", "plant"),
            task.Example("a baked food", "food")]  # fmt: skip


def test_the_prompt_ends_with_the_prefill_inside_the_assistant_turn():
    text = task.prompt(TOK, EXAMPLES[0])
    assert text.endswith("<|im_start|>assistant\n" + task.PREFILL)
    assert task.system_prompt() in text and EXAMPLES[0].definition in text
    assert task.completion(EXAMPLES[0]) == " animal"
    few = task.messages("x", shots=EXAMPLES[:2])
    assert [m["role"] for m in few] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert few[2]["content"] == f"{task.PREFILL} animal"


@pytest.mark.parametrize("text, answer", [(" animal", "animal"), (" Plant.", "plant"),
                                          ("  food, mostly", "food"), ("", ""), (" \n", "")])  # fmt: skip
def test_parse_takes_the_first_word(text, answer):
    assert task.parse(text) == answer


def test_accuracy_and_its_refusals():
    assert task.accuracy(["animal", "food", "food"], EXAMPLES) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="non-empty and of equal length, got 1 and 3"):
        task.accuracy(["animal"], EXAMPLES)


def test_examples_are_balanced_and_interleaved():
    ex = task.load_examples("train", per_class=3, seed=1)
    assert len(ex) == 18 and [e.category for e in ex[:6]] == list(task.CATEGORIES)
    assert task.load_examples("train", per_class=3, seed=1) == ex  # fixed by the seed
    assert task.load_examples("train", per_class=3, seed=2) != ex


def test_answer_only_batch_keeps_the_eos_although_pad_is_eos():
    rows = task.prompt_completion(TOK, EXAMPLES)
    batch = sft.answer_only_batch(TOK, rows)
    eos = TOK.eos_token_id
    assert TOK.pad_token_id == eos
    for i, row in enumerate(rows):
        n_prompt = len(TOK(row["prompt"], add_special_tokens=False)["input_ids"])
        n_real = int(batch["attention_mask"][i].sum())
        labels = batch["labels"][i]
        assert (labels[:n_prompt] == -100).all() and (labels[n_real:] == -100).all()
        assert labels[n_real - 1] == eos and (labels[n_prompt:n_real] != -100).all()
    with pytest.raises(ValueError, match="rows must not be empty"):
        sft.answer_only_batch(TOK, [])
    with pytest.raises(ValueError, match=r"rows\[0\] must be a dict with 'prompt' and 'completion'"):
        sft.answer_only_batch(TOK, [{"prompt": "x"}])


def test_the_typed_out_loss_is_the_models_loss():
    model = tiny_model()
    batch = sft.answer_only_batch(TOK, task.prompt_completion(TOK, EXAMPLES))
    with torch.no_grad():
        out = model(**batch)
    torch.testing.assert_close(sft.answer_only_loss(out.logits, batch["labels"]), out.loss)


def test_trl_prepares_the_same_labels_and_computes_the_same_loss(tmp_path):
    model = tiny_model().double()
    rows = task.prompt_completion(TOK, EXAMPLES)
    config = sft.sft_config(1, 1e-3, batch_size=3, device="cpu", output_dir=str(tmp_path))
    trainer = sft.make_trainer(model, TOK, rows, config)
    batch = sft.trl_batch(trainer, 3)
    ours = sft.answer_only_batch(TOK, rows)
    assert all(torch.equal(batch[k], ours[k]) for k in ours)
    with torch.no_grad():
        mine = sft.answer_only_loss(model(**{k: batch[k] for k in ("input_ids", "attention_mask")}).logits,
                                    batch["labels"])  # fmt: skip
    assert abs(mine.item() - sft.trl_loss(trainer, batch).item()) <= 1e-6


def test_sft_config_switches_off_bf16_and_checkpointing_on_a_cpu(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated argument names
        config = sft.sft_config(4, 2e-3, device="cpu", output_dir=str(tmp_path))
    assert not config.bf16 and not config.activation_checkpointing and config.use_cpu
    assert config.completion_only_loss and config.max_steps == 4 and config.save_strategy == "no"
    for kw, message in ((dict(steps=0, lr=1e-3), "steps must be an int >= 1"),
                        (dict(steps=2, lr=math.inf), "lr must be a finite number > 0"),
                        (dict(steps=2, lr=1e-3, batch_size=0), "batch_size must be an int >= 1")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            sft.sft_config(**kw)


def test_runs_without_an_output_dir_share_one_scratch_folder():
    import tempfile

    from ftnotes.utils import scratch_dir

    def ours():
        return {p.name for p in Path(tempfile.gettempdir()).iterdir() if "ftnotes" in p.name}

    first = sft.sft_config(2, 1e-3, device="cpu").output_dir
    before = ours()
    again = sft.sft_config(2, 1e-3, device="cpu").output_dir
    assert first == again == scratch_dir() and Path(first).is_dir()
    assert ours() == before  # no new folder per run, as mkdtemp left behind every training


def test_freeze_except_top_trains_the_last_layers_and_the_norm():
    model = tiny_model(layers=3)
    names = methods.freeze_except_top(model, 1)
    assert names and all(n.startswith(("model.layers.2.", "model.norm.")) for n in names)
    assert not model.model.embed_tokens.weight.requires_grad
    with pytest.raises(ValueError, match=r"top_k must be <= 3 \(the model's layers\), got 4"):
        methods.freeze_except_top(model, 4)


@pytest.mark.parametrize("method", methods.METHODS)
def test_a_run_trains_a_copy_and_measures_it(method, monkeypatch):
    monkeypatch.setattr(forgetting, "INSTRUCTIONS", forgetting.INSTRUCTIONS[:2])
    base = tiny_model()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    trainer, rec = methods.run(method, base, TOK, EXAMPLES, EXAMPLES[:2], steps=2, lr=1e-2,
                               r=2, top_k=1, batch_size=3, device="cpu")  # fmt: skip
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())  # base untouched
    assert 0 <= rec.accuracy <= 1 and math.isfinite(rec.loglik) and rec.loglik < 0
    assert rec.trainable == sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert (method == "top_layers") != hasattr(trainer.model, "peft_config")
    with pytest.raises(ValueError, match="method must be one of"):
        methods.train("full", base, TOK, [])


def test_generate_returns_answers_in_the_order_given():
    model = tiny_model()
    chats = [task.messages(e.definition) for e in EXAMPLES * 2]
    together = generate(model, TOK, chats, max_new_tokens=3, prefill=task.PREFILL, batch_size=4)
    alone = [generate(model, TOK, [c], max_new_tokens=3, prefill=task.PREFILL)[0] for c in chats]
    assert together == alone


@pytest.mark.parametrize("argv, message", [
    (["--json", "FILE/x.json"], "is not a folder"),
    (["--seeds", "0"], "--seeds: must be an int >= 1, got '0'"),
    (["--methods", ","], "--methods"),
    (["--methods", "full"], "unknown"),
    (["--lr", "lora_all=inf"], "finite number > 0"),
    (["--lr", "lora_all"], "expected METHOD=RATE"),
    (["--threads", "0"], "--threads: torch threads must be an int from 1 to this machine's"),
    (["--shots", "-1"], "--shots: must be an int >= 0, got '-1'"),
    (["--steps", "2.5"], "--steps: must be an int >= 1, got '2.5'"),
])  # fmt: skip
def test_bench_refuses_bad_arguments_before_loading(argv, message, monkeypatch, capsys, tmp_path):
    from ftnotes import reallm_bench

    (tmp_path / "FILE").write_text("a file, not a folder")
    argv = [a.replace("FILE", str(tmp_path / "FILE")) for a in argv]
    monkeypatch.setattr(reallm_bench, "bench", lambda *a, **k: pytest.fail("the bench started"))
    with pytest.raises(SystemExit) as err:
        reallm_bench.main(argv)
    assert err.value.code == 2 and message in capsys.readouterr().err


def test_answer_logprobs_scores_only_the_labelled_positions_and_equals_the_full_softmax():
    model = tiny_model()
    rows = task.prompt_completion(TOK, EXAMPLES)
    batch = sft.answer_only_batch(TOK, rows)
    got = sft.answer_logprobs(model, batch)
    with torch.no_grad():  # the whole vocabulary at every position, then the labelled tokens
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    full = torch.log_softmax(logits[:, :-1], -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    assert got.shape == labels.shape
    assert torch.allclose(got, full * (labels != -100), atol=1e-5)
    assert (got[labels == -100] == 0).all() and (got[labels != -100] < 0).all()
