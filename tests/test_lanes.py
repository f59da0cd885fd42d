"""``tools/lanes.py``, which ``make test`` runs: two pytest lanes side by side, every line shown
after its lane's name, a failing lane fails the run once both have finished."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lanes", ROOT / "tools" / "lanes.py")
lanes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lanes)


def test_arguments():
    assert lanes.parse(["--", "-x", "-k", "a"]) == (2, ["-x", "-k", "a"])
    assert lanes.parse(["--lanes", "1", "--", "-q"]) == (1, ["-q"])
    assert lanes.parse([]) == (2, [])
    with pytest.raises(SystemExit, match="--lanes must be 1 or 2, got '3'"):
        lanes.parse(["--lanes", "3"])


def _project(tmp_path, panels_pass=True):
    """A folder shaped like the repository: notebooks/, tests/ with the notebook tests."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_unit.py").write_text("def test_unit():\n    assert True\n")
    for name in lanes.NOTEBOOK_TESTS:
        ok = panels_pass or "panels" not in name
        (tmp_path / name).write_text(f"def test_it():\n    assert {ok}\n")
    return tmp_path


def _run(folder, *args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "lanes.py"), *args], cwd=folder,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_both_lanes_run_their_own_tests_and_pass(tmp_path):
    run = _run(_project(tmp_path), "--", "-v", "-p", "no:cacheprovider")
    assert run.returncode == 0, run.stdout
    lines = run.stdout.splitlines()
    assert any(s.startswith("    units | ") and "test_unit.py::test_unit PASSED" in s for s in lines)
    for name in lanes.NOTEBOOK_TESTS:
        assert any(s.startswith("notebooks | ") and f"{name}::test_it PASSED" in s for s in lines)
    assert not any("units | " in s and "test_panels" in s for s in lines)  # run once, not twice
    assert "== lane units: pytest exit 0" in run.stdout
    assert "== lane notebooks: pytest exit 0" in run.stdout


def test_a_failing_lane_fails_the_run_after_both_finish(tmp_path):
    run = _run(_project(tmp_path, panels_pass=False), "--", "-p", "no:cacheprovider")
    assert run.returncode == 1, run.stdout
    assert "== lane notebooks: pytest exit 1" in run.stdout
    assert "== lane units: pytest exit 0" in run.stdout  # the other lane still ran to its end


def test_one_lane_runs_everything(tmp_path):
    run = _run(_project(tmp_path), "--lanes", "1", "--", "-v", "-p", "no:cacheprovider")
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(" PASSED") == 1 + len(lanes.NOTEBOOK_TESTS)
    assert "== lane all: pytest exit 0" in run.stdout


def test_the_notebook_lanes_paths_exist():
    # the units lane is tests/ without them, so every other test file runs there, once
    for path in lanes.LANES["notebooks"]:
        assert (ROOT / path).exists(), path
