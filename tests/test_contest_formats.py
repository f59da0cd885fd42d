"""Submission files read strictly and item by item (the crashes of issue 30 item 5 among them),
and the metrics tasks can use: macro-F1, the pairwise order score, exact match."""

import json
import os
import time

import pytest
import torch
from sklearn.metrics import f1_score

from ftnotes.contest.formats import (
    INVALID,
    JsonlAnswers,
    LabelCSV,
    SubmissionError,
    strict_int,
)
from ftnotes.contest.metrics import exact_match, macro_f1, pairwise_order

IDS = torch.arange(10) + 100
CSV = LabelCSV(5)


@pytest.mark.parametrize("text, value", [("7", 7), (" 12 ", 12), ("-3", -3), ("007", 7),
                                         ("--5", None), ("²", None), ("３", None),
                                         ("100_000", None), ("1e3", None), ("0x10", None),
                                         ("", None), ("+4", None), ("4.0", None)])  # fmt: skip
def test_strict_int_takes_plain_ascii_digits_only(text, value):
    assert strict_int(text) == value


def test_a_clean_file_reads_back_in_the_expected_order(tmp_path):
    path = CSV.write(tmp_path / "s.csv", IDS, torch.arange(10) % 5)
    parsed = CSV.read(path, IDS.flip(0))
    assert torch.equal(parsed.answers, (IDS.flip(0) - 100) % 5)
    assert parsed.problems == {} and parsed.note(10) == ""
    with pytest.raises(ValueError, match="integers"):
        CSV.write(tmp_path / "s.csv", IDS, torch.rand(10))


def test_bad_rows_score_zero_for_their_item_only(tmp_path):
    rows = ["id,label", "100,1", "101,--5", "102,²", "103,３", "104,9", "105,2", "105,3",
            "106,1,extra", "100_000,1", "999,1", "107,4", ""]  # fmt: skip
    (tmp_path / "s.csv").write_text("\n".join(rows))
    parsed = CSV.read(tmp_path / "s.csv", IDS)
    assert parsed.answers.tolist() == [1] + [INVALID] * 6 + [4] + [INVALID] * 2
    note = parsed.note(10)
    assert note.startswith("8 of 10 items scored 0")
    for part in ("4 labels not an integer in 0..4 (101, 102, 103, 104)",
                 "1 duplicate ids (105)", "missing ids (106, 108, 109)",
                 "lines without exactly 2 columns (9)", "lines whose id is not an integer (10)",
                 "1 ids not in the test split, ignored (999)"):  # fmt: skip
        assert part in note, note


@pytest.mark.parametrize("content, match", [
    ("image,class\n100,1\n", "expected the header id,label, found 'image,class'"),
    ("", "expected the header id,label, found 'an empty file'"),
    ("id,label\n0,1\n1,2\n", r"none of the 10 expected test ids .*ids like 100, 101, 102.*0, 1"),
])  # fmt: skip
def test_whole_file_problems_are_submission_errors(tmp_path, content, match):
    (tmp_path / "s.csv").write_text(content)
    with pytest.raises(SubmissionError, match=match):
        CSV.read(tmp_path / "s.csv", IDS)


def test_encodings_other_than_utf8_name_the_file(tmp_path):
    text = "id,label\n" + "".join(f"{i},1\n" for i in IDS.tolist())
    (tmp_path / "u16.csv").write_text(text, encoding="utf-16")
    with pytest.raises(SubmissionError, match="u16.csv is UTF-16 text"):
        CSV.read(tmp_path / "u16.csv", IDS)
    (tmp_path / "latin.csv").write_bytes(("id,label\n100,1\n# café\n").encode("latin-1"))
    with pytest.raises(SubmissionError, match=r"latin.csv is not UTF-8 text: byte 0xe9 at offset"):
        CSV.read(tmp_path / "latin.csv", IDS)
    (tmp_path / "u16le.csv").write_text(text, encoding="utf-16-le")  # no byte-order mark
    with pytest.raises(SubmissionError, match="u16le.csv contains NUL bytes"):
        CSV.read(tmp_path / "u16le.csv", IDS)
    (tmp_path / "bom.csv").write_text(text, encoding="utf-8-sig")  # Excel's UTF-8 is fine
    assert CSV.read(tmp_path / "bom.csv", IDS).problems == {}


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    ids = torch.arange(1270) + 100_000
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("id,label\n" + "100000,1\n" * 3_000_000)  # 27 MB
    start = time.perf_counter()
    with pytest.raises(SubmissionError, match=r"big.csv is [0-9,]+ bytes, over the cap of"):
        LabelCSV(44).read(path, ids)
    assert time.perf_counter() - start < 0.5
    assert LabelCSV(44).cap_bytes(ids) < 300_000  # 10x of about 12 bytes a row


