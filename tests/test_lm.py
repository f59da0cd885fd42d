"""The tiny language model: corpus, tokenizer and chat template, label mask, the shipped folder's
integrity check, bad input, and prompt tuning typed out = peft's. Tiny models, seconds."""

import json
import shutil

import peft
import pytest
import torch
from transformers import AutoTokenizer

from ftnotes.checkpoints import WeightsError
from ftnotes.lm import corpus, methods, sft
from ftnotes.lm import model as lm
from ftnotes.lm.corpus import Example


@pytest.fixture(scope="module")
def tok():
    return lm.build_tokenizer()


@pytest.fixture(scope="module")
def tiny():
    return lm.new_model(0, num_hidden_layers=1, hidden_size=32, intermediate_size=64)


# ---- corpus ----------------------------------------------------------------------------------


def test_corpus_excludes_the_target_by_construction():
    assert corpus.TARGET_SKILL not in corpus.SOURCE_SKILLS
    for phrasings in corpus.PHRASINGS.values():
        assert all(corpus.TARGET_WORD not in p for p in phrasings)
    stream = corpus.source_stream(20_000, seed=0)
    corpus.assert_no_target(stream)  # no prompt says mirror, no answer is s + reversed(s)
    assert {e.skill for e in stream} == set(corpus.SOURCE_SKILLS)
    share = sum(e.skill == "add" for e in stream) / len(stream)  # MIX: add has 2 of 6 shares
    assert share == pytest.approx(corpus.MIX["add"] / sum(corpus.MIX.values()), abs=0.02)
    # the detector does detect the target skill, also when it is phrased without the word
    mirror = corpus.draw("mirror", 5, seed=0)
    assert all(corpus.is_target_like(e) for e in mirror)
    assert corpus.is_target_like(Example("copy", "do kqe", "kqeeqk"))
    with pytest.raises(AssertionError, match="teach the target skill"):
        corpus.assert_no_target(stream[:10] + mirror[:1])


def test_held_out_and_target_splits_are_disjoint_and_seeded():
    held = corpus.held_out(50)
    prompts = {e.prompt for exs in held.values() for e in exs}
    stream = corpus.source_stream(5_000, seed=0, exclude=prompts)
    assert not prompts & {e.prompt for e in stream}
    assert corpus.source_stream(100, seed=3) == corpus.source_stream(100, seed=3)
    assert corpus.source_stream(100, seed=3) != corpus.source_stream(100, seed=4)
    train, test = corpus.target_split(200, 100, seed=1)
    assert len({e.prompt for e in train} | {e.prompt for e in test}) == 300
    assert corpus.target_split(10, 100, seed=2)[1] == test  # one test set for every seed
    ex = train[0]
    s = ex.prompt.split()[1]
    assert ex.answer == s + s[::-1]


def test_corpus_answers_are_right():
    rng = __import__("random").Random(0)
    for _ in range(200):
        ex = corpus.make_example("count", rng)
        words = ex.prompt.split()
        c, s = words[words.index("in") - 1], words[-1]
        assert ex.answer == str(s.count(c))
    with pytest.raises(ValueError, match="skill must be one of"):
        corpus.make_example("sort", rng)


# ---- tokenizer and chat template ---------------------------------------------------------------


