"""python -m ftnotes.text.bench: argument checks before any work, the JSON written atomically."""

import json

import pytest

from ftnotes.artifacts import WeightsError
from ftnotes.text import bench
from ftnotes.text.encoder import model_dir

try:
    model_dir(verify=False)
    HAVE_MODEL = True
except WeightsError:
    HAVE_MODEL = False


@pytest.mark.parametrize("argv, words", [
    (["--categories", "act,nonsense"], "--categories must be"),
    (["--categories", "act"], "--categories must be"),
    (["--methods", "lora,prefix"], "--methods must be"),
    (["--methods", ","], "--methods must be"),
    (["--lr", "lora=0"], "--lr must be METHOD=RATE"),
    (["--lr", "lora=inf"], "--lr must be METHOD=RATE"),
    (["--lr", "probe=1e-3"], "--lr must be METHOD=RATE"),
    (["--lr", "lora"], "--lr must be METHOD=RATE"),
    (["--seeds", "0"], "--seeds must be an int in"),
    (["--per-class", "111"], r"--per-class must be an int in \[1, 110\]"),
    (["--epochs", "0"], "--epochs must be"),
    (["--threads", "0"], "--threads: torch threads must be an int from 1"),
    (["--r", "0"], "--r must be"),
    (["--split", "train"], "--split must be one of"),
    (["--split", "hidden_live"], "--split must be one of"),
])  # fmt: skip
def test_bad_arguments_are_usage_errors(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    assert pytest.importorskip("re").search(words, capsys.readouterr().err)


def test_json_paths_are_checked_before_running(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--json", str(tmp_path)])
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    with pytest.raises(SystemExit):
        bench.main(["--json", str(tmp_path / "a-file" / "x.json")])
    assert "is not a folder" in capsys.readouterr().err


def test_groups_and_lists():
    assert bench.parse_categories("concrete") == ("animal", "plant", "food", "artifact")
    assert bench.parse_categories("act, state") == ("act", "state")
    assert bench.parse_methods("tfidf,tfidf,probe") == ["tfidf", "probe"]
    assert bench.parse_lr(["full=2e-4", "lora=1e-3"]) == {"full": 2e-4, "lora": 1e-3}


@pytest.mark.skipif(not HAVE_MODEL, reason="all-MiniLM-L6-v2 not obtained")
def test_a_small_bench_writes_its_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--methods", "tfidf", "--seeds", "2", "--per-class", "10", "--json",
                       str(out)]) == 0
    payload = json.loads(out.read_text())
    assert [r["seed"] for r in payload["runs"]] == [0, 1]
    assert payload["per_class"] == 10 and payload["command"] == bench.COMMAND
    assert "| tfidf |" in capsys.readouterr().out


def test_tfidf_baseline_is_the_notebooks_pipeline():
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from ftnotes.text import ABSTRACT, load_definitions, methods

    train = load_definitions(ABSTRACT, "train", per_class=20)
    test = load_definitions(ABSTRACT, "validation")
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    clf = LogisticRegression(C=methods.TFIDF_C, max_iter=3000).fit(vec.fit_transform(train.texts),
                                                                   train.labels)  # fmt: skip
    pred, trainable = methods.run_baseline("tfidf", train, test)
    assert np.array_equal(pred, clf.predict(vec.transform(test.texts)))
    assert trainable == clf.coef_.size + clf.intercept_.size
