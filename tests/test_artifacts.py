"""One declaration per model, one verify path: issue 29's bad input for every model's loader
(missing, truncated, a manifest of the wrong type, files re-hashed after tampering with the
architecture), each refused with ftnotes' own error naming the file and the command; the
manifest schema; locate, the cache, the message shape and the writer.

The obtained models are obtained first if they are not (the same step as ``make models``; a
quick verify when they are), then copied into ``tmp_path`` (large files hard-linked: every
tampering below replaces a file, it never writes into one).
"""

import json
import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from ftnotes import artifacts, checkpoints, hf, obtain
from ftnotes.artifacts import OBTAINED, WeightsError
from ftnotes.lm import model as lm
from ftnotes.registry import MODELS, ModelSpec, Package

# every model set-up provides (smollm2 waits for its converter, issue 33), through the public
# loader notebooks call
LOADERS = {
    "tinyvit": checkpoints.load_pretrained,
    "tinyvit-printed": lambda path: artifacts.load("tinyvit-printed", path),
    "tinyvit-hf": hf.load_pretrained_hf,
    "tiny-lm": lm.load_pretrained_lm,
    "minilm": lambda path: artifacts.load("minilm", path),
}
NAMES = sorted(LOADERS)
# architecture fields to tamper with: (field, a wrong value) per model
TAMPER = {
    "tinyvit": [("depth", 6), ("dim", 64)],
    "tinyvit-printed": [("depth", 6)],
    "tinyvit-hf": [("num_hidden_layers", 6), ("hidden_size", 64), ("model_type", "bert")],
    "tiny-lm": [("num_hidden_layers", 6), ("hidden_size", 128), ("model_type", "qwen2")],
    "minilm": [("num_hidden_layers", 12), ("hidden_size", 768), ("model_type", "roberta")],
}


def test_every_model_set_up_provides_is_tested_and_verifies():
    assert sorted(n for n, s in MODELS.items() if s.setup) == NAMES == sorted(TAMPER)
    for name in NAMES:
        if MODELS[name].kind == OBTAINED:
            obtain.obtain(name)
        assert artifacts.verify(name) == artifacts.locate(name)


def test_the_printed_backbones_export_verifies_through_the_same_declaration():
    folder = hf.verify_hf(weights=checkpoints.PRINTED_WEIGHTS)
    assert folder == checkpoints.PRINTED_WEIGHTS.parent / "tinyvit-glyphs-hf"
    assert artifacts.manifest_path("tinyvit-hf", folder) == checkpoints.PRINTED_WEIGHTS.with_suffix(".json")


def _rewrite(file: Path, data: bytes) -> None:
    file.unlink()  # never write into a file: it may be a hard link into the cache
    file.write_bytes(data)


def _copy(src: Path, dst: Path) -> None:
    if src.is_file():
        shutil.copy(src, dst)
        return

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:  # another file system
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)


@pytest.fixture
def model_copy(tmp_path, monkeypatch):
    """``make(name) -> (path, manifest file)``: a verified copy of model ``name`` in tmp_path."""

    def make(name):
        spec = MODELS[name]
        src = obtain.obtain(name) if spec.kind == OBTAINED else artifacts.locate(name)
        dst = tmp_path / src.name
        _copy(src, dst)
        mfile = tmp_path / artifacts.manifest_path(name).name
        shutil.copy(artifacts.manifest_path(name), mfile)
        if spec.kind == OBTAINED:  # the repository's record, copied so a test may edit it
            monkeypatch.setitem(MODELS, name, replace(spec, manifest=str(mfile)))
        assert artifacts.manifest_path(name, dst) == mfile and artifacts.verify(name, dst) == dst
        return dst, mfile

    return make


def _weights(name: str, path: Path) -> Path:
    return path if MODELS[name].single_file else path / "model.safetensors"


def _rehash(name: str, path: Path, mfile: Path, file: Path) -> None:
    """Record ``file``'s new sha256 in the manifest, as a careful tamperer would."""
    spec, data = MODELS[name], json.loads(mfile.read_text())
    record = data[spec.section] if spec.section else data
    if spec.single_file:
        record["sha256"] = artifacts.sha256_file(file)
    else:
        record["files"][file.relative_to(path).as_posix()] = artifacts.sha256_file(file)
    mfile.write_text(json.dumps(data))


def _refused(name: str, path: Path, file: Path, *words: str) -> WeightsError:
    with pytest.raises(WeightsError) as caught:
        LOADERS[name](path)
    err, text = caught.value, str(caught.value)
    assert err.file == file and text.startswith(f"{file}: "), text
    assert f"Fix: `{artifacts.fix_command(name)}`" in text, text
    for word in words:
        assert word in text, (word, text)
    return err


