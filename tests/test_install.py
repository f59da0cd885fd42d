"""Installed, not only cloned: a non-editable ``pip install .`` carries the weights and finds them.

The package is built from a copy of the sources (so no build/ or egg-info lands in the clone) and
installed into a fresh virtual environment that reuses this one's torch & co. through a ``.pth``
line (``--system-site-packages`` alone would see the base interpreter, not this venv). Then a
script run from another folder imports the installed copy, loads the pretrained weights, and
checks that the regenerate command would not write into site-packages. The models obtained from
PyPI packages are not in the wheel (only their manifests): ``python -m ftnotes.obtain --check``
finds none in the fresh home's cache and names the command. About 10-20 s.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import ftnotes, ftnotes.checkpoints as c
model = c.load_pretrained()
printed = c.load_pretrained(c.PRINTED_WEIGHTS)  # the glyphs-only backbone of two contest tasks
from ftnotes.lm.model import load_pretrained_lm, lm_path
lm, tok = load_pretrained_lm()  # the tiny LM folder travels too, checked against its manifest
print(json.dumps({"lm_dir": str(lm_path()), "lm_vocab": len(tok),
                  "lm_chat": tok.apply_chat_template([{"role": "user", "content": "copy ab"}],
                                                     tokenize=False, add_generation_prompt=True),
                  "package": ftnotes.__file__, "data_dir": str(c.DATA_DIR),
                  "in_clone": c.IN_CLONE, "regenerate": c.REGENERATE_COMMAND,
                  "head": model.head.out_features, "prefix": sys.prefix,
                  "printed": str(c.PRINTED_WEIGHTS), "printed_head": printed.head.out_features}))
from ftnotes import artifacts, obtain
print(json.dumps({"minilm_manifest": str(artifacts.manifest_path("minilm")),
                  "minilm_dir": str(artifacts.locate("minilm")),
                  "check": obtain.main(["--check"])}))
"""


def test_non_editable_install_carries_and_finds_its_weights(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("ftnotes", "data"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True)  # fmt: skip
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path"
                                   "('purelib'))"], capture_output=True, text=True,
                                  check=True).stdout.strip())  # fmt: skip
    # this venv's packages (torch, setuptools...), after the new venv's own site-packages
    ours = [p for p in {sysconfig.get_path("purelib"), *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "outer.pth").write_text("\n".join(ours) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-build-isolation", "--no-index", str(src)],
                   check=True, cwd=tmp_path)  # fmt: skip
    shutil.rmtree(src)  # nothing may still point to the sources
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([python, "-c", SCRIPT], capture_output=True, text=True, cwd=elsewhere,
                         env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-2])
    assert Path(got["package"]).is_relative_to(purelib), got["package"]
    assert not got["in_clone"] and Path(got["data_dir"]) == purelib / "ftnotes" / "_data"
    assert got["head"] == 34  # the glyph head: the shipped weights, checked against the manifest
    assert Path(got["printed"]).is_relative_to(purelib) and got["printed_head"] == 34
    assert Path(got["lm_dir"]) == purelib / "ftnotes" / "_data" / "tiny-lm" and got["lm_vocab"] == 43
    assert got["lm_chat"] == "<|user|>copy ab<|end|><|assistant|>"
    assert "--out" in got["regenerate"] and str(purelib) not in got["regenerate"]
    obtained = json.loads(run.stdout.strip().splitlines()[-1])
    data = purelib / "ftnotes" / "_data"
    assert Path(obtained["minilm_manifest"]) == data / "minilm.json"
    assert Path(obtained["minilm_dir"]) == tmp_path / ".cache" / "ftnotes" / "models" / "minilm"
    assert obtained["check"] == 1 and "Fix: `python -m ftnotes.obtain minilm`" in run.stderr
    assert not list(data.rglob("*.zip")) and sum(f.stat().st_size for f in data.rglob("*")) < 5e6
