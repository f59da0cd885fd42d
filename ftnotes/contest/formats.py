"""Submission files: written atomically, read strictly and item by item.

Two formats, as at IOAI 2026: a CSV ``id,label`` of class indices (:class:`LabelCSV`) and JSON
lines ``{"id": ..., "answer": ...}`` for text or rankings (:class:`JsonlAnswers`). Reading
never trusts the file: its size is capped (10x what the expected answers take) before it is
read, it must be UTF-8 text, and every id and label must be plain ASCII digits (``int()`` would
also take ``100_000``, ``３`` or ``²``).

What is wrong with the whole file (missing, too large, not UTF-8, wrong header, none of the
expected ids) raises :class:`SubmissionError`: no score. What is wrong with one row (a missing
or duplicate id, a label out of range, an answer of the wrong type) makes that item invalid:
it scores 0 for that item (per-item credit, as the 2026 graders did), and :class:`Parsed` says
which and why.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ftnotes.utils import atomic_write

INVALID = -1  # the label of an invalid item: it matches no class, so it scores 0
_INT = re.compile(r"-?[0-9]{1,18}", re.ASCII)  # re.ASCII: [0-9] only, never "３" or "²"


class SubmissionError(ValueError):
    """A submission file that cannot be scored at all (missing, too large, not UTF-8, wrong
    header, none of the expected ids): the message says what was expected and what was found."""


def strict_int(text: str) -> int | None:
    """``text`` (surrounding spaces allowed) as an int if it is plain ASCII digits with an
    optional minus, else None (so ``--5``, ``1_000``, ``３``, ``²``, ``1e3``, ``0x10`` are not)."""
    text = text.strip(" \t\r")
    return int(text) if _INT.fullmatch(text) else None


def _first(values, k: int = 5) -> str:
    values = sorted(values) if all(isinstance(v, int) for v in values) else list(values)
    more = f" and {len(values) - k} more" if len(values) > k else ""
    return ", ".join(map(str, values[:k])) + more


@dataclass
class Parsed:
    """One answer per expected id, in their order (``INVALID`` / None where an item is
    invalid), and the problems found: reason -> ids (or line numbers)."""

    answers: object
    problems: dict = field(default_factory=dict)
    extra_ids: list = field(default_factory=list)

    @property
    def invalid(self) -> int:
        return sum(len(v) for k, v in self.problems.items() if not k.startswith("line"))

    def note(self, total: int) -> str:
        """'' for a clean file, else what scored 0 and why (a few ids each)."""
        parts = [f"{len(v)} {k} ({_first(v)})" for k, v in self.problems.items()]
        parts += [f"{len(self.extra_ids)} ids not in the test split, ignored "
                  f"({_first(self.extra_ids)})"] if self.extra_ids else []  # fmt: skip
        if not parts:
            return ""
        return f"{self.invalid} of {total:,} items scored 0: " + "; ".join(parts)


def read_text(path: Path, cap: int) -> str:
    """The file's text, after checking that it exists, is at most ``cap`` bytes and is UTF-8."""
    try:  # O_NOFOLLOW: a symlink could point at the grader's own files
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SubmissionError(f"no submission: {path.name} was not written") from None
    except OSError:
        raise SubmissionError(f"{path.name} is not a regular file (a symlink?): it was not "
                              "read") from None  # fmt: skip
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SubmissionError(f"{path.name} is not a regular file (a folder, pipe or device): "
                              "it was not read")  # fmt: skip
    with os.fdopen(fd, "rb") as f:
        if info.st_size > cap:
            raise SubmissionError(f"{path.name} is {info.st_size:,} bytes, over the cap of "
                                  f"{cap:,} bytes (10x what the expected answers take): it was "
                                  "not read")  # fmt: skip
        raw = f.read(cap + 1)
    if len(raw) > cap:
        raise SubmissionError(f"{path.name} grew past the cap of {cap:,} bytes while read")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SubmissionError(f"{path.name} is UTF-16 text (it starts with a UTF-16 byte-order "
                              "mark): save it as UTF-8")  # fmt: skip
    try:
        text = raw.decode("utf-8-sig")  # a UTF-8 byte-order mark is harmless
    except UnicodeDecodeError as err:
        raise SubmissionError(f"{path.name} is not UTF-8 text: byte 0x{raw[err.start]:02x} at "
                              f"offset {err.start} (Latin-1? save it as UTF-8)") from None  # fmt: skip
    if "\x00" in text:
        raise SubmissionError(f"{path.name} contains NUL bytes (UTF-16 without a byte-order "
                              "mark?): save it as UTF-8 text")  # fmt: skip
    return text


def _match(path, expected_ids, rows) -> tuple[dict, dict, dict, list]:
    """Map expected id -> raw answer from ``rows`` of (line, id text or int, answer);
    duplicates, bad ids and missing ids go to the problems."""
    index = {int(i): k for k, i in enumerate(np.asarray(expected_ids).reshape(-1).tolist())}
    found, problems, extra, dup = {}, defaultdict(list), [], set()
    for line, raw_id, answer in rows:
        i = raw_id if isinstance(raw_id, int) else strict_int(raw_id)
        if i is None:
            problems["lines whose id is not an integer"].append(line)
        elif i not in index:
            extra.append(i)
        elif i in found or i in dup:
            dup.add(i)
            found.pop(i, None)
        else:
            found[i] = answer
    if not found and not dup:
        seen = f"; it has ids {_first(extra)}" if extra else ""
        raise SubmissionError(f"{path.name}: none of the {len(index):,} expected test ids is in "
                              f"the file (expected ids like {_first(list(index), 3)}{seen}): were "
                              "the predictions made on the test split the task's load() "
                              "served?")  # fmt: skip
    if dup:
        problems["duplicate ids"] = sorted(dup)
    missing = [i for i in index if i not in found and i not in dup]
    if missing:
        problems["missing ids"] = missing
    return index, found, problems, extra


