"""The encoder's loader, pooling, tokenization and the classifier's checks (notebook 10)."""

import shutil

import pytest
import torch

from ftnotes.artifacts import MODELS, WeightsError
from ftnotes.text import encoder as enc
from ftnotes.text import finetune

ENV = MODELS[enc.NAME].env  # the registry's variable, the one override
HAVE_MODEL = True
try:
    enc.model_dir(verify=False)
except WeightsError:
    HAVE_MODEL = False
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="all-MiniLM-L6-v2 not obtained")
# the command a missing or damaged folder names, in a clone: `make models` or the obtain call
COMMAND = r"Fix: `make models` or `python -m ftnotes\.obtain minilm`"


@pytest.fixture(scope="module")
def loaded():
    return enc.load_encoder()


def test_missing_folder_names_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "nowhere"))
    for call in (enc.load_encoder, enc.model_dir, lambda: enc.model_dir(verify=False)):
        with pytest.raises(WeightsError, match=f"nowhere: missing.*{COMMAND}") as err:
            call()
        assert err.value.file == tmp_path / "nowhere"


@needs_model
def test_damaged_folder_names_the_file_and_the_setup_command(tmp_path):
    copy = tmp_path / "minilm"
    shutil.copytree(enc.model_dir(), copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(WeightsError, match=f"tokenizer.json: missing. {COMMAND}"):
        enc.load_encoder(copy)
    shutil.copy(enc.model_dir() / "tokenizer.json", copy)
    with open(copy / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(WeightsError, match=f"model.safetensors: corrupt or changed.*{COMMAND}"):
        enc.load_encoder(copy)


@needs_model
def test_another_model_in_the_folder_is_refused(tmp_path):
    """A folder whose config was edited to another architecture is refused before loading."""
    import json

    copy = tmp_path / "minilm"
    shutil.copytree(enc.model_dir(), copy)
    cfg = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    with pytest.raises(WeightsError, match=f"config.json: corrupt or changed.*{COMMAND}"):
        enc.load_encoder(copy)


def test_mean_pool_ignores_padding():
    h = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = enc.mean_pool(h, mask)
    torch.testing.assert_close(out[0], h[0, :2].mean(0))
    torch.testing.assert_close(out[1], h[1].mean(0))


@pytest.mark.parametrize("texts, words", [
    ("a definition", "must be a list of strings"),
    ([], "at least one string"),
    (["fine", ""], r"texts\[1\] is an empty"),
    (["fine", "   "], r"texts\[1\] is an empty"),
    (["fine", 3], r"texts\[1\] must be a str, got int"),
    (["fine", None], r"texts\[1\] must be a str, got NoneType"),
])  # fmt: skip
def test_bad_texts_are_refused(texts, words):
    with pytest.raises(ValueError, match=words):
        enc.check_texts(texts)


@needs_model
def test_embed_matches_sentence_transformers_and_truncates(loaded):
    from sentence_transformers import SentenceTransformer

    model, tok = loaded
    texts = ["a member of the genus Canis", "the act of propelling", "x " * 600]
    st = SentenceTransformer(str(enc.model_dir()), device="cpu")
    st.max_seq_length = 128
    ours = enc.embed(model, tok, texts, max_length=128)
    torch.testing.assert_close(ours, st.encode(texts, convert_to_tensor=True), atol=1e-5,
                               rtol=1e-4)  # fmt: skip
    # a text far beyond max_length (and beyond the 512 positions) is truncated, not an error
    short = enc.embed(model, tok, texts[2:], max_length=16)
    assert short.shape == (1, 384) and torch.isfinite(short).all()
    with pytest.raises(ValueError, match="empty"):
        enc.embed(model, tok, ["ok", ""])


@needs_model
def test_tokenize_truncates_to_max_length(loaded):
    _, tok = loaded
    ds = finetune.tokenize(tok, ["word " * 100, "a short one"], [0, 1], max_length=12)
    assert [len(x) for x in ds["input_ids"]] == [12, 5]
    assert ds[0]["input_ids"][-1] == tok.sep_token_id  # [SEP] kept at the end
    with pytest.raises(ValueError, match="labels has 1 entries for 2 texts"):
        finetune.tokenize(tok, ["a b", "c d"], [0])
    with pytest.raises(ValueError, match="max_length must be an int >= 3"):
        finetune.tokenize(tok, ["a b"], [0], max_length=2)


@pytest.mark.parametrize("kwargs, words", [
    ({"label_names": ["a", "b"], "num_labels": 3}, "num_labels=3 but id2label has 2"),
    ({"id2label": {0: "a", 2: "b"}}, "must map 0 .. n-1"),
    ({"label_names": ["a", "b"], "id2label": {0: "b", 1: "a"}}, "does not match label_names"),
    ({"label_names": ["a", "a"]}, "distinct"),
    ({"label_names": ["a"]}, "at least 2 labels"),
    ({}, "give label_names or id2label"),
])  # fmt: skip
def test_labels_that_disagree_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        finetune.check_labels(**kwargs)


def test_new_classifier_refuses_before_loading(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "nowhere"))  # would fail if it got that far
    with pytest.raises(ValueError, match="num_labels=4 but id2label has 6"):
        finetune.new_classifier(list("abcdef"), num_labels=4)
    with pytest.raises(ValueError, match="method must be one of"):
        finetune.new_classifier(["a", "b"], method="prefix")


@needs_model
def test_lora_counts_and_no_stacking():
    model = finetune.new_classifier(["a", "b", "c"], "lora", r=4, targets=finetune.QUERY_VALUE)
    # 6 layers x (query, value) x r x (384 + 384), plus the head in full: pooler + classifier
    want = 6 * 2 * 4 * (384 + 384) + (384 * 384 + 384) + (3 * 384 + 3)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == want
    with pytest.raises(ValueError, match="already has a peft adapter"):
        finetune.add_lora(model)
    with pytest.raises(ValueError, match="match no nn.Linear"):
        finetune.add_lora(finetune.new_classifier(["a", "b"]), targets=("q_proj",))


def _tiny_classifier(seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(cfg)


def test_step_ms_times_interleaved_and_restores_the_models():
    from ftnotes.text import ledger

    models = {"a": _tiny_classifier(0), "b": _tiny_classifier(1).eval()}
    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in models.items()}
    batch = {"input_ids": torch.randint(0, 40, (4, 6)), "attention_mask": torch.ones(4, 6,
             dtype=torch.long), "labels": torch.tensor([0, 1, 2, 0])}  # fmt: skip
    ms = ledger.step_ms(models, batch, rounds=2, forward_only=["b"])
    assert set(ms) == {"a", "b"} and all(v > 0 for v in ms.values())
    for n, m in models.items():
        assert all(torch.equal(v, before[n][k]) for k, v in m.state_dict().items())
    assert models["a"].training and not models["b"].training
    with pytest.raises(ValueError, match="forward_only names"):
        ledger.step_ms(models, batch, forward_only=["c"])
    with pytest.raises(ValueError, match="rounds must be"):
        ledger.step_ms(models, batch, rounds=0)


def test_similarity_auc_checks_its_pairs():
    from ftnotes.text import ledger

    with pytest.raises(ValueError, match="one entry per pair"):
        ledger.similarity_auc(None, None, ["a"], ["b", "c"], [1])
    with pytest.raises(ValueError, match="both 0"):
        ledger.similarity_auc(None, None, ["a", "b"], ["c", "d"], [1, 1])


@needs_model
def test_similarity_auc_of_the_encoder_on_held_out_pairs(loaded):
    from ftnotes.text import ABSTRACT, ledger, load_pairs

    model, tok = loaded
    a, b, related = load_pairs(ABSTRACT)
    keep = [i for i in range(len(a)) if i % 8 == 0]  # a quarter of each kind, for speed
    auc = ledger.similarity_auc(model, tok, [a[i] for i in keep], [b[i] for i in keep],
                                [related[i] for i in keep])  # fmt: skip
    assert 0.85 < auc <= 1.0  # the pretrained encoder separates related from unrelated pairs