def test_only_a_regular_file_is_read(tmp_path):
    (tmp_path / "link.csv").symlink_to("/etc/hostname")
    with pytest.raises(SubmissionError, match="link.csv is not a regular file"):
        CSV.read(tmp_path / "link.csv", IDS)
    os.mkfifo(tmp_path / "fifo.csv")  # reading a pipe would wait forever
    with pytest.raises(SubmissionError, match="fifo.csv is not a regular file"):
        CSV.read(tmp_path / "fifo.csv", IDS)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(SubmissionError, match="dir.csv is not a regular file"):
        CSV.read(tmp_path / "dir.csv", IDS)
    with pytest.raises(SubmissionError, match="no submission: none.csv was not written"):
        CSV.read(tmp_path / "none.csv", IDS)


def test_jsonl_text_answers_item_by_item(tmp_path):
    fmt = JsonlAnswers("text", max_item_bytes=20)
    path = fmt.write(tmp_path / "a.jsonl", IDS[:3], ["cat", "dog", "ein Hund"])
    assert fmt.read(path, IDS[:3]).answers == ["cat", "dog", "ein Hund"]
    lines = [{"id": 100, "answer": "cat"}, {"id": 101, "answer": 7}, {"id": True, "answer": "x"},
             {"id": 102, "answer": "x" * 30}, {"id": 103}, [104, "a"], {"id": 105, "answer": "ok"}]  # fmt: skip
    path.write_text("\n".join(json.dumps(v) for v in lines) + "\nnot json\n")
    parsed = fmt.read(path, IDS[:6])
    assert parsed.answers == ["cat", None, None, None, None, "ok"]
    note = parsed.note(6)
    assert "2 answers that are not text of at most 20 bytes (101, 102)" in note
    assert "lines that are not" in note and "(3, 5, 6, 8)" in note
    with pytest.raises(ValueError, match="answers must be strings"):
        fmt.write(tmp_path / "b.jsonl", IDS[:2], ["a", 3])
    with pytest.raises(ValueError, match="kind must be"):
        JsonlAnswers("json")


def test_jsonl_rankings(tmp_path):
    fmt = JsonlAnswers("ranking")
    path = fmt.write(tmp_path / "r.jsonl", IDS[:2], [[2, 0, 1], [0, 1]])
    assert fmt.read(path, IDS[:2]).answers == [[2, 0, 1], [0, 1]]
    path.write_text('{"id": 100, "answer": [0, "1"]}\n{"id": 101, "answer": [1, 0]}\n')
    assert fmt.read(path, IDS[:2]).answers == [None, [1, 0]]


def test_macro_f1_is_sklearns_and_an_invalid_label_is_a_miss():
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 2, INVALID, 0])
    got = macro_f1(pred, y, 3)
    want = f1_score(y.numpy(), pred.numpy(), labels=[0, 1, 2], average="macro")
    assert got["score"] == pytest.approx(want) and got["accuracy"] == pytest.approx(4 / 7)
    assert macro_f1(torch.nn.functional.one_hot(y, 3).float(), y, 3)["score"] == 1.0
    assert macro_f1(torch.tensor([0] * 7), y, 3)["score"] == pytest.approx((2 * 2 / 9) / 3)


def test_pairwise_order_is_one_minus_inversions_over_pairs():
    target = [[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [3, 1, 0, 2], [0]]
    pred = [[0, 1, 2, 3], [1, 0, 2, 3], [3, 2, 1, 0], [3, 0, 1, 2], None]
    got = pairwise_order(pred, target)
    # 1, 1 - 1/6, 0 (reversed), 1 - 1/6 (parts 1 and 2 swapped), 1 (nothing to order)
    assert got["score"] == pytest.approx((1 + 5 / 6 + 0 + 5 / 6 + 1) / 5)
    assert got["valid"] == pytest.approx(4 / 5)
    for bad in ([0, 1, 1, 3], [0, 1, 2], [0, 1, 2, 4], None, [0.0, 1, 2, 3], [True, 0, 2, 3]):
        assert pairwise_order([bad], [target[0]])["score"] == 0.0  # per-item zero
    with pytest.raises(ValueError, match="same non-zero length"):
        pairwise_order([], [])


def test_exact_match_strips_whitespace_and_counts_missing_answers_wrong():
    assert exact_match(["cat", " dog\n", None, "Cow"], ["cat", "dog", "eel", "cow"]) == {
        "score": 0.5}
