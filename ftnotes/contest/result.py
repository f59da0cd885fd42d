"""One scored run of a contest task: the grader's report on a notebook, or a notebook's own
timed run of a ``solve`` function (:func:`ftnotes.contest.toolbox.run_solution`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("scored", "time limit exceeded", "error", "not attempted", "bad submission",
            "notebook too large", "no sandbox")  # fmt: skip


@dataclass
class Result:
    """``status`` is one of :data:`STATUSES`; only "scored" counts. ``seconds``: the clock the
    limit ``time_limit_s`` counts; ``score``/``parts``: the task's metric and its parts (None
    and empty when nothing could be scored); ``points``: the score normalised between the
    task's baseline (0) and reference (100); ``message``: the reason of a failure, or notes;
    ``overhead_s``: the grader's own time outside the limit; ``extra``: what else the run
    measured (trainable parameters, checkpoint bytes, board, submission number, log tail)."""

    task: str
    name: str
    status: str
    seconds: float = 0.0
    time_limit_s: float = 0.0
    score: float | None = None
    points: float | None = None
    parts: dict = field(default_factory=dict)
    message: str = ""
    overhead_s: float | None = None
    extra: dict = field(default_factory=dict)
    when: str = ""

    def _clock(self) -> str:
        clock = f"{self.seconds:.1f} s of {self.time_limit_s:g} s"
        if self.extra.get("kernel_start_s") is not None:
            clock += f" (kernel start {self.extra['kernel_start_s']:.1f} s included)"
        if self.overhead_s is not None:
            clock += f", grader overhead {self.overhead_s:.1f} s"
        if "board" in self.extra:
            clock += f" | {self.extra['board']} board"
        if "submission" in self.extra:
            clock += f", submission {self.extra['submission']}"
        return clock

    def _costs(self) -> str:
        if "trainable_params" not in self.extra:
            return ""
        return (f" | {self.extra['trainable_params']:,} trainable, checkpoint "
                f"{self.extra['checkpoint_bytes'] / 1e3:.1f} KB")  # fmt: skip

    def __str__(self) -> str:
        head = f"[{self.task}] {Path(self.name).name}: "
        if self.score is None:
            return head + f"NO SCORE, {self.status}: {self.message} | {self._clock()}"
        parts = ", ".join(f"{k} {v:.3f}" for k, v in self.parts.items())
        points = f", {self.points:.0f} points" if self.points is not None else ""
        flag = (f" | {self.status}: {self.message}" if self.status != "scored"
                else f" | {self.message}" if self.message else "")  # e.g. items that scored 0
        return (head + f"score {self.score:.3f}" + (f" ({parts})" if parts else "") + points
                + f" | {self._clock()}" + self._costs() + flag)  # fmt: skip

    __repr__ = __str__
