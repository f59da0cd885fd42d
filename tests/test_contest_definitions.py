"""The text task "definitions": WordNet boards disjoint from every public split, answers as JSON
lines scored by macro-F1 item by item, and the hidden rows out of the graded kernel's reach."""

import json

import grade_attacks as A
import pytest
import torch

from ftnotes import contest
from ftnotes.artifacts import REPO_DATA_DIR
from ftnotes.contest.core import BOARDS, ID_OFFSET, Secret
from ftnotes.contest.tasks import definitions as D
from ftnotes.grade import ROOT, grade
from ftnotes.text import ABSTRACT, load_definitions, load_hidden

TASK = contest.get_task("definitions")


def test_registered_with_its_format_and_private_file():
    assert TASK is D.TASK and TASK.num_classes is None and TASK.format.kind == "text"
    assert TASK.submission.endswith(".jsonl") and "public-data rule" in TASK.statement
    assert REPO_DATA_DIR / "wordnet" / "hidden.tsv" in TASK.private_files


def test_public_split_and_boards_are_disjoint_and_shuffled_by_the_secret():
    public, y = TASK.build(0, "public")
    assert len(public.train[0]) == 660 and len(public.val[0]) == 240 and len(y) == 900
    assert isinstance(public.test_x, list) and public.extra["label_names"] == ABSTRACT
    seen = set(public.train[0]) | set(public.val[0]) | set(public.test_x)
    secret = Secret.new()
    boards = {}
    for board in BOARDS:
        data, yb = TASK.build(0, board, secret)
        assert len(data.test_x) == len(yb) == 240 and data.test_ids.min() == ID_OFFSET[board]
        assert not set(data.test_x) & seen, f"a {board} definition is also public"
        boards[board] = set(data.test_x)
        again, y2 = TASK.build(1, board, Secret(secret.key))
        assert again.test_x == data.test_x and torch.equal(yb, y2)  # the secret fixes the order
        assert torch.bincount(yb).tolist() == [40] * 6
    assert not boards["live"] & boards["final"]
    other, _ = TASK.build(0, "live", Secret.new())
    assert other.test_x != TASK.build(0, "live", secret)[0].test_x  # another secret, another order
    rows = load_hidden(ABSTRACT, "hidden_live")
    assert set(rows.texts) == boards["live"]


def test_score_reads_names_and_counts_an_invalid_answer_as_a_miss():
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    names = list(ABSTRACT)
    assert TASK.score(names, y)["score"] == 1.0
    assert TASK.score(y.tolist(), y)["score"] == 1.0  # label indices too
    half = TASK.score(names[:3] + [None, "dog", "Feeling"], y)
    assert half["accuracy"] == pytest.approx(0.5) and half["score"] == pytest.approx(0.5)


def test_a_jsonl_submission_is_scored_item_by_item(tmp_path):
    ids, y = TASK.answers("public")
    names = [ABSTRACT[i] for i in y.tolist()]
    path = TASK.write_submission(ids, names, tmp_path / TASK.submission)
    assert json.loads(path.read_text().splitlines()[0]) == {"id": int(ids[0]), "answer": names[0]}
    assert TASK.score_file(path, ids, y)["score"] == 1.0
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({"id": int(ids[1]), "answer": "a category"})
    path.write_text("\n".join(lines[:-1]) + "\n")  # one wrong name, one line missing
    result = TASK.score_file(path, ids, y)
    assert result["accuracy"] == pytest.approx(1 - 2 / len(ids))
    # the missing line is invalid for the format; the unknown name is a string, read, then a miss
    assert "1 of 900 items scored 0: 1 missing ids" in result["note"]
    with pytest.raises(ValueError, match="answers must be strings"):
        TASK.write_submission(ids[:1], [3], tmp_path / "x.jsonl")


def test_a_solution_sees_the_public_rows_only_through_the_task():
    data = TASK.load()
    public = load_definitions(ABSTRACT, "test")
    assert sorted(data.test_x) == sorted(public.texts) and data.split == "public"


# the hidden rows through the files that hold them, the loader, and git's copy of every version
READ_HIDDEN_ROWS = [
    "import subprocess\nfrom ftnotes.contest import get_task\n"
    "from ftnotes.contest.tasks.definitions import PRIVATE_FILES\n"
    "from ftnotes.text import ABSTRACT, load_hidden\n"
    "task = get_task('definitions')\ndata = task.load()\ntried = []\n"
    "for f in PRIVATE_FILES:\n"
    "    try:\n"
    "        tried.append((str(f), len(open(f, 'rb').read())))\n"
    "    except OSError as err:\n"
    "        tried.append((str(f), repr(err)))\n"
    "try:\n"
    "    tried.append(('load_hidden', len(load_hidden(ABSTRACT, 'hidden_live').texts)))\n"
    "except Exception as err:\n"
    "    tried.append(('load_hidden', repr(err)[:120]))\n"
    "git = subprocess.run(['git', '-C', {root!r}, 'show', 'HEAD:data/wordnet/hidden.tsv'],\n"
    "                     capture_output=True, text=True)\n"
    "tried.append(('git show', len(git.stdout), git.stderr[:120]))\n"
    "task.write_submission(data.test_ids, ['act'] * len(data.test_ids))\n"
    "leaked = [t for t in tried if isinstance(t[1], int) and t[1] > 0]\n"
    "assert leaked, f'no hidden row reachable: {{tried}}'",
]


@A.needs_sandbox
def test_the_hidden_rows_are_out_of_the_graded_kernels_reach(tmp_path, monkeypatch):
    monkeypatch.setenv("FTNOTES_GRADE_HISTORY", str(tmp_path / "history.jsonl"))
    path = A.write(tmp_path / "attack.ipynb", READ_HIDDEN_ROWS, root=str(ROOT))
    report = grade("definitions", path, time_limit_s=120, quiet=True)
    assert report.status != "scored" and report.score is None
    assert "no hidden row reachable" in report.message, report.message


def test_the_sandbox_masks_the_private_files_and_the_git_folders(tmp_path):
    from ftnotes.grade import sandbox

    args = sandbox.mounts(ROOT, tmp_path / "work", tmp_path / "nb.ipynb", TASK.private_files)
    hidden = (REPO_DATA_DIR / "wordnet" / "hidden.tsv").resolve()
    pairs = list(zip(args, args[1:], args[2:]))
    assert ("--ro-bind", "/dev/null", str(hidden)) in pairs
    gits = sandbox.git_dirs(ROOT)
    if (ROOT / ".git").exists():  # a clone or a worktree (not an unpacked wheel)
        assert gits and all(("--tmpfs", str(d)) in zip(args, args[1:]) for d in gits
                            if not any(e != d and e in d.parents for e in gits))  # fmt: skip
    # the masks come after the re-mounts of what the kernel needs, before the working folder
    assert args.index(str(hidden)) < args.index(str(tmp_path / "work"))
