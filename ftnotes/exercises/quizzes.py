"""Short conceptual quizzes: ``quiz(id)`` asks, ``answer(id, choice)`` checks and explains.

In Jupyter, ``quiz`` shows ipywidgets radio buttons and a Check button; elsewhere (or with
``widget=False``) it prints the question with lettered options. Either way the explanation
comes from :func:`answer`, so both routes say the same thing.
"""

from __future__ import annotations

import difflib
import string

from .core import Result
from .quiz_bank import QUIZZES

LETTERS = string.ascii_lowercase


def _get(id: str):
    if id not in QUIZZES:
        close = difflib.get_close_matches(str(id), QUIZZES, n=1)
        maybe = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown quiz id {id!r}.{maybe} Valid ids: {sorted(QUIZZES)}")
    return QUIZZES[id]


def list_quizzes(notebook: str | int | None = None) -> list[str]:
    """The quiz ids, all or for one notebook (``"06"`` or ``6``)."""
    if notebook is None:
        return sorted(QUIZZES)
    nb = f"{notebook:02d}" if isinstance(notebook, int) else str(notebook)[:2]
    return sorted(i for i in QUIZZES if i.startswith(nb))


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def quiz_text(id: str) -> str:
    """The question and its lettered options as plain text."""
    question, options = _get(id)
    lines = [f"Quiz {id}: {question}"]
    lines += [f"  ({LETTERS[i]}) {text}" for i, (text, _, _) in enumerate(options)]
    lines.append(
        f"Answer with answer({id!r}, 'a') ... answer({id!r}, '{LETTERS[len(options) - 1]}')."
    )
    return "\n".join(lines)


def quiz(id: str, widget: bool | None = None):
    """Show quiz ``id``: radio buttons in Jupyter (``widget=None`` decides), else plain text.

    Returns the widget box (its ``result`` attribute holds the last checked answer) or None.
    """
    if widget is None:
        widget = _in_notebook()
    if not widget:
        print(quiz_text(id))
        return None
    box = quiz_widget(id)
    from IPython.display import display

    display(box)
    return None


def quiz_widget(id: str):
    """An ipywidgets VBox: the question, radio buttons, a Check button and the explanation."""
    import ipywidgets as w

    question, options = _get(id)
    radio = w.RadioButtons(
        options=[(f"({LETTERS[i]}) {t}", LETTERS[i]) for i, (t, _, _) in enumerate(options)],
        value=None,
        layout=w.Layout(width="auto"),
    )
    button, feedback = w.Button(description="Check"), w.HTML()
    box = w.VBox([w.HTML(f"<b>Quiz {id}</b>: {question}"), radio, button, feedback])
    box.result = None

    def on_click(_):
        if radio.value is None:
            feedback.value = "Pick an option first."
            return
        box.result = answer(id, radio.value)
        feedback.value = box.result._repr_html_()

    button.on_click(on_click)
    box.radio, box.button, box.feedback = radio, button, feedback
    return box


def answer(id: str, choice: str) -> Result:
    """Check ``choice`` (a letter ``'a'``, ``'b'``, ... or the option's text) for quiz ``id``.

    Returns a :class:`Result`: "Right: <why>" or "Not quite: <what is wrong with it>".
    """
    question, options = _get(id)
    letters = [LETTERS[i] for i in range(len(options))]
    texts = [t.lower() for t, _, _ in options]
    key = str(choice).strip().lower()
    if key.strip("()") in letters and len(key) <= 3:  # "b", "(b)", "b)"
        index = letters.index(key.strip("()"))
    elif key in texts:
        index = texts.index(key)
    else:
        raise ValueError(f"choice must be one of {letters} (or an option's text) for quiz "
                         f"{id!r}, got {choice!r}")  # fmt: skip
    text, correct, why = options[index]
    if correct:
        return Result(id, True, f"Right: {text}. Why: {why}", "passed")
    # The right option is not revealed: the student tries again (show_answer reveals it).
    return Result(id, False, f"Not quite: {why} Try another option.", "failed")


def show_answer(id: str) -> None:
    """Print the right option of quiz ``id`` and why."""
    _, options = _get(id)
    right = next(i for i, o in enumerate(options) if o[1])
    print(f"({LETTERS[right]}) {options[right][0]}: {options[right][2]}")
