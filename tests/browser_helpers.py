"""JupyterLab server and page helpers for tests/test_browser.py (kept apart so the test reads short).

The server runs from this project's interpreter on 127.0.0.1 with a token, a fresh settings,
workspaces, config and data dir (no news toast, no update check, no user kernels or extensions
leaking in) and serves a temporary copy of the notebooks, so the repository's notebooks are never
saved with outputs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# User settings written before start: the "Never" answers to the news and update questions that
# JupyterLab would otherwise ask in a toast; no "Select Kernel" dialog (it sometimes shows on a
# fresh server before the kernel specs arrive); "none" windowing keeps every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}


def find_chromium() -> str | None:
    """Path of the system Chromium (Debian's ``chromium`` package), or None."""
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 240  # per notebook at least: notebooks aim at about a minute on a 2-core laptop
TIMEOUT_BUDGETS = 3  # a notebook may take 3x its budget in reference steps before it times out


def _root_conftest():
    """The root conftest.py (budgets, the reference-step tool) loaded as a module."""
    spec = importlib.util.spec_from_file_location("_ftnotes_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_step_ms() -> float | None:
    """This machine's reference step now (tools/refstep.py, about 4 s), or None without it."""
    return _root_conftest().reference_step_ms()


def run_timeout_s(name: str, step_ms: float | None) -> float:
    """Seconds to wait for notebook ``name`` to run: TIMEOUT_BUDGETS times its budget in
    reference steps (the root conftest's, 8,000 for the real models' 10 and 11) at ``step_ms``,
    measured just before the run so that a busy moment gets more time; never less than
    RUN_TIMEOUT_S, and RUN_TIMEOUT_S without a measurement. A fixed 240 s failed on a busy
    machine (07, before it pinned its threads, took 340 s at load 4-8)."""
    if not step_ms:
        return float(RUN_TIMEOUT_S)
    budget = _root_conftest().budget_steps(name)
    return max(float(RUN_TIMEOUT_S), TIMEOUT_BUDGETS * budget * step_ms / 1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running ``jupyter lab`` serving ``root``; ``close()`` stops kernels and the process group."""

    def __init__(self, root: pathlib.Path, home: pathlib.Path, timeout: float = 90,
                 env: dict | None = None):  # fmt: skip
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        for name, values in LAB_SETTINGS.items():
            path = home / "settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(
            os.environ,
            JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            **(env or {}),  # the kernels inherit it
        )
        cmd = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
            f"--port={self.port}", "--port-retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.user_settings_dir={home / 'settings'}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
        ]  # fmt: skip
        if os.geteuid() == 0:  # CI containers run as root; jupyter refuses that unless told
            cmd.append("--allow-root")
        self.log_path = home / "jupyter-lab.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in close())
        # its own process group: close() can then end the server and anything it started
        self.proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited at start:\n{self.log()}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"jupyter lab did not answer in {timeout} s") from None
                time.sleep(0.3)

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def api(self, method: str, path: str):
        """A REST call on the server (token auth); returns the decoded JSON or None."""
        req = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def kernel_state(self, name: str) -> str | None:
        """``execution_state`` of the kernel of notebook ``name``'s session (None: no kernel yet)."""
        for session in self.api("GET", "/api/sessions"):
            if session["path"].endswith(name) and session.get("kernel"):
                return session["kernel"]["execution_state"]
        return None

    def shutdown_kernels(self) -> None:
        """End every session and kernel so the next notebook gets the CPU and memory."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.shutdown_kernels()
        except OSError:
            pass  # the server is already gone; the process-group kill below still runs
        finally:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self._log.close()


# JavaScript run in the page. A notebook is done when no cell waits ("[*]") and every code cell
# is numbered, or when one failed (JupyterLab then clears the queue, leaving "[ ]").
JS_RUN_FINISHED = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
      .map(p => p.textContent.trim());
  if (prompts.length === 0 || prompts.some(p => p.includes('*'))) return false;
  const errors = document.querySelectorAll(
      '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
  return prompts.every(p => /\\[\\d+\\]/.test(p)) || [...errors].some(e => /Traceback/.test(e.textContent));
}"""


def cell_sources(path: pathlib.Path) -> str:
    """All code-cell source of a notebook as one string (for the 'what must this show' rules)."""
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def write_live_demo(path: pathlib.Path) -> None:
    """A tiny notebook: a live panel (slider + dropdown) drawing a curve, a Run panel that fails."""
    code = [
        "import matplotlib.pyplot as plt\nimport numpy as np\n"
        "from ftnotes.widgets import dropdown, panel, slider",
        "def curve(freq, kind):\n    x = np.linspace(0, 1, 200)\n"
        "    f = np.sin if kind == 'sin' else np.cos\n"
        "    fig, ax = plt.subplots(figsize=(4, 2))\n"
        "    ax.plot(x, f(2 * np.pi * freq * x))\n    ax.set_title(f'{kind} at {freq} Hz')\n"
        "    print(f'freq={freq} kind={kind}')\n\ncurve(freq=2, kind='sin')",
        "panel(curve, {'freq': slider(2, 1, 9), 'kind': dropdown(['sin', 'cos'])}, live=True,\n"
        "      title='Live demo')",
        "def fragile(lr):\n    if lr > 0.5:\n        raise ValueError(f'lr={lr} is too large')\n"
        "    print(f'trained with lr={lr}')\n\nfragile(lr=0.1)",
        "panel(fragile, {'lr': slider(0.9, 0.0, 1.0)}, title='Run demo')",
    ]
    cells = [
        {"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
        for c in code
    ]
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, cell in enumerate(cells):
        cell["id"] = f"demo{i}"
    path.write_text(json.dumps(nb, indent=1))