@dataclass(frozen=True)
class LabelCSV:
    """CSV with the header ``id,label`` and one row per test id, the label a class index
    0..num_classes-1."""

    num_classes: int
    suffix: str = ".csv"

    def cap_bytes(self, expected_ids) -> int:
        ids = np.asarray(expected_ids).reshape(-1)
        row = len(str(int(np.abs(ids).max()) if len(ids) else 0)) + len(str(self.num_classes)) + 3
        return 10 * (len("id,label\n") + len(ids) * row) + 1024

    def write(self, path, ids, labels) -> Path:
        ids, labels = np.asarray(ids).reshape(-1), np.asarray(labels).reshape(-1)
        if len(ids) != len(labels):
            raise ValueError(f"ids and labels need the same length, got {len(ids)} and "
                             f"{len(labels)}")  # fmt: skip
        if not (np.issubdtype(labels.dtype, np.integer) and np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"ids and labels must be integers, got {ids.dtype} and "
                             f"{labels.dtype}")  # fmt: skip
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["id", "label"])
        writer.writerows(zip(ids.tolist(), labels.tolist()))
        return atomic_write(path, buf.getvalue())

    def read(self, path, expected_ids) -> Parsed:
        """Labels (N,) int64 in the order of ``expected_ids`` (``INVALID`` where invalid)."""
        path = Path(path)
        rows = list(csv.reader(io.StringIO(read_text(path, self.cap_bytes(expected_ids)))))
        if not rows or [c.strip() for c in rows[0]] != ["id", "label"]:
            found = ",".join(rows[0])[:60] if rows else "an empty file"
            raise SubmissionError(f"{path.name}: expected the header id,label, found {found!r}")
        body, problems = [], defaultdict(list)
        for line, row in enumerate(rows[1:], 2):
            if len(row) == 2:
                body.append((line, row[0], row[1]))
            elif any(c.strip() for c in row):
                problems["lines without exactly 2 columns"].append(line)
        index, found, more, extra = _match(path, expected_ids, body)
        labels = torch.full((len(index),), INVALID, dtype=torch.int64)
        bad = []
        for i, text in found.items():
            label = strict_int(text)
            if label is None or not 0 <= label < self.num_classes:
                bad.append(i)
            else:
                labels[index[i]] = label
        problems.update(more)
        if bad:
            problems[f"labels not an integer in 0..{self.num_classes - 1}"] = bad
        return Parsed(labels, dict(problems), extra)


@dataclass(frozen=True)
class JsonlAnswers:
    """JSON lines ``{"id": <int>, "answer": <answer>}``, one per test id. ``kind``: "text" (a
    string) or "ranking" (a list of ints, e.g. the position of each item); an answer longer than
    ``max_item_bytes`` (as JSON) or of the wrong type is invalid and scores 0."""

    kind: str = "text"
    max_item_bytes: int = 400
    suffix: str = ".jsonl"

    def __post_init__(self):
        if self.kind not in ("text", "ranking"):
            raise ValueError(f"kind must be 'text' or 'ranking', got {self.kind!r}")

    def cap_bytes(self, expected_ids) -> int:
        return len(np.asarray(expected_ids).reshape(-1)) * (self.max_item_bytes + 40) + 1024

    def _valid(self, answer) -> bool:
        if self.kind == "text":
            return isinstance(answer, str)
        return isinstance(answer, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in answer)

    def write(self, path, ids, answers) -> Path:
        ids = np.asarray(ids).reshape(-1)
        answers = list(answers)
        if len(ids) != len(answers):
            raise ValueError(f"ids and answers need the same length, got {len(ids)} and "
                             f"{len(answers)}")  # fmt: skip
        bad = next((a for a in answers if not self._valid(a)), None)
        if bad is not None:
            want = "strings" if self.kind == "text" else "lists of ints"
            raise ValueError(f"answers must be {want}, got {bad!r:.60}")
        lines = [json.dumps({"id": int(i), "answer": a}, ensure_ascii=False) + "\n"
                 for i, a in zip(ids.tolist(), answers)]  # fmt: skip
        return atomic_write(path, "".join(lines))

    def read(self, path, expected_ids) -> Parsed:
        """Answers (a list, None where invalid) in the order of ``expected_ids``."""
        path = Path(path)
        body, problems = [], defaultdict(list)
        for line, text in enumerate(read_text(path, self.cap_bytes(expected_ids)).splitlines(), 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError:
                row = None
            ok = isinstance(row, dict) and isinstance(row.get("id"), int) and "answer" in row
            if not ok or isinstance(row["id"], bool):
                problems["lines that are not {\"id\": <int>, \"answer\": ...}"].append(line)
                continue
            big = len(json.dumps(row["answer"], ensure_ascii=False).encode()) > self.max_item_bytes
            body.append((line, row["id"], None if big else row["answer"]))
        index, found, more, extra = _match(path, expected_ids, body)
        answers, bad = [None] * len(index), []
        for i, answer in found.items():
            if self._valid(answer):
                answers[index[i]] = answer
            else:
                bad.append(i)
        problems.update(more)
        if bad:
            problems[f"answers that are not {self.kind} of at most {self.max_item_bytes} bytes"] = bad
        return Parsed(answers, dict(problems), extra)
