"""The grader: starter notebooks score their documented baseline; every failure has a reason."""

import json

import nbformat
import pytest

from ftnotes import contest
from ftnotes.grade import ROOT, grade, main, read_history


@pytest.fixture(autouse=True)
def history(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    monkeypatch.setenv("FTNOTES_GRADE_HISTORY", str(path))
    return path


def notebook(tmp_path, *sources, name="nb.ipynb"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("name", contest.task_names())
def test_starter_notebook_scores_its_documented_baseline(name, history):
    task = contest.get_task(name)
    report = grade(name, ROOT / "notebooks" / "practice" / f"{name}.ipynb", quiet=True)
    assert report.status == "scored", report.message
    assert report.score == pytest.approx(task.baseline_score, abs=0.02)
    assert report.points < 5
    assert report.overhead_s < 15
    assert read_history()[-1]["score"] == report.score


def test_time_limit_names_the_running_cell(tmp_path):
    path = notebook(tmp_path, "x = 1", "import time\ntime.sleep(30)")
    report = grade("far_sprint", path, time_limit_s=2, quiet=True)
    assert report.status == "time limit exceeded" and report.score is None
    assert "code cell 2 (`import time`)" in report.message


def test_exception_names_the_cell_and_error(tmp_path):
    report = grade("far_sprint", notebook(tmp_path, "x = 1", "raise KeyError('boom')"),
                   time_limit_s=20, quiet=True)  # fmt: skip
    assert report.status == "error" and report.score is None
    assert "code cell 2" in report.message and "KeyError" in report.message


def test_hidden_split_is_served_and_bad_submissions_are_explained(tmp_path, history):
    # the kernel sees the hidden split; a file with the wrong rows is rejected with ids named
    writes_public_ids = notebook(tmp_path, (
        "import os\nfrom ftnotes.contest import get_task\n"
        "assert os.environ['FTNOTES_CONTEST_SPLIT'] == 'hidden'\n"
        "assert os.environ['HF_HUB_OFFLINE'] == '1'\n"
        "task = get_task('far_sprint')\ndata = task.load()\nassert data.split == 'hidden'\n"
        "task.write_submission(data.test_ids[:5], data.test_ids[:5] * 0)"))  # fmt: skip
    report = grade("far_sprint", writes_public_ids, time_limit_s=30, quiet=True)
    assert report.status == "bad submission", report.message
    assert "missing ids" in report.message and report.score is None
    nothing = grade("far_sprint", notebook(tmp_path, "x = 1", name="n2.ipynb"), time_limit_s=20,
                    quiet=True)  # fmt: skip
    assert nothing.status == "bad submission" and "not written" in nothing.message
    assert [r["status"] for r in read_history()] == ["bad submission"] * 2
    assert json.loads(history.read_text().splitlines()[0])["task"] == "far_sprint"


def test_bad_arguments_say_what_is_wrong(tmp_path, capsys):
    with pytest.raises(ValueError, match="far_sprint.*got 'nope'"):
        grade("nope", tmp_path / "x.ipynb")
    with pytest.raises(ValueError, match="does not exist"):
        grade("far_sprint", tmp_path / "missing.ipynb")
    (tmp_path / "text.ipynb").write_text("print('hello')")
    with pytest.raises(ValueError, match="is not a Jupyter notebook"):
        grade("far_sprint", tmp_path / "text.ipynb")
    assert main(["nope", str(tmp_path / "x.ipynb")]) == 2
    assert "task must be one of" in capsys.readouterr().err
