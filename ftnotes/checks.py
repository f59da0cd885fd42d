"""The one validation vocabulary: a bad argument is a ``ValueError`` naming the parameter, the
value it got and what is allowed, raised before any long work starts.

``bool`` is a subclass of ``int`` in Python, so ``True`` would pass a bare ``isinstance(x, int)``
as 1 (a slider's checkbox wired to ``epochs``); every check here refuses it where a number is
meant. ``None`` passes where ``optional=True`` ("None or an int >= 1").
"""

from __future__ import annotations

import math
from numbers import Real


def _fail(name: str, value, allowed: str, optional: bool):
    raise ValueError(f"{name} must be {'None or ' if optional else ''}{allowed}, got {value!r}")


def is_int(value) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int | None = 1, maximum: int | None = None,
              optional: bool = False) -> None:  # fmt: skip
    """ValueError unless ``value`` is an int in ``[minimum, maximum]`` (a bound of None: open)."""
    if optional and value is None:
        return
    if is_int(value) and (minimum is None or value >= minimum) and (
        maximum is None or value <= maximum
    ):
        return
    if minimum is not None and maximum is not None:
        allowed = f"an int in {minimum}..{maximum}"
    elif minimum is not None:
        allowed = f"an int >= {minimum}"
    else:
        allowed = "an int" + (f" <= {maximum}" if maximum is not None else "")
    _fail(name, value, allowed, optional)


def check_number(name: str, value, minimum: float | None = None, maximum: float | None = None,
                 strict: bool = False, finite: bool = True, optional: bool = False) -> None:  # fmt: skip
    """ValueError unless ``value`` is a real number within the bounds (a bound of None: open).

    ``strict``: the lower bound itself is not allowed (``> 0`` rather than ``>= 0``); an upper
    bound is always inclusive. ``finite=False`` lets ``inf`` through (never NaN).
    """
    if optional and value is None:
        return
    number = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)
    ok = number and (math.isfinite(value) or not finite)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if ok:
        return
    kind = "a finite number" if finite else "a number"
    if minimum is not None and maximum is not None:
        allowed = f"{kind} in {'(' if strict else '['}{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        allowed = f"{kind} {'>' if strict else '>='} {minimum:g}"
    else:
        allowed = kind + (f" <= {maximum:g}" if maximum is not None else "")
    _fail(name, value, allowed, optional)


def check_bool(name: str, value) -> None:
    """ValueError unless ``value`` is ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_choice(name: str, value, allowed) -> None:
    """ValueError unless ``value`` is one of ``allowed`` (a tuple of names, usually)."""
    try:
        ok = value in allowed
    except TypeError:  # an unhashable value asked of a set or dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def check_callable(name: str, value, optional: bool = False) -> None:
    """ValueError unless ``value`` can be called (``None`` too with ``optional``)."""
    if not (callable(value) or (optional and value is None)):
        _fail(name, value, "a callable", optional)


def require(ok: bool, name: str, value, allowed: str) -> None:
    """ValueError ``"{name} must be {allowed}, got {value!r}"`` unless ``ok``: the same message
    for conditions the typed checks above do not cover (a list of dicts, an odd kernel size)."""
    if not ok:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