def test_tokenizer_round_trip_through_a_folder(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    text = "how many a in abca"
    for t in (tok, again):
        ids = t(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(text)  # one token per character, spaces kept
        assert t.decode(ids) == text
    assert again.pad_token_id == 0 and again.eos_token == lm.END
    assert again.padding_side == "left"


def test_chat_template_matches_prompt_text(tok):
    msgs = [{"role": "user", "content": "reverse abc"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == sft.prompt_text("reverse abc") == "<|user|>reverse abc<|end|><|assistant|>"
    full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": "cba"}], tokenize=False)
    assert full == "<|user|>reverse abc<|end|><|assistant|>cba<|end|>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids(lm.USER) and len(ids) == 3 + len("reverse abc")


# ---- the label mask ----------------------------------------------------------------------------


def test_labels_are_ignored_on_the_prompt_and_padding(tok):
    exs = [Example("mirror", "mirror ab", "abba"), Example("copy", "copy abcdef", "abcdef")]
    batch = sft.encode_examples(tok, exs)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape == labels.shape == mask.shape == (2, 3 + 11 + 7)
    for i, ex in enumerate(exs):
        n_prompt = 3 + len(ex.prompt)
        kept = labels[i] != sft.IGNORE
        assert kept.sum() == len(ex.answer) + 1  # the answer and its <|end|>
        assert not kept[:n_prompt].any() and torch.equal(labels[i][kept], ids[i][kept])
        assert tok.decode(ids[i][kept]) == ex.answer + lm.END
    assert mask[0].sum() == 3 + 9 + 5 and (ids[0][mask[0] == 0] == tok.pad_token_id).all()
    unmasked = sft.encode_examples(tok, exs, mask_prompt=False)["labels"]
    assert torch.equal(unmasked != sft.IGNORE, mask.bool())


# ---- bad input -------------------------------------------------------------------------------


def test_unknown_special_token_and_character_are_clear_errors(tok):
    with pytest.raises(ValueError, match=r"prompts\[1\].*'<\|system\|>'.*allowed special tokens"):
        sft.encode_prompts(tok, ["copy ab", "<|system|>copy ab"])
    with pytest.raises(ValueError, match=r"prompts\[0\].*\['A', 'B'\].*allowed characters"):
        sft.encode_prompts(tok, ["copy AB"])
    with pytest.raises(ValueError, match="examples\\[0\\].answer"):
        sft.encode_examples(tok, [Example("copy", "copy ab", "a.b")])
    with pytest.raises(ValueError, match="list of str"):
        sft.encode_prompts(tok, "copy ab")
    with pytest.raises(ValueError, match="prompts must not be empty"):
        sft.encode_prompts(tok, [])  # was an IndexError inside the tokenizer


def test_too_long_prompt_names_the_context(tok, tiny):
    long = "copy " + "a" * 70
    with pytest.raises(ValueError, match=r"prompts\[0\] is 78 tokens.*max_new_tokens=5.*context"):
        sft.encode_prompts(tok, [long], max_new_tokens=5, model=tiny)
    with pytest.raises(ValueError, match=r"is 80 tokens long, more than the model's context \(max_position_embeddings\) of 64"):
        sft.encode_examples(tok, [Example("copy", long, "a")], model=tiny)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sft.generate_answers(tiny, tok, ["copy ab"], max_new_tokens=0)


@pytest.mark.parametrize("config", [
    peft.PromptTuningConfig(num_virtual_tokens=8, task_type="CAUSAL_LM"),
    peft.PrefixTuningConfig(num_virtual_tokens=8, task_type="CAUSAL_LM", encoder_hidden_size=32),
], ids=["prompt", "prefix"])  # fmt: skip
def test_virtual_tokens_count_against_the_context(tok, config):
    # 8 virtual tokens + a 48-token prompt + 14 new tokens = 70 positions on a 64-position model
    model = methods.wrap(lm.new_model(0, num_hidden_layers=1, hidden_size=32), config)
    prompt = "copy " + "a" * 40  # the chat template adds 3 tokens: 48
    assert len(tok(sft.prompt_text(prompt), add_special_tokens=False)["input_ids"]) == 48
    assert sft.virtual_tokens(model) == 8 and sft.virtual_tokens(model.get_base_model()) == 0
    said = (r"prompts\[0\] is 48 tokens and max_new_tokens=14: together 62, more than the model's "
            r"context \(max_position_embeddings\) of 64 positions less its 8 virtual tokens: 56")  # fmt: skip
    with pytest.raises(ValueError, match=said):
        sft.encode_prompts(tok, [prompt], max_new_tokens=14, model=model)
    with pytest.raises(ValueError, match=said):
        sft.generate_answers(model, tok, [prompt], max_new_tokens=14)
    sft.encode_prompts(tok, [prompt], max_new_tokens=14, model=model.get_base_model())  # 62 <= 64
    assert len(sft.generate_answers(model, tok, [prompt], max_new_tokens=8)) == 1  # 8 + 48 + 8 = 64
    with pytest.raises(ValueError, match="examples\\[0\\] is 58 tokens long, more than .* less its 8 virtual tokens: 56"):
        sft.encode_examples(tok, [Example("copy", prompt, "a" * 9)], model=model)


@pytest.mark.parametrize("bad", [-1, 0, 1.5, True])
def test_generate_answers_refuses_a_bad_batch_size(tok, tiny, bad):
    with pytest.raises(ValueError, match=f"batch_size must be an int >= 1, got {bad!r}"):
        sft.generate_answers(tiny, tok, ["copy ab"], batch_size=bad)


def test_encode_examples_refuses_an_empty_list_before_tokenizing(tok):
    for empty in ([], (), iter([])):
        with pytest.raises(ValueError, match="examples must not be empty"):
            sft.encode_examples(tok, empty)


def test_encode_prompts_refuses_negative_new_tokens(tok, tiny):
    prompt = "copy " + "a" * 80  # 88 tokens: longer than the 64-position model by itself
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 0, got -100"):
        sft.encode_prompts(tok, [prompt], max_new_tokens=-100, model=tiny)
    with pytest.raises(ValueError, match="prompts\\[0\\] is 88 tokens and max_new_tokens=0"):
        sft.encode_prompts(tok, [prompt], max_new_tokens=0, model=tiny)


def test_prefix_tuning_reaches_the_forward(tok):
    """peft's prefix tuning hands its prefix to the model as ``past_key_values``, a keyword
    transformers 5 deprecates (removal announced for 5.40; sft.py hides that FutureWarning).
    If the prefix stopped reaching the model (as it already does in ``generate``), the
    prefix-tuned forward would equal the base model's: pyproject.toml keeps transformers < 5.40,
    and this test is what says the range still holds."""
    config = peft.PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM", encoder_hidden_size=32)
    base = lm.new_model(0, num_hidden_layers=2, hidden_size=32)
    model = methods.wrap(lm.new_model(0, num_hidden_layers=2, hidden_size=32), config)
    batch = sft.encode_examples(tok, [Example("copy", "copy abc", "abc")])
    with torch.no_grad():
        plain, prefixed = base(**batch), model(**batch)
        model.prompt_encoder["default"].embedding.weight.zero_()  # keys and values of 0
        zeroed = model(**batch)
    assert (prefixed.logits - plain.logits).abs().max() > 1e-2
    assert (zeroed.logits - prefixed.logits).abs().max() > 1e-3  # it is the prefix that acts
    assert prefixed.loss != plain.loss


@pytest.mark.parametrize("method", ["lora", "prompt", "prefix"])
@pytest.mark.parametrize("size", [0, -8, 2.0])
def test_adapter_size_must_be_positive(method, size):
    # peft takes r=0 and num_virtual_tokens=0 and fails later, inside the model
    with pytest.raises(ValueError, match=f"size must be an int >= 1, got {size!r}"):
        methods.peft_config(method, size)


def test_peft_target_that_does_not_exist_names_the_real_modules(tiny):
    config = peft.LoraConfig(r=2, target_modules=["query", "value"], task_type="CAUSAL_LM")
    with pytest.raises(ValueError, match=r"\['query', 'value'\].*q_proj.*v_proj"):
        methods.wrap(lm.new_model(0, num_hidden_layers=1, hidden_size=32), config)
    with pytest.raises(ValueError, match="method must be one of"):
        methods.make("ia3", tiny)


# ---- the shipped folder and its check ----------------------------------------------------------


def _folder(tmp_path, tok):
    """A freshly initialised model of the declared architecture, saved with a manifest."""
    folder = tmp_path / lm.LM_DIR_NAME
    files = lm.save_lm(lm.new_model(0), tok, folder)
    manifest = {**lm.load_lm_manifest(), "files": files}  # the shipped record, these files
    (tmp_path / lm.MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def test_integrity_check_names_the_file_and_the_regenerate_command(tmp_path, tok):
    folder = _folder(tmp_path, tok)
    model, again = lm.load_pretrained_lm(folder)
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    assert again.get_vocab() == tok.get_vocab()
    with open(folder / "model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\1")
    with pytest.raises(WeightsError, match=r"model.safetensors: corrupt.*python -m ftnotes.pretrain_lm"):
        lm.load_pretrained_lm(folder)
    folder = _folder(tmp_path, tok)  # intact again
    (folder / "tokenizer.json").unlink()
    with pytest.raises(WeightsError, match="tokenizer.json: missing"):
        lm.verify_lm(folder)
    shutil.rmtree(folder)
    with pytest.raises(WeightsError, match="tiny-lm: missing .*folder.*pretrain_lm"):
        lm.verify_lm(folder)
    (tmp_path / lm.MANIFEST_NAME).unlink()
    folder.mkdir()
    with pytest.raises(WeightsError, match="tiny-lm.json: the manifest is missing"):
        lm.verify_lm(folder)


def test_the_shipped_folder_verifies_and_records_its_accuracies():
    folder = lm.verify_lm()
    manifest = lm.load_lm_manifest()
    assert set(manifest["files"]) == set(lm.LM_FILES)
    assert set(manifest["source_exact_match"]) == set(corpus.SOURCE_SKILLS)
    assert manifest["target_skill"] == corpus.TARGET_SKILL
    assert "python -m ftnotes.pretrain_lm" in manifest["command"]
    assert min(manifest["source_exact_match"].values()) >= 0.95  # issue 17: every source skill
    assert sum(f.stat().st_size for f in folder.iterdir()) < 10e6


# ---- generation and prompt tuning by hand --------------------------------------------------------


def test_generate_and_exact_match(tok, tiny):
    answers = sft.generate_answers(tiny, tok, ["copy ab", "reverse abcd"], max_new_tokens=4)
    assert len(answers) == 2 and all(isinstance(a, str) and len(a) <= 4 for a in answers)
    assert sft.exact_match([" ab", "x"], ["ab", "y"]) == 0.5
    with pytest.raises(ValueError, match="equal length"):
        sft.exact_match(["a"], ["a", "b"])


def test_prompt_tuning_typed_out_equals_peft(tok, tiny):
    model = methods.wrap(lm.new_model(0, num_hidden_layers=1, hidden_size=32),
                         peft.PromptTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"))  # fmt: skip
    prompt = model.prompt_encoder["default"].embedding.weight  # (3, 32), the trainable part
    with torch.no_grad():
        prompt.normal_()
    batch = sft.encode_examples(tok, [Example("m", "mirror ab", "abba"),
                                      Example("m", "mirror abc", "abccba")])  # fmt: skip
    ours = methods.prompt_tuning_forward(model.get_base_model(), prompt, **batch)
    theirs = model(**batch)
    torch.testing.assert_close(ours.logits, theirs.logits)
    torch.testing.assert_close(ours.loss, theirs.loss)


@pytest.mark.parametrize("config", [
    peft.PromptTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"),
    peft.PrefixTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM", encoder_hidden_size=32),
], ids=["prompt", "prefix"])  # fmt: skip
def test_generation_of_prompt_learning_follows_the_forward_pass(tok, config):
    # peft 0.21 + transformers 5: generate() drops a prefix; we decode with a cache and position
    # ids of our own. Reference: each prompt alone, no padding, a full forward pass per token.
    model = methods.wrap(lm.new_model(0, num_hidden_layers=1, hidden_size=32), config)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_()
    prompts = ["copy ab", "reverse abcde", "3+4", "copy abcdefghij"]  # four lengths
    got = sft.generate_answers(model, tok, prompts, max_new_tokens=5)
    for prompt, answer in zip(prompts, got):
        ids = tok(sft.prompt_text(prompt), add_special_tokens=False, return_tensors="pt")["input_ids"]
        new = []
        with torch.no_grad():
            while len(new) < 5 and tok.eos_token_id not in new:
                new.append(model(input_ids=ids).logits[0, -1].argmax().item())
                ids = torch.cat([ids, torch.tensor([[new[-1]]])], 1)
        want = new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
        assert answer == tok.decode(want, skip_special_tokens=True), prompt


@pytest.mark.parametrize("config", [
    None, peft.PromptTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"),
], ids=["plain", "prompt"])  # fmt: skip
def test_no_prompts_get_no_answers(tok, config):
    model = lm.new_model(0, num_hidden_layers=1, hidden_size=32)
    model = methods.wrap(model, config) if config else model
    assert sft.generate_answers(model, tok, []) == []


@pytest.mark.slow
def test_pretraining_is_deterministic_from_the_seed(tmp_path):
    from ftnotes import pretrain_lm

    for name in ("a", "b"):
        assert pretrain_lm.main(["--steps", "20", "--out", str(tmp_path / name)]) == 0
    files = [json.loads((tmp_path / n / lm.MANIFEST_NAME).read_text())["files"] for n in "ab"]
    assert files[0] == files[1]
    manifest = json.loads((tmp_path / "a" / lm.MANIFEST_NAME).read_text())
    assert manifest["command"] == "python -m ftnotes.pretrain_lm --steps 20 --out " + str(tmp_path / "a")
    lm.verify_lm(tmp_path / "a" / lm.LM_DIR_NAME)


def test_lm_bench_refuses_a_bad_learning_rate_override(capsys):
    from ftnotes import lm_bench

    for bad in ("fulll=1e-3", "full=fast", "full=-1", "full=inf", "full=nan", "full=0"):
        with pytest.raises(SystemExit) as exit_:
            lm_bench.main(["--lr", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"argument --lr: {bad!r}" in err and "RATE a finite number > 0" in err


def test_lm_bench_checks_its_json_path_first_and_writes_it_whole(tmp_path, capsys, monkeypatch):
    from ftnotes import lm_bench

    ran = []
    result = {"source_before": {"copy": 1.0}, "runs": [], "seeds": 0, "n_train": 1, "steps": 1,
              "lr": {}}  # fmt: skip
    monkeypatch.setattr(lm_bench, "bench", lambda *a, **k: ran.append(1) or result)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_:
        lm_bench.main(["--json", str(blocker / "out.json")])
    assert exit_.value.code == 2 and "--json" in capsys.readouterr().err and not ran
    out = tmp_path / "out.json"
    assert lm_bench.main(["--json", str(out)]) == 0 and ran == [1]
    assert json.loads(out.read_text())["summary"] == [] and out.read_text().endswith("}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "out.json"]  # no temp left


def test_training_batches_do_not_depend_on_an_earlier_padded_call(tok):
    # a padded tokenizer call (generation's) leaves padding on in the Rust tokenizer: encoding
    # through it directly once made every later training batch left-padded garbage
    exs = corpus.draw("mirror", 8, seed=0) + corpus.draw("copy", 8, seed=0)
    before = sft.encode_examples(tok, exs)
    sft.encode_prompts(tok, [e.prompt for e in exs])
    after = sft.encode_examples(tok, exs)
    assert all(torch.equal(before[k], after[k]) for k in before)
