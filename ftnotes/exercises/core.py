"""The machinery behind self-checking exercises: registry, results, ``check``/``hint``/``stub``.

An exercise is a notebook cell where the student completes a function or class (the cell starts
as the stub that :func:`stub` prints), followed by ``check(ID, obj)``. A checker is a function
``(obj, ctx)`` that runs property tests against the reference solution and stops at the first
failure with a message in plain words; ``ctx.ok(...)`` records each property that held, so a pass
says what was verified. Checks never raise on a wrong answer: notebooks must run top to bottom.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import html
import inspect
import random
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checks import check_int
from ..utils import pinned_threads


class Failure(Exception):
    """Raised inside a checker to stop at the first failed property (caught by :func:`check`)."""


@dataclass
class Result:
    """What a check (or a quiz answer) found: ``passed`` and a plain-words ``message``.

    ``status`` is ``"passed"``, ``"failed"`` or ``"not attempted"``; ``verified`` lists the
    properties that held. It displays as text in a console and as a coloured box in Jupyter.
    """

    exercise: str
    passed: bool
    message: str
    status: str = "failed"
    verified: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = {"passed": "✅", "failed": "❌", "not attempted": "✏️"}.get(self.status, "")
        lines = [f"{head} {self.exercise}: {self.message}"]
        lines += [f"   ✓ {v}" for v in self.verified]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = {"passed": "#e6f4ea", "failed": "#fce8e6"}.get(self.status, "#fef7e0")
        items = "".join(f"<li>{html.escape(v)}</li>" for v in self.verified)
        body = html.escape(self.message).replace("\n", "<br>")
        return (
            f'<div style="background:{colour};padding:6px 10px;border-radius:4px">'
            f"<b>{html.escape(self.exercise)}</b> ({self.status}): {body}"
            + (f"<ul style='margin:2px 0'>{items}</ul>" if items else "")
            + "</div>"
        )


class Context:
    """Passed to a checker: ``ok(text)`` records a verified property; ``fail(msg)`` stops."""

    def __init__(self):
        self.verified: list[str] = []

    def ok(self, what: str) -> None:
        self.verified.append(what)

    @staticmethod
    def fail(message: str) -> None:
        raise Failure(message)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise Failure(message)


@dataclass
class Exercise:
    """One registered exercise: its checker, the notebook's stub, graded hints, the reference."""

    id: str
    title: str
    kind: str  # "function" or "class": what the student passes to check()
    checker: Callable
    stub: str
    hints: list[str]
    reference: object  # what check() must accept
    solution: tuple = ()  # objects whose source show_solution prints

    @property
    def notebook(self) -> str:
        return self.id[:2]


_REGISTRY: dict[str, Exercise] = {}
_HINT_LEVEL: dict[str, int] = {}
_CHECKED: set[str] = set()


def exercise(id, title, kind, stub, hints, reference, solution=None):
    """Decorator registering a checker ``(obj, ctx) -> None`` under ``id``."""
    if kind not in ("function", "class"):
        raise ValueError(f"kind must be 'function' or 'class', got {kind!r}")

    def register(checker):
        sources = solution if isinstance(solution, tuple) else (solution or reference,)
        _REGISTRY[id] = Exercise(
            id, title, kind, checker, textwrap.dedent(stub).strip() + "\n", hints, reference,
            sources,
        )  # fmt: skip
        return checker

    return register


def get(id: str) -> Exercise:
    """The exercise named ``id``; a ValueError lists the valid ids (and the closest match)."""
    if id not in _REGISTRY:
        close = difflib.get_close_matches(str(id), _REGISTRY, n=1)
        maybe = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown exercise id {id!r}.{maybe} Valid ids: {sorted(_REGISTRY)}")
    return _REGISTRY[id]


def _raised_not_implemented(err: BaseException) -> bool:
    while err is not None:
        if isinstance(err, NotImplementedError):
            return True
        err = err.__cause__ or err.__context__
    return False


def _kind_problem(ex: Exercise, obj) -> str | None:
    if ex.kind == "class" and not inspect.isclass(obj):
        what = f"an instance of {type(obj).__name__}" if isinstance(obj, torch.nn.Module) else ""
        return f"pass the class itself (e.g. check({ex.id!r}, MyClass)), not {what or repr(obj)}"
    if ex.kind == "function" and (inspect.isclass(obj) or not callable(obj)):
        return f"pass your function (e.g. check({ex.id!r}, my_function)), got {obj!r}"
    return None


_PACKAGES = ("torch", "numpy", "random", "ftnotes")


def _student_frame() -> str | None:
    """The module of the first caller that is neither a library nor the package, if any.

    Seeding from a checker (``ftnotes.exercises.*``) is fine; from the student's code it is
    not: a function that calls ``torch.manual_seed`` silently resets the notebook's own random
    stream (every later "random" draw repeats).
    """
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("ftnotes.exercises"):
            return None
        if module.split(".")[0] not in _PACKAGES:
            return module
        frame = frame.f_back
    return None


@contextlib.contextmanager
def _refuse_reseeding():
    """Make the student's ``torch.manual_seed``/``random.seed``/``np.random.seed`` a failure."""
    originals = [(torch, "manual_seed"), (random, "seed"), (np.random, "seed")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in originals]

    def guarded(owner, name, original):
        label = {"torch": "torch.manual_seed", "random": "random.seed"}.get(
            owner.__name__, "np.random.seed"
        )

        def seed(*args, **kwargs):
            if _student_frame() is not None:
                raise Failure(
                    f"your code calls {label}(...), which resets the notebook's global random "
                    "state for everything after it. Use your own generator instead, e.g. "
                    "g = torch.Generator().manual_seed(seed) and torch.randperm(n, generator=g)."
                )
            return original(*args, **kwargs)

        return seed

    for owner, name, original in saved:
        setattr(owner, name, guarded(owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _tensor_snapshot(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, torch.Tensor) for v in value)
    ):
        return [v.detach().clone() for v in value]
    return None


