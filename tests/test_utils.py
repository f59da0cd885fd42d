"""atomic_write and save_weights: saving never destroys the previous file."""

import os

import pytest
import torch
from peft_helpers import tiny_vit

from ftnotes.utils import (
    atomic_write,
    check_int,
    count_params,
    model_device,
    replace_dir,
    save_weights,
)


def test_atomic_write_replaces_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = atomic_write(tmp_path / "sub" / "f.txt", "one")
    assert path.read_text() == "one"
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "three")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]  # no temp file left


def test_save_weights_round_trip_and_byte_stable(tmp_path):
    model = tiny_vit(3, depth=1)
    a = save_weights(model, tmp_path / "a.pt")
    b = save_weights(model.state_dict(), tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes()  # identical tensors, identical bytes
    fresh = tiny_vit(3, depth=1, seed=1)  # other weights, until loaded
    fresh.load_state_dict(torch.load(a, weights_only=True))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), fresh.parameters()))


def test_count_params():
    model = torch.nn.Linear(3, 2)
    model.bias.requires_grad_(False)
    assert count_params(model) == 8
    assert count_params(model, trainable_only=True) == 6


def test_check_int():
    check_int("r", 1)
    check_int("seed", 0, minimum=0)
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=f"r must be an int >= 1, got {bad!r}"):
            check_int("r", bad)


def test_model_device():
    assert model_device(torch.nn.Linear(3, 2)) == torch.device("cpu")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")  # no parameters: the CPU


@pytest.mark.parametrize("kind", ["cuda", "mps"])
def test_device_variable_naming_a_missing_device(monkeypatch, kind):
    from ftnotes import utils

    monkeypatch.setenv("FTNOTES_DEVICE", kind)
    monkeypatch.setattr(utils, "_available", lambda k: k == "cpu")
    with pytest.raises(ValueError, match=f"FTNOTES_DEVICE='{kind}'.*no {kind} device"):
        utils.get_device()
    monkeypatch.setenv("FTNOTES_DEVICE", "tpu")
    with pytest.raises(ValueError, match="FTNOTES_DEVICE must be one of"):
        utils.get_device()


def test_fit_with_an_unknown_device_is_a_value_error():
    from ftnotes.train import fit

    X, y = torch.rand(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match="device must be one of.*'tpu'"):
        fit(tiny_vit(2, depth=1), (X, y), device="tpu")


def test_atomic_write_into_a_read_only_folder_names_the_target(tmp_path, monkeypatch):
    import errno
    import tempfile

    def refuse(**kwargs):  # what mkstemp does in a read-only folder (root ignores chmod)
        raise PermissionError(errno.EACCES, "Permission denied", kwargs["dir"] + "/.x.tmp")

    monkeypatch.setattr(tempfile, "mkstemp", lambda **kw: refuse(**{**kw, "dir": str(kw["dir"])}))
    target = tmp_path / "weights.pt"
    with pytest.raises(OSError, match="cannot write .*weights.pt: Permission denied") as err:
        atomic_write(target, b"x")
    assert ".tmp" not in str(err.value)


def test_pinned_threads_restores_the_count():
    from ftnotes.utils import pinned_threads

    before = torch.get_num_threads()
    with pinned_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        with pinned_threads(0):
            pass


def test_replace_dir_swaps_in_the_new_folder_and_drops_the_old(tmp_path):
    final, new = tmp_path / "model", tmp_path / ".model.tmp"
    final.mkdir()
    (final / "a.txt").write_text("old")
    new.mkdir()
    (new / "b.txt").write_text("new")
    assert replace_dir(new, final) == final
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no .model.old left behind
    again = tmp_path / ".again"
    again.mkdir()
    replace_dir(again, tmp_path / "fresh")  # nothing there before: just a rename
    assert (tmp_path / "fresh").is_dir() and not again.exists()


def test_write_json_has_the_course_shape_and_never_half_writes(tmp_path):
    import json

    from ftnotes.utils import write_json

    path = tmp_path / "sub" / "m.json"
    obj = {"sha256": "ab", "files": {"a": 1}, "acc": 0.5}
    write_json(path, obj)
    assert path.read_text() == json.dumps(obj, indent=2) + "\n"  # byte-identical to the old writers
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})  # not JSON: refused before anything is written
    assert json.loads(path.read_text()) == obj and [p.name for p in path.parent.iterdir()] == ["m.json"]
