"""Every attack of issue 30 fails in the grader's sandbox: no hidden label is reachable, the
history and the files outside the working folder stay untouched, no process outlives the
grading, the network is out of reach (the attacking notebooks: tests/grade_attacks.py)."""

import json
import os
import time
import uuid
from pathlib import Path

import grade_attacks as A
import pytest

from ftnotes import contest
from ftnotes.grade import ROOT, grade

pytestmark = A.needs_sandbox


@pytest.fixture
def history(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    monkeypatch.setenv("FTNOTES_GRADE_HISTORY", str(path))
    return path


@pytest.fixture
def token():
    return f"ftnotes-attack-{uuid.uuid4().hex[:12]}"


def alive(token: str) -> list[int]:
    """Processes (outside any sandbox view: this test's /proc) whose command line has ``token``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and token.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def run(tmp_path, cells, task="far_sprint", limit=120, **fill):
    path = A.write(tmp_path / "attack.ipynb", cells, **fill)
    return grade(task, path, time_limit_s=limit, quiet=True)


def no_score(report):
    assert report.status != "scored" and report.score is None and report.points is None


def test_answers_of_the_hidden_split_are_refused(tmp_path, history):
    report = run(tmp_path, A.ANSWERS)
    no_score(report)
    assert "exists only in the grader's process" in report.message


def test_building_the_hidden_split_is_refused(tmp_path, history):
    report = run(tmp_path, A.BUILD_HIDDEN, task="frozen_extend")
    no_score(report)
    assert "exists only in the grader's process" in report.message


def test_a_split_built_with_a_forged_secret_scores_at_chance(tmp_path, history):
    task = contest.get_task("frozen_extend")
    report = run(tmp_path, A.BUILD_FORGED_SECRET, task="frozen_extend")
    assert report.status == "scored"  # a valid file, but other glyphs in another order
    assert report.score < 0.1 and report.points == 0 < task.baseline_score["live"]


def test_regenerated_glyphs_and_byte_exact_lookup_find_nothing(tmp_path, history):
    report = run(tmp_path, A.REGENERATE, task="new_digits", limit=240)
    no_score(report)
    assert "byte-exact lookup matched 0 of" in report.message


def test_proc_shows_neither_the_grader_nor_its_environment(tmp_path, history):
    report = run(tmp_path, A.PROC_ENVIRON, grader_pid=os.getpid())
    no_score(report)
    assert "no process shows the history variable; grader visible: False" in report.message


def test_the_history_cannot_be_forged(tmp_path, history):
    report = run(tmp_path, A.WRITE_HISTORY, history=str(history), root=str(ROOT))
    no_score(report)
    assert "the history could not be written" in report.message
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert [r["name"] for r in lines] == [str(tmp_path / "attack.ipynb")]  # the grader's only


def test_nothing_outside_the_working_folder_can_be_written(tmp_path, history, token):
    outside = tmp_path / f"pwned_{token}"
    report = run(tmp_path, A.WRITE_OUTSIDE, outside=str(outside), root=str(ROOT), token=token)
    no_score(report)
    assert "nothing outside the working folder could be written" in report.message
    for path in (outside, ROOT / f"pwned_{token}", Path("/tmp") / f"pwned_{token}",
                 Path("/var/tmp") / f"pwned_{token}", Path.home().parent / f"pwned_{token}"):  # fmt: skip
        assert not path.exists(), path


def test_a_detached_child_dies_with_the_sandbox(tmp_path, history, token):
    report = run(tmp_path, A.DETACHED_CHILD, history=str(history), token=token)
    assert report.status == "scored"  # the notebook itself was fine
    assert alive(token) == []  # the child was killed when the kernel was
    time.sleep(5)  # when the child would have written
    assert token not in history.read_text() and len(history.read_text().splitlines()) == 1


def test_a_child_ignoring_sigterm_is_killed_at_the_time_limit(tmp_path, history, token):
    start = time.perf_counter()
    report = run(tmp_path, A.IGNORES_SIGTERM, limit=8, token=token)
    wall = time.perf_counter() - start
    assert report.status == "time limit exceeded" and "code cell 2" in report.message
    assert 8 <= report.seconds < 8 + 1.0  # killed at the deadline, not at the next cell
    assert wall <= report.seconds + report.overhead_s + 0.5  # the overhead reported is the real one
    assert report.overhead_s < 15
    assert alive(token) == []


def test_the_network_is_unreachable(tmp_path, history):
    report = run(tmp_path, A.NETWORK)
    no_score(report)
    assert "ConnectionError" in report.message and "reached" not in report.message


def test_memory_beyond_the_cap_is_refused(tmp_path, history):
    path = A.write(tmp_path / "attack.ipynb", A.MEMORY)
    report = grade("far_sprint", path, time_limit_s=120, memory_limit_gb=1, quiet=True)
    no_score(report)
    assert "MemoryError" in report.message


def test_a_symlinked_submission_is_not_read(tmp_path, history):
    report = run(tmp_path, A.SYMLINK)
    assert report.status == "bad submission" and "not a regular file" in report.message
    assert "root:" not in report.message