def _same(before, value) -> bool:
    if isinstance(before, list):
        return all(_same(b, v) for b, v in zip(before, value))
    return before.shape == value.shape and torch.equal(before, value.detach())


def _refuse_input_changes(fn):
    """Wrap a function exercise: changing a tensor argument in place is a failure.

    ``labels[idx] = ...`` or ``x.sub_(...)`` on the caller's tensor corrupts the notebook's data
    for every later cell, and a result computed on the changed tensor can still look right.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs).arguments
        except TypeError:
            return fn(*args, **kwargs)  # let the call itself raise its own clear TypeError
        before = {k: _tensor_snapshot(v) for k, v in bound.items()}
        out = fn(*args, **kwargs)
        for name, snap in before.items():
            if snap is not None and not _same(snap, bound[name]):
                raise Failure(
                    f"your function changed its input `{name}` in place; the caller's data must "
                    f"stay as it was. Work on a copy ({name}.clone()) or build a new tensor."
                )
        return out

    return wrapper


def check(id: str, obj) -> Result:
    """Run exercise ``id``'s property tests on ``obj`` and return a :class:`Result`.

    Never raises on a wrong answer (only on an unknown ``id``). Random generators are seeded
    inside and restored afterwards (as is torch's thread count), so a check does not disturb
    the student's own seeds. Two careless habits fail every check: a function that changes a
    tensor argument in place, and code that reseeds the global generators.
    """
    ex = get(id)
    _CHECKED.add(id)
    problem = _kind_problem(ex, obj)
    if problem:
        return Result(id, False, problem)
    ctx = Context()
    py_state, np_state = random.getstate(), np.random.get_state()
    # The probes are tiny tensors: one thread is fastest, and on a busy 2-core laptop extra
    # threads made a TinyViT forward ~50x slower (spinning OpenMP workers).
    try:
        with pinned_threads(1), torch.random.fork_rng(devices=[]), _refuse_reseeding():
            torch.manual_seed(0)
            ex.checker(_refuse_input_changes(obj) if ex.kind == "function" else obj, ctx)
    except Failure as failure:
        return Result(id, False, str(failure), "failed", ctx.verified)
    except Exception as err:  # the student's code raised: say so, do not crash the notebook
        if _raised_not_implemented(err):
            _HINT_LEVEL[id] = max(_HINT_LEVEL.get(id, 0), 1)  # hint 1 is shown here
            return Result(id, False, f"not attempted yet. Hint: {ex.hints[0]}", "not attempted")
        msg = f"your code raised {type(err).__name__}: {err}"
        return Result(id, False, msg, "failed", ctx.verified)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return Result(id, True, "passed. Verified:", "passed", ctx.verified)


def hint(id: str, level: int | None = None) -> None:
    """Print the next hint for ``id`` (each call goes one level deeper), or hint ``level``."""
    ex = get(id)
    n = len(ex.hints)
    if level is None:
        level = min(_HINT_LEVEL.get(id, 0) + 1, n)
    else:
        check_int("level", level, 1, n)
    _HINT_LEVEL[id] = max(_HINT_LEVEL.get(id, 0), level)
    more = f" (call hint({id!r}) again for hint {level + 1})" if level < n else " (last hint)"
    print(f"Hint {level}/{n} for {id}: {ex.hints[level - 1]}{more}")


def show_solution(id: str) -> None:
    """Print the reference solution's source. Best read after an honest attempt and a check."""
    ex = get(id)
    if id not in _CHECKED:
        print(f"(You have not run check({id!r}, ...) yet: an honest attempt first teaches more.)\n")
    print("\n\n".join(textwrap.dedent(inspect.getsource(s)) for s in ex.solution))


def stub(id: str) -> None:
    """Print the starter code the notebook shows for exercise ``id``."""
    print(get(id).stub)


class ExerciseList(list):
    """A list of exercise ids that prints as a table of ids and titles."""

    def __repr__(self) -> str:
        return "\n".join(f"{i:<28} {_REGISTRY[i].title}" for i in self) or "(no exercises)"


def known_notebooks() -> list[str]:
    """Notebook numbers ("00", ...) found, not listed by hand: the repository's ``notebooks/``
    (when run from a clone), plus every notebook that has exercises or quizzes registered."""
    from .quiz_bank import QUIZZES  # late: the quiz package sits beside this one

    folder = Path(__file__).resolve().parents[2] / "notebooks"
    found = {p.name[:2] for p in folder.glob("[0-9][0-9]_*.ipynb")} if folder.is_dir() else set()
    found |= {e.notebook for e in _REGISTRY.values()} | {q[:2] for q in QUIZZES}
    return sorted(found)


def list_exercises(notebook: str | int | None = None) -> ExerciseList:
    """The exercise ids, all or for one notebook (``"03"`` or ``3``)."""
    if notebook is None:
        return ExerciseList(sorted(_REGISTRY))
    nb = f"{notebook:02d}" if isinstance(notebook, int) else str(notebook)[:2]
    known = known_notebooks()
    if nb not in known:
        raise ValueError(f"notebook must be one of {known}, got {notebook!r}")
    return ExerciseList(sorted(i for i, e in _REGISTRY.items() if e.notebook == nb))
