"""One module per practice task; each defines ``TASK`` (a :class:`ftnotes.contest.core.ContestTask`)."""