@pytest.mark.parametrize("name", NAMES)
def test_intact_copy_loads(name, model_copy):
    path, _ = model_copy(name)
    loaded = LOADERS[name](path)
    model = loaded[0] if isinstance(loaded, tuple) else loaded
    assert not model.training


@pytest.mark.parametrize("name", NAMES)
def test_missing_model_names_it_and_the_command(name, model_copy):
    path, _ = model_copy(name)
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    _refused(name, path, path, "missing")


@pytest.mark.parametrize("name", NAMES)
def test_truncated_weights_are_refused_by_sha256(name, model_copy):
    path, _ = model_copy(name)
    file = _weights(name, path)
    _rewrite(file, file.read_bytes()[: file.stat().st_size // 2])
    _refused(name, path, file, "corrupt or changed", "sha256")


@pytest.mark.parametrize("name", NAMES)
def test_truncated_and_rehashed_weights_are_refused_by_the_loader(name, model_copy):
    path, mfile = model_copy(name)
    file = _weights(name, path)
    _rewrite(file, file.read_bytes()[: file.stat().st_size // 2])
    _rehash(name, path, mfile, file)
    _refused(name, path, file)  # the library's exception, as ftnotes' error naming the file


@pytest.mark.parametrize("content", ["[1, 2]", '"weights"', "3", "null", "{not json"])
@pytest.mark.parametrize("name", NAMES)
def test_manifest_that_is_not_an_object_is_refused(name, content, model_copy):
    path, mfile = model_copy(name)
    mfile.write_text(content)
    _refused(name, path, mfile, "the manifest")


@pytest.mark.parametrize("name", NAMES)
def test_manifest_with_only_empty_files_is_refused_naming_a_field(name, model_copy):
    path, mfile = model_copy(name)
    mfile.write_text('{"files": {}}')
    _refused(name, path, mfile, "the manifest has no field")


def _record_field(name: str) -> str:
    """The manifest field that holds the sha256s of model ``name``."""
    spec = MODELS[name]
    return "sha256" if spec.single_file else f"{spec.section}.files" if spec.section else "files"


@pytest.mark.parametrize("name", NAMES)
def test_emptied_file_record_is_refused(name, model_copy):
    path, mfile = model_copy(name)
    data = json.loads(mfile.read_text())
    *parents, last = _record_field(name).split(".")
    record = data
    for key in parents:
        record = record[key]
    record[last] = "" if last == "sha256" else {}
    mfile.write_text(json.dumps(data))
    _refused(name, path, mfile, repr(_record_field(name)))


@pytest.mark.parametrize("name", NAMES)
def test_a_string_where_a_dict_belongs_is_refused_naming_the_field(name, model_copy):
    path, mfile = model_copy(name)
    spec, data = MODELS[name], json.loads(mfile.read_text())
    key = "config" if spec.single_file else spec.section or "files"  # e.g. "hf": a string
    data[key] = "x"
    mfile.write_text(json.dumps(data))
    _refused(name, path, mfile, f"field {key!r} must be a JSON object, got a string")


@pytest.mark.parametrize("name,key,value", [(n, k, v) for n in NAMES for k, v in TAMPER[n]])
def test_rehashed_architecture_tampering_is_refused(name, key, value, model_copy):
    path, mfile = model_copy(name)
    if MODELS[name].single_file:  # the .pt's architecture is its manifest's config
        data = json.loads(mfile.read_text())
        data["config"][key] = value
        mfile.write_text(json.dumps(data))
        source = mfile
    else:
        source = path / "config.json"
        config = json.loads(source.read_text())
        config[key] = value
        _rewrite(source, json.dumps(config).encode())
        _rehash(name, path, mfile, source)
    _refused(name, path, source, f"{key} is {value!r}", "declared with")


def test_the_issue_examples():
    """Today's two holes: a string "hf" record (was an AttributeError) and a tiny-LM manifest
    whose "files" is {} (passed)."""
    data = json.loads(artifacts.manifest_path("tinyvit").read_text())
    with pytest.raises(WeightsError, match="'hf' must be a JSON object"):
        artifacts._check_schema(MODELS["tinyvit-hf"], {**data, "hf": "x"}, Path("m.json"))
    lm_data = json.loads(artifacts.manifest_path("tiny-lm").read_text())
    with pytest.raises(WeightsError, match="'files' must record exactly"):
        artifacts._recorded_files(MODELS["tiny-lm"], Path("tiny-lm"), {**lm_data, "files": {}},
                                  Path("m.json"))  # fmt: skip


# ---- locate, the cache, commands, the declarations, the writer ---------------------------------


def test_locate_takes_the_path_then_the_variable_then_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv("FTNOTES_LM", raising=False)
    assert artifacts.locate("tiny-lm") == artifacts.DATA_DIR / "tiny-lm"
    monkeypatch.setenv("FTNOTES_LM", str(tmp_path / "lm"))
    assert artifacts.locate("tiny-lm") == tmp_path / "lm" == lm.lm_path()
    assert artifacts.locate("tiny-lm", tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("FTNOTES_WEIGHTS", str(tmp_path / "w" / "my.pt"))
    monkeypatch.delenv("FTNOTES_VIT_HF", raising=False)  # the export follows its .pt
    assert artifacts.locate("tinyvit-hf") == tmp_path / "w" / "tinyvit-glyphs-hf"
    assert artifacts.manifest_path("tinyvit-hf") == tmp_path / "w" / "my.json"
    with pytest.raises(ValueError, match="path must be None"):
        artifacts.locate("tiny-lm", 3)
    with pytest.raises(ValueError, match=r"name must be one of \[.*'minilm'"):
        artifacts.locate("bert")


def test_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv("FTNOTES_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert artifacts.cache_dir() == Path.home() / ".cache" / "ftnotes"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert artifacts.cache_dir() == tmp_path / "xdg" / "ftnotes"
    monkeypatch.setenv("FTNOTES_CACHE", str(tmp_path / "mine"))
    assert artifacts.cache_dir() == tmp_path / "mine"
    assert artifacts.locate("minilm") == tmp_path / "mine" / "models" / "minilm"


def test_commands_in_a_clone_and_installed(monkeypatch, tmp_path):
    assert artifacts.fix_command("minilm") == "make models` or `python -m ftnotes.obtain minilm"
    assert artifacts.fix_command("tinyvit-hf") == "python -m ftnotes.pretrain --export-hf-only"
    monkeypatch.setattr(artifacts, "IN_CLONE", False)
    monkeypatch.setenv("FTNOTES_CACHE", str(tmp_path))
    assert artifacts.fix_command("minilm") == "python -m ftnotes.obtain minilm"
    printed = artifacts.fix_command("tinyvit-printed")
    assert printed == (f"python -m ftnotes.pretrain --handwriting 0 --out {tmp_path}/weights/"
                       f"printed` and then `export FTNOTES_PRINTED_WEIGHTS={tmp_path}/weights/"
                       "printed/tinyvit_glyphs.pt")  # fmt: skip


def test_error_shape_survives_pickling():
    err = WeightsError("/x/model.safetensors", "missing", "make models", "note")
    assert str(err) == "/x/model.safetensors: missing. Fix: `make models` (note)."
    again = pickle.loads(pickle.dumps(err))  # bench workers send errors back
    assert str(again) == str(err) and again.file == err.file and again.command == "make models"


def test_declarations_are_checked():
    for spec in MODELS.values():
        assert spec.command and spec.env.startswith("FTNOTES_") and spec.architecture
    assert MODELS["tinyvit"].tolerances and MODELS["tiny-lm"].tolerances  # both have --verify
    with pytest.raises(ValueError, match="an obtained model \\(only\\) has a package"):
        ModelSpec("x", OBTAINED, "x", "FTNOTES_X", "c", files=("a",), manifest="x.json")
    pkg = Package("p", "1", "0" * 64, "p/model.gguf")
    with pytest.raises(ValueError, match="member_sha256"):
        ModelSpec("x", OBTAINED, "x", "FTNOTES_X", "c", files=("a",), manifest="x.json",
                  package=pkg, convert="m:f")  # fmt: skip
    with pytest.raises(TypeError):
        MODELS["minilm"].architecture["hidden_size"] = 1  # read-only


def test_building_swaps_whole_or_not_at_all(tmp_path):
    final = tmp_path / "model"
    with artifacts.building(final) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (final / "a.txt").read_text() == "one" and oct(final.stat().st_mode)[-3:] == "755"
    with pytest.raises(KeyboardInterrupt), artifacts.building(final) as tmp:
        (tmp / "a.txt").write_text("two")
        raise KeyboardInterrupt  # Ctrl-C halfway
    assert (final / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp folder left
    artifacts.write_manifest(tmp_path / "m.json", {"a": [1]})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": [\n    1\n  ]\n}\n'
