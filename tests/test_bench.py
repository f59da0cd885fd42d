"""``python -m ftnotes.bench``: a fast smoke run checks the JSON schema; bad names fail clearly."""

import json

import pytest
import torch

from ftnotes import bench, recipes
from ftnotes.data import load_task
from ftnotes.recipes import METHODS, get_recipe


def test_smoke_run_writes_the_documented_schema(tmp_path, capsys, small_source):
    json_path, md_path = tmp_path / "out" / "bench.json", tmp_path / "bench.md"
    argv = ["--methods", "scratch_cnn,linear_probe", "--labels-per-class", "2", "--epochs", "1",
            "--json", str(json_path), "--markdown", str(md_path), "--jobs", "1"]  # fmt: skip
    assert bench.main(argv) == 0
    payload = json.loads(json_path.read_text())
    for key in ("task", "labels_per_class", "seeds", "device", "torch", "backbone", "results"):
        assert key in payload
    assert payload["task"] == "digits" and payload["labels_per_class"] == 2
    assert payload["seeds"] == 1 and payload["torch"] == torch.__version__
    assert (
        0 < payload["backbone"]["source_test_acc"] <= 1 and "dim" in payload["backbone"]["config"]
    )
    rows = {r["method"]: r for r in payload["results"]}
    assert list(rows) == ["scratch_cnn", "linear_probe"]
    for r in rows.values():
        assert set(bench.RESULT_KEYS) <= set(r)
        assert 0 <= r["target_test_acc"] <= 1 and r["target_test_acc_std"] == 0.0
        assert 0 < r["trainable_params"] <= r["total_params"]
        assert r["train_seconds"] > 0 and r["latency_ms"] > 0 and r["checkpoint_bytes"] > 0
    assert rows["scratch_cnn"]["source_test_acc"] is None
    assert 0 <= rows["linear_probe"]["source_test_acc"] <= 1
    probe = rows["linear_probe"]
    dim = payload["backbone"]["config"]["dim"]
    assert probe["trainable_params"] == probe["head_params"] == dim * 10 + 10
    table = md_path.read_text()
    assert "| linear_probe |" in table and "| scratch_cnn |" in table
    assert table in capsys.readouterr().out


def test_unknown_method_lists_the_names(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--methods", "lora,fullft"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "'fullft'" in err and all(m in err for m in METHODS)
    with pytest.raises(ValueError, match="method must be one of scratch, scratch_cnn"):
        bench.run_bench(methods=["nope"])


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="labels_per_class must be 'all' or an int >= 1, got 'x'"):
        bench.parse_labels("x")
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['rr'\] for method 'lora'"):
        get_recipe("lora", rr=8)
    assert get_recipe("lora", r=8)["r"] == 8 and recipes.RECIPES["lora"]["r"] == 4
    with pytest.raises(ValueError, match="seeds must be an int >= 1"):
        bench.run_bench(methods=["lora"], seeds=0)


def test_unwritable_output_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: ran.append(1))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for flag, path, why in (("--json", blocker / "out.json", "is not a folder"),
                            ("--markdown", tmp_path, "is a folder, not a file"),
                            ("--json", "/proc/x.json", "cannot write there")):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            bench.main([flag, str(path)])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and f"argument {flag}: '{path}'" in err and why in err
    assert not ran  # refused before any training


def test_threads_are_pinned_during_the_run_and_restored(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(bench, "run_bench", lambda *a, **k: seen.append(torch.get_num_threads())
                        or {"results": []})  # fmt: skip
    monkeypatch.setattr(bench, "to_markdown", lambda payload: "")
    before = torch.get_num_threads()
    assert bench.main([]) == 0 and seen == [1]  # the default: one thread
    assert bench.main(["--threads", "2"]) == 0 and seen[-1] == 2
    assert torch.get_num_threads() == before
    with pytest.raises(SystemExit):
        bench.main(["--threads", "0"])
    assert "argument --threads: torch threads must be an int >= 1, got '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--jobs", "0"])
    assert "argument --jobs: must be an int >= 1, got '0'" in capsys.readouterr().err


def test_two_jobs_give_the_numbers_of_one():
    # every run is seeded on its own, so running two at a time in worker processes changes
    # the wall time, not the results
    kw = dict(methods=["linear_probe", "lora"], labels_per_class=2, seeds=2, epochs=2)
    one, two = bench.run_bench(jobs=1, **kw), bench.run_bench(jobs=2, **kw)
    assert two["jobs"] == 2 and [r["method"] for r in two["results"]] == ["linear_probe", "lora"]
    for a, b in zip(one["results"], two["results"]):
        assert a["per_seed_test_acc"] == b["per_seed_test_acc"]
        assert a["source_test_acc"] == b["source_test_acc"] and a["val_acc"] == b["val_acc"]


def test_lora_merge_latency_only_when_asked(small_source):
    task = load_task("digits", labels_per_class=2)
    _, plain = recipes.run_method("lora", task, epochs=1)
    _, timed = recipes.run_method("lora", task, epochs=1, merge_latency=True)
    for rec in (plain, timed):  # merging is always checked, it is cheap
        assert rec.extra["merge_max_abs_diff"] < 1e-4 and rec.extra["disabled_equals_base"]
    assert "merged_latency_ratio" not in plain.extra
    assert timed.extra["merged_latency_ratio"] > 0 and timed.extra["latency_ms_bare"] > 0
