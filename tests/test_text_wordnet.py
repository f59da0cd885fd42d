"""The shipped WordNet subset: its manifest, the builder, the loader and its errors."""

import hashlib
import json
import shutil

import pytest

from ftnotes.text import wordnet as wn
from ftnotes.text import wordnet_build as build

ROOT = wn.WORDNET_DIR


def test_shipped_files_match_the_manifest():
    man = json.loads((ROOT / "manifest.json").read_text())
    assert man["command"] == build.COMMAND
    assert set(man["files"]) == {"nouns.tsv", "hidden.tsv", "pairs.tsv", "LICENSE"}
    for name, entry in man["files"].items():
        raw = (ROOT / name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"], name
        if entry["rows"] is not None:
            assert raw.count(b"\n") - 1 == entry["rows"], name
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in (ROOT / "LICENSE").read_text()


@pytest.mark.skipif(not build.DEFAULT_SOURCE.is_file(), reason="Debian's wordnet-base not installed")
def test_builder_reproduces_the_shipped_files_byte_for_byte():
    texts = build.build()
    for name, text in texts.items():
        assert (ROOT / name).read_bytes() == text.encode(), name
    assert build.main(["--check"]) == 0


def test_splits_are_fixed_disjoint_and_balanced():
    seen = {}
    for split in wn.PUBLIC_SPLITS:
        rows = wn.load_rows(wn.CATEGORIES, split)
        for cat in wn.CATEGORIES:
            assert sum(r["category"] == cat for r in rows) == wn.SPLIT_SIZES[split]
        for r in rows:
            assert r["offset"] not in seen
            seen[r["offset"]] = split
    for board in wn.HIDDEN_SPLITS:
        texts, labels, names = wn.load_hidden(wn.CATEGORIES, board)
        assert len(texts) == len(wn.CATEGORIES) * wn.SPLIT_SIZES[board]
    hidden = {line.split("\t")[0] for line in (ROOT / "hidden.tsv").read_text().splitlines()[1:]}
    assert not hidden & set(seen)
    pair_offsets = {o for line in (ROOT / "pairs.tsv").read_text().splitlines()[1:]
                    for o in line.split("\t")[2:4]}  # fmt: skip
    assert not pair_offsets & (set(seen) | hidden)  # the pairs are held out


def test_load_definitions_labels_and_per_class():
    texts, labels, names = wn.load_definitions(wn.ABSTRACT, "train")
    assert names == wn.ABSTRACT and len(texts) == 6 * 110 == len(labels)
    assert all(isinstance(t, str) and t for t in texts)
    rows = wn.load_rows(wn.ABSTRACT, "train")
    assert [names[i] for i in labels] == [r["category"] for r in rows]
    small = wn.load_definitions(wn.ABSTRACT, "train", per_class=20)
    big = wn.load_definitions(wn.ABSTRACT, "train", per_class=40)
    assert [small.labels.count(i) for i in range(6)] == [20] * 6
    assert set(small.texts) < set(big.texts)  # nested
    other = wn.load_definitions(wn.ABSTRACT, "train", per_class=20, seed=1)
    assert set(other.texts) != set(small.texts)
    # the order of the categories is the order of the labels
    rev = wn.load_definitions(wn.CONCRETE[::-1], "test")
    assert rev.label_names == wn.CONCRETE[::-1]


def test_pairs_are_balanced():
    a, b, related = wn.load_pairs(wn.ABSTRACT)
    assert len(a) == len(b) == len(related) and sum(related) * 2 == len(related)


@pytest.mark.parametrize("kwargs, words", [
    ({"categories": ["act", "nonsense"]}, "unknown ['nonsense']"),
    ({"categories": "act"}, "categories must be a list"),
    ({"categories": ["act"]}, "at least 2 distinct"),
    ({"categories": ["act", "act"]}, "at least 2 distinct"),
    ({"split": "val"}, "split must be one of"),
    ({"split": "hidden_live"}, "load_hidden"),
    ({"per_class": 0}, "per_class must be an int >= 1"),
    ({"per_class": 111}, "per_class must be <= 110"),
    ({"per_class": 2.5}, "per_class must be an int"),
])  # fmt: skip
def test_bad_arguments_are_named(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        wn.load_definitions(**kwargs)


def test_hidden_board_name_is_checked():
    with pytest.raises(ValueError, match="board must be one of"):
        wn.load_hidden(wn.ABSTRACT, "test")


def test_edited_or_missing_file_names_the_builder(tmp_path):
    copy = tmp_path / "wordnet"
    shutil.copytree(ROOT, copy)
    with open(copy / "nouns.tsv", "a") as f:
        f.write("99999999\tact\ttrain\tx\tan edited row\n")
    with pytest.raises(wn.DataError, match="does not match its sha256.*wordnet_build"):
        wn.load_definitions(wn.ABSTRACT, "train", root=copy)
    (copy / "pairs.tsv").unlink()
    with pytest.raises(wn.DataError, match="pairs.tsv is missing"):
        wn.load_pairs(wn.ABSTRACT, root=copy)


def test_builder_without_source_says_what_to_install(tmp_path, capsys):
    with pytest.raises(SystemExit):
        build.main(["--source", str(tmp_path / "data.noun"), "--out", str(tmp_path)])
    assert "wordnet-base" in capsys.readouterr().err


def test_parse_noun_line_drops_examples():
    line = ("02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 002 @ 02083346 n 0000 "
            "@i 01317541 n 0000 | a member of the genus Canis; \"the dog barked all night\"  ")
    s = build.parse_noun_line(line)
    assert s["category"] == "animal" and s["lemmas"] == "dog, domestic dog, Canis familiaris"
    assert s["definition"] == "a member of the genus Canis"
    assert s["hypernyms"] == ["02083346", "01317541"]
