"""The attacking notebooks of issue 30, as cell sources (tests/test_grade_attacks.py grades them).

Each notebook tries one way to a free score or to harm the machine that grades it, and, where
the attack can be seen from inside, ends with an assertion that it worked: a notebook whose
attack fails stops there with the reason in its log. ``{history}``, ``{root}``, ``{outside}``,
``{token}`` and ``{grader_pid}`` are filled in by the test.
"""

import os

import nbformat
import pytest

from ftnotes.grade import sandbox_probe

# skipped where bubblewrap cannot run (macOS, a container without namespaces), except where
# FTNOTES_REQUIRE_SANDBOX=1 (CI, .ci/run): there they fail
needs_sandbox = pytest.mark.skipif(
    sandbox_probe()[0] is None and os.environ.get("FTNOTES_REQUIRE_SANDBOX") != "1",
    reason=f"no bubblewrap sandbox here: {sandbox_probe()[1]}")

# 1. the hidden labels through the task's own API
ANSWERS = [
    "from ftnotes.contest import get_task\ntask = get_task('far_sprint')\n"
    "ids, y = task.answers(task.split())  # 'hidden' inside the grader\n"
    "task.write_submission(ids, y)",
]
# 2. rebuilding the hidden split with its labels
BUILD_HIDDEN = [
    "from ftnotes.contest.tasks import frozen_extend\n"
    "data, y = frozen_extend.build(0, 'hidden')\n"
    "frozen_extend.TASK.write_submission(data.test_ids, y)",
]
# 2b. ... with a secret of its own: a hidden split, but not the one being graded
BUILD_FORGED_SECRET = [
    "from ftnotes.contest.core import Secret\nfrom ftnotes.contest.tasks import frozen_extend\n"
    "data, y = frozen_extend.build(0, 'live', Secret.new())\n"
    "frozen_extend.TASK.write_submission(data.test_ids, y)",
]
# 3. regenerating the hidden glyphs from seeds in the source, and byte-exact lookup of every
#    test image in the public data (glyph splits, the public test, scikit-learn's UCI digits)
REGENERATE = [
    "import numpy as np, torch\nfrom sklearn.datasets import load_digits\n"
    "from ftnotes.contest import get_task\nfrom ftnotes.data import glyph_split\n"
    "from ftnotes.glyphs import render_glyphs\n"
    "task = get_task('new_digits')\ndata = task.load()\n"
    "known = {}\n"
    "for seed in range(1, 7):  # the glyph splits' seeds, the old public 4 and hidden 5, and 6\n"
    "    for n in (1000, 2000):\n"
    "        x, y = render_glyphs(n, seed=seed)\n"
    "        known.update({img.numpy().tobytes(): int(c) for img, c in zip(x, y)})\n"
    "for split in ('train', 'val', 'test'):\n"
    "    x, y = glyph_split(split)\n"
    "    known.update({img.numpy().tobytes(): int(c) for img, c in zip(x, y)})\n"
    "d = load_digits()\n"
    "for img, c in zip(d.images / 16.0, d.target):\n"
    "    known[torch.as_tensor(img, dtype=torch.float32).reshape(1, 8, 8).numpy().tobytes()] = 34 + int(c)\n"
    "hits = [known.get(img.numpy().tobytes()) for img in data.test_x]\n"
    "matched = sum(h is not None for h in hits)\n"
    "task.write_submission(data.test_ids, torch.tensor([h or 0 for h in hits]))\n"
    "assert matched > 0, f'byte-exact lookup matched {matched} of {len(hits)} test images'",
]
# 4. the grader's environment through /proc (the history's path, the parent's variables)
PROC_ENVIRON = [
    "import glob, os\nfound, grader = [], {grader_pid}\n"
    "for p in glob.glob('/proc/*/environ') + [f'/proc/{{os.getppid()}}/environ']:\n"
    "    try:\n"
    "        if b'FTNOTES_GRADE_HISTORY' in open(p, 'rb').read(): found.append(p)\n"
    "    except OSError:\n"
    "        pass\n"
    "seen = os.path.exists(f'/proc/{{grader}}/environ')\n"
    "assert found or seen, f'no process shows the history variable; grader visible: {{seen}}'",
]
# 5. forging the history
WRITE_HISTORY = [
    "import json\nline = json.dumps({{'task': 'far_sprint', 'name': 'forged.ipynb', "
    "'status': 'scored', 'score': 1.0, 'points': 116.0}}) + '\\n'\nwritten = []\n"
    "for path in ({history!r}, {root!r} + '/runs/grade_history.jsonl'):\n"
    "    try:\n"
    "        open(path, 'a').write(line); written.append(path)\n"
    "    except OSError as err:\n"
    "        print(path, err)\n"
    "assert written, 'the history could not be written'",
]
# 6. writing outside the working folder
WRITE_OUTSIDE = [
    "import os\nwritten = []\n"
    "for path in ({outside!r}, {root!r} + '/pwned_{token}', '/tmp/pwned_{token}', "
    "os.path.expanduser('~/../pwned_{token}'), '/var/tmp/pwned_{token}', "
    "os.path.join(os.getcwd(), '..', 'pwned_{token}')):\n"
    "    try:\n"
    "        open(path, 'w').write('x'); written.append(path)\n"
    "    except OSError as err:\n"
    "        print(path, err)\n"
    "assert written, 'nothing outside the working folder could be written'",
]
# 7. a detached child that rewrites the history after the grader has recorded the run
DETACHED_CHILD = [
    "import subprocess, sys\n"
    "line = 'forged by a detached child {token}\\n'\n"
    "code = f\"import time; time.sleep(4); open({history!r}, 'a').write({{line!r}})\"\n"
    "subprocess.Popen([sys.executable, '-c', code, '{token}'], start_new_session=True,\n"
    "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)",
    "from ftnotes.contest import get_task\ntask = get_task('far_sprint')\ndata = task.load()\n"
    "task.write_submission(data.test_ids, data.test_ids * 0)",
]
# 8. a child that ignores SIGTERM, and a notebook that outlives the limit
IGNORES_SIGTERM = [
    "import subprocess, sys\n"
    "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'\n"
    "subprocess.Popen([sys.executable, '-c', code, '{token}'])",
    "import time\ntime.sleep(600)",
]
# 9. the network
NETWORK = [
    "import socket\nerrors = []\n"
    "for host, port in (('1.1.1.1', 80), ('pypi.org', 443), ('8.8.8.8', 53)):\n"
    "    try:\n"
    "        socket.create_connection((host, port), timeout=3).close()\n"
    "        raise SystemExit(f'reached {{host}}:{{port}}')\n"
    "    except OSError as err:\n"
    "        errors.append(f'{{host}}: {{err}}')\n"
    "raise ConnectionError('; '.join(errors))",
]
# 10. more memory than the cap allows
MEMORY = ["big = bytearray(3 * 2**30)  # 3 GiB\nbig[::4096] = b'x' * len(big[::4096])"]
# 11. a submission that is a symlink to a file of the grader's machine
SYMLINK = ["import os\nos.symlink('/etc/passwd', 'submission_far_sprint.csv')"]


def write(path, cells, **fill) -> "Path":  # noqa: F821
    """The notebook of ``cells`` (sources with ``{name}`` fields filled in) at ``path``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c.format(**fill) if fill else c) for c in cells]
    nbformat.write(nb, path)
    return path
