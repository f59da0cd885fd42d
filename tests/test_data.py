"""Tasks: fixed stratified splits, nested label subsets, validation, MNIST in the UCI format."""

import struct

import numpy as np
import pytest
import torch

from ftnotes.data import DIGIT_CLASSES, GLYPH_CLASSES, far_permutation, load_task


def _ids(ds):
    x, _ = ds.tensors
    return {tuple((x[i].flatten() * 16).round().int().tolist()) for i in range(len(x))}


def test_digits_split_fixed_stratified_disjoint():
    t = load_task("digits")
    assert t.classes == DIGIT_CLASSES and t.num_classes == 10
    sizes = [len(t.train), len(t.val), len(t.test)]
    assert sum(sizes) == 1797 and abs(sizes[0] / 1797 - 0.6) < 0.01
    for split in (t.train, t.val, t.test):
        x, y = split.tensors
        assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
        frac = torch.bincount(y, minlength=10).float() / len(y)
        assert (frac - 0.1).abs().max() < 0.02  # every class ~10% in every split
    # disjoint (load_digits has a few duplicate images, so compare the index-level sizes too)
    tr, va, te = _ids(t.train), _ids(t.val), _ids(t.test)
    assert len(tr & te) <= 3 and len(tr & va) <= 3
    t2 = load_task("digits", seed=7)  # the split never depends on seed
    assert torch.equal(t.test.tensors[0], t2.test.tensors[0])


def test_labels_per_class_subsets_are_nested_and_balanced():
    x5, y5 = load_task("digits", labels_per_class=5).train.tensors
    x10, y10 = load_task("digits", labels_per_class=10).train.tensors
    assert torch.equal(torch.bincount(y5), torch.full((10,), 5))
    assert torch.equal(torch.bincount(y10), torch.full((10,), 10))
    rows10 = {tuple(r.tolist()) + (int(c),) for r, c in zip(x10.flatten(1), y10)}
    assert all(tuple(r.tolist()) + (int(c),) in rows10 for r, c in zip(x5.flatten(1), y5))
    assert len(load_task("digits", labels_per_class="all").train) == len(load_task().train)


def test_too_many_labels_per_class_warns_and_uses_all():
    with pytest.warns(UserWarning, match="labels_per_class=1000"):
        t = load_task("digits", labels_per_class=1000)
    assert len(t.train) == len(load_task("digits").train)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "5", True])
def test_bad_labels_per_class_raises(bad):
    with pytest.raises(ValueError, match="labels_per_class"):
        load_task("digits", labels_per_class=bad)


def test_bad_name_raises():
    with pytest.raises(ValueError, match="name must be one of"):
        load_task("cifar")


def test_far_is_the_same_digits_permuted():
    near, far = load_task("digits"), load_task("far", labels_per_class=10)
    far_all = load_task("far")
    perm = far_permutation()
    assert sorted(perm.tolist()) == list(range(64)) and not torch.equal(perm, torch.arange(64))
    xn, yn = near.test.tensors
    xf, yf = far_all.test.tensors
    assert torch.equal(yn, yf)
    assert torch.equal(xn.flatten(1)[:, perm], xf.flatten(1))
    assert len(far.train) == 100


def test_glyph_task_shapes_and_classes():
    t = load_task("glyphs")
    assert t.classes == GLYPH_CLASSES and t.num_classes == len(GLYPH_CLASSES)
    x, y = t.test.tensors
    assert x.shape[1:] == (1, 8, 8) and int(y.max()) < t.num_classes
    assert not torch.equal(t.train.tensors[0][:50], x[:50])


def _write_idx(path, array: np.ndarray):
    """Write an idx file the way MNIST ships them (big-endian header, uint8 data)."""
    dims = array.shape
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_fixture_round_trip(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs = np.zeros((20, 28, 28), np.uint8)
    for i in range(20):  # a vertical bar of random position and width
        c, w = rng.integers(5, 20), rng.integers(2, 6)
        imgs[i, 4:24, c : c + w] = 255
    labels = np.arange(20) % 10
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", imgs)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    t = load_task("mnist", root=tmp_path, download=False)
    assert t.classes == DIGIT_CLASSES
    assert len(t.train) + len(t.val) == 20 and len(t.test) == 20
    x, y = t.test.tensors
    assert torch.equal(y, torch.as_tensor(labels))
    assert torch.allclose(x * 16, (x * 16).round(), atol=1e-5)
    assert ((x[:, 0] > 0).any(2).all(1)).all()  # the bar fills the height after normalisation


def test_mnist_offline_fails_fast_with_instructions(tmp_path):
    with pytest.raises(RuntimeError, match="MNIST/raw") as err:
        load_task("mnist", root=tmp_path, download=False)
    assert "train-images-idx3-ubyte" in str(err.value)
