"""The command-line tools refuse bad arguments while parsing: a usage error (exit 2) naming the
option, the value and what is allowed, before any model is loaded or trained (issue 31)."""

import argparse
import json

import pytest

from ftnotes import bench, lm_bench, pretrain, pretrain_lm

LONG_NAME = "r" * 300 + ".json"  # a file name longer than any file system allows (255 bytes)


@pytest.fixture
def ran(monkeypatch):
    """Replace every tool's work with a recorder: nothing may run after a refused argument."""
    calls = []
    fake = {"source_before": {"copy": 1.0}, "runs": [], "seeds": 1, "n_train": 1, "steps": 1, "lr": {}}

    def record(name, result=None):
        return lambda *a, **k: calls.append(name) or result

    monkeypatch.setattr(bench, "run_bench", record("bench", {"results": []}))
    monkeypatch.setattr(bench, "to_markdown", lambda payload: "")
    monkeypatch.setattr(lm_bench, "bench", record("lm_bench", fake))
    monkeypatch.setattr(pretrain, "build", record("pretrain"))
    monkeypatch.setattr(pretrain_lm, "build", record("pretrain_lm"))
    return calls


def refused(main, argv, capsys, *needles):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "usage:" in err and all(n in err for n in needles), err
    return err


# ---- the output path, checked before the run ---------------------------------------------------


def test_lm_bench_json_into_a_missing_folder_is_created_not_lost(ran, tmp_path, capsys):
    target = tmp_path / "missing" / "deeper" / "lm.json"
    assert lm_bench.main(["--json", str(target), "--seeds", "1"]) == 0
    assert ran == ["lm_bench"] and json.loads(target.read_text())["seeds"] == 1
    assert [p.name for p in target.parent.iterdir()] == ["lm.json"]  # no temp file left


@pytest.mark.parametrize("tool", [bench.main, lm_bench.main], ids=["bench", "lm_bench"])
def test_json_under_proc_is_refused(ran, capsys, tool):
    # as root os.access says /proc is writable; a real probe file says it is not
    refused(tool, ["--json", "/proc/x.json"], capsys, "argument --json: '/proc/x.json'", "cannot write there")
    assert not ran


@pytest.mark.parametrize("tool", [bench.main, lm_bench.main], ids=["bench", "lm_bench"])
def test_a_300_character_file_name_is_refused_not_a_crash(ran, capsys, tmp_path, tool):
    refused(tool, ["--json", str(tmp_path / LONG_NAME)], capsys, "argument --json", "305 bytes long", "allow 255")
    assert not ran


def test_a_device_is_not_replaced_by_the_results(ran, capsys):
    refused(lm_bench.main, ["--json", "/dev/null"], capsys, "'/dev/null'", "not a regular file")
    assert not ran


def test_bench_markdown_path_is_checked_too(ran, capsys, tmp_path):
    refused(bench.main, ["--markdown", str(tmp_path / LONG_NAME)], capsys, "argument --markdown")
    assert not ran


# ---- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tool, argv", [
    (lm_bench.main, []), (pretrain.main, ["--verify"]), (pretrain_lm.main, []), (bench.main, []),
], ids=["lm_bench", "pretrain --verify", "pretrain_lm", "bench"])  # fmt: skip
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_threads_must_be_a_positive_int(ran, capsys, tool, argv, value):
    refused(tool, [*argv, "--threads", value], capsys,
            f"argument --threads: torch threads must be an int >= 1, got {value!r}")
    assert not ran


@pytest.mark.parametrize("option, value", [("--seeds", "0"), ("--n-train", "0"), ("--steps", "0"),
                                           ("--seeds", "-2"), ("--n-train", "1.5")])  # fmt: skip
def test_lm_bench_counts_must_be_positive(ran, capsys, option, value):
    refused(lm_bench.main, [option, value], capsys, f"argument {option}: must be an int >= 1, got {value!r}")
    assert not ran


@pytest.mark.parametrize("value, why", [(",", "no name"), ("", "no name"), ("lora,loraa", "unknown ['loraa']")])
def test_lm_bench_methods_must_name_a_method(ran, capsys, value, why):
    err = refused(lm_bench.main, ["--methods", value], capsys, f"argument --methods: {value!r} has {why}")
    assert "scratch, full, lora, prompt, prefix, prefix_mlp" in err
    assert not ran


@pytest.mark.parametrize("value", ["full=inf", "full=-inf", "full=nan", "full=0", "full=-1e-3"])
def test_lm_bench_rate_must_be_finite_and_positive(ran, capsys, value):
    refused(lm_bench.main, ["--lr", value], capsys, f"argument --lr: {value!r}", "RATE a finite number > 0")
    assert not ran


def test_lm_bench_passes_the_parsed_arguments(ran, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(lm_bench, "bench", lambda *a: seen.setdefault("args", a) and None)
    monkeypatch.setattr(lm_bench, "summary", lambda r: [])
    monkeypatch.setattr(lm_bench, "markdown", lambda rows, r: "")
    lm_bench.main(["--methods", " lora , full,lora", "--seeds", "2", "--lr", "lora=5e-3", "--lr", "full=1e-3"])
    assert seen["args"] == (("lora", "full"), 2, lm_bench.N_TRAIN, lm_bench.STEPS, {"lora": 5e-3, "full": 1e-3})


@pytest.mark.parametrize("option, value, allowed", [
    ("--steps", "0", "must be an int >= 1"), ("--batch-size", "0", "must be an int >= 1"),
    ("--lr", "-1", "must be a finite number > 0"), ("--lr", "inf", "must be a finite number > 0"),
    ("--seed", "-1", "must be an int >= 0"),
])  # fmt: skip
def test_pretrain_lm_numbers_are_usage_errors(ran, capsys, option, value, allowed):
    refused(pretrain_lm.main, [option, value], capsys, f"argument {option}: {allowed}, got {value!r}")
    assert not ran


@pytest.mark.parametrize("option, value", [("--epochs", "0"), ("--samples-per-epoch", "0"),
                                           ("--seed", "-1"), ("--handwriting", "-5")])  # fmt: skip
def test_pretrain_numbers_are_usage_errors(ran, capsys, option, value):
    refused(pretrain.main, ["--verify", option, value], capsys, f"argument {option}", repr(value))
    assert not ran


@pytest.mark.parametrize("option", ["--seeds", "--epochs", "--jobs"])
def test_bench_counts_must_be_positive(ran, capsys, option):
    refused(bench.main, [option, "0"], capsys, f"argument {option}: must be an int >= 1, got '0'")
    assert not ran


# ---- the type functions themselves --------------------------------------------------------------


def test_type_functions():
    from ftnotes import cli

    assert cli.positive_int("3") == 3 and cli.nonnegative_int("0") == 0 and cli.threads("2") == 2
    assert cli.positive_float("3e-3") == 3e-3
    for fn, bad in ((cli.positive_int, "0"), (cli.positive_int, "1e3"), (cli.nonnegative_int, "-1"),
                    (cli.positive_float, "nan"), (cli.positive_float, "-inf"), (cli.threads, "")):  # fmt: skip
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            fn(bad)
    assert cli.names(["a", "b"])("b, a,b") == ("b", "a")
    assert cli.name_rate(["a"])("a=1e-2") == ("a", 1e-2)
    with pytest.raises(argparse.ArgumentTypeError):
        cli.name_rate(["a"])("a=inf")
