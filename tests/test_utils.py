"""atomic_write and save_weights: saving never destroys the previous file."""

import os

import pytest
import torch

from ftnotes.models import TinyViT
from ftnotes.utils import atomic_write, check_int, count_params, model_device, save_weights


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
    torch.manual_seed(0)
    model = TinyViT(dim=16, depth=1, num_heads=2, num_classes=3)
    a = save_weights(model, tmp_path / "a.pt")
    b = save_weights(model.state_dict(), tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes()  # identical tensors, identical bytes
    fresh = TinyViT(dim=16, depth=1, num_heads=2, num_classes=3)
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
