"""Root pytest hooks: a per-notebook wall-time summary at the end of every run.

nbval reports one test item per cell; students and reviewers care about whole notebooks
("each notebook <= 60 s"), so the cells' setup+call+teardown times are summed per file.
"""

from collections import defaultdict

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook wall times (all cells, seconds)")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f}  {path}")
    total = sum(_notebook_seconds.values())
    terminalreporter.write_line(f"{total:7.1f}  total over {len(_notebook_seconds)} notebooks")
