"""Claims that hold at a notebook's shipped settings, checked there and reported elsewhere.

A notebook's settings cell invites a student to change things. Some of its asserts check facts
that hold whatever the settings (a frozen body forgets nothing); others check a *measured
claim* that holds at the shipped settings ("full fine-tuning reaches 80% within 5 epochs").
Failing the second kind after a student's experiment reads as "you broke something", which is
wrong: the experiment worked, and its result is the lesson. So a measured claim is asserted
only when every setting has its shipped value; otherwise it is printed, with what changed::

    claims = Claims.from_settings("00", globals())
    claims.check(reach_ft <= 5, "full fine-tuning reaches 80% validation accuracy by epoch 5")

A claim about *time* (``timing=True``: one step against another, timed interleaved) is asserted
like the others, except where ``$FTNOTES_TIMING_CLAIMS`` is ``report``: the browser test sets it,
since there the notebooks share two cores with a browser and a Jupyter server, and its job is the
page; nbval, run on the same notebooks by ``make test``, asserts those claims.

``DEFAULTS`` holds each notebook's shipped settings; ``tests/test_claims.py`` checks that the
notebooks' settings cells still say the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ftnotes.checks import check_choice

DEFAULTS = {
    "00": {
        "SEED": 0, "LABELS_PER_CLASS": 10, "CURVE_EPOCHS": 20, "BATCH_SIZE": 32,
        "LR": {"scratch": 3e-3, "scratch_cnn": 1e-2, "linear_probe": 1e-2, "full_ft": 5e-4},
        "BUDGETS": [1, 5], "SWEEP_SEEDS": 3, "SWEEP_STEPS": 120, "RUN_SLOW_SWEEP": False,
    },
    "01": {
        "SEED": 0, "LABELS_PER_CLASS": 20, "EPOCHS": 5, "BATCH_SIZE": 32,
        "LRS": [1e-4, 3e-4, 1e-3, 3e-3, 3e-2], "LR": 1e-3, "PROBE_LR": 1e-2,
        "HIGH_LR": 3e-3, "LAYER_DECAY": 0.5, "K_BLOCKS": 1, "ES_EPOCHS": 40, "PATIENCE": 5,
        "VAL_SIZE": 120, "SOURCE_EVAL": 500,
    },
    "02": {
        "LABELS_PER_CLASS": 10, "VAL_SIZE": 120, "EPOCHS": 20, "REDUCTION_FACTOR": 8,
        "PLACEMENT": "houlsby", "SWEEP_FACTORS": (2, 8, 32), "SEED": 0, "RUN_SLOW_SWEEP": False,
    },
    "03": {
        "LABELS_PER_CLASS": 10, "VAL_SIZE": 120, "EPOCHS": 12, "R": 4, "LORA_ALPHA": 8,
        "TARGETS": ("q_proj", "v_proj"), "RANKS": (1, 4, 16), "SEED": 0, "RUN_SLOW_SWEEP": False,
    },
    "04": {
        "LABELS_PER_CLASS": 5, "VAL_PER_CLASS": 10, "NUM_VIRTUAL_TOKENS": 8, "DEEP": True,
        "SWEEP_TOKENS": (1, 8, 16), "LATENCY_TOKENS": (8, 32, 128), "SEED": 0,
        "RUN_SLOW_SWEEP": False,
    },
    "05": {
        "SEED": 0, "NOISE_RATE": 0.3, "FLAG_FRACTION": 0.3, "SHOTS": (1, 2, 5),
        "FEW_SHOT_SEEDS": 3, "BENCH_LABELS": 10, "BENCH_EPOCHS": 10,
        "BENCH_METHODS": ("linear_probe", "lora", "full_ft"), "SCHEDULE_LR": 6e-3,
        "SCHEDULE_EPOCHS": 10,
    },
    "09": {
        "BUDGET_GB": 16, "TIME_LIMIT_S": 600, "MFU": 0.4, "BATCH_SIZE": 32, "SEQ_LEN": 256, "R": 8,
        "TARGETS": ("query", "value", "q_proj", "v_proj"), "SMALL_LAYERS": (1, 2), "SEED": 0,
    },
    "08": {
        "SEED": 0, "N_TRAIN": 300, "N_TEST": 100, "N_SOURCE": 20, "STEPS": 100,
        "BATCH_SIZE": 32, "LORA_R": 16, "N_VIRTUAL": 8,
        "LR": {"scratch": 3e-3, "full": 3e-3, "lora": 1e-2, "prompt": 3e-1, "prefix": 2e-1,
               "prefix_mlp": 2e-2},
    },
    "10": {
        "SEED": 0, "CATEGORIES": ("act", "attribute", "cognition", "communication", "state",
                                  "feeling"),
        "COUNTER": ("animal", "plant", "food", "artifact"), "PER_CLASS": 45, "EPOCHS": 3,
        "BATCH_SIZE": 16, "R": 8,
        "LR": {"lora": 2e-3, "lora_qv": 5e-3, "full": 4e-4, "scratch": 1e-4},
        "COVERAGE": 0.99,
    },
    "11": {
        "SEED": 0, "N_TRAIN": 16, "N_TEST": 6, "SHOTS": 2, "STEPS": 8, "BATCH_SIZE": 4, "R": 8,
        "TOP_K": 4, "LR": {"lora_qv": 8e-3, "lora_all": 4e-3, "top_layers": 1e-3},
    },
}  # fmt: skip

TIMING_ENV = "FTNOTES_TIMING_CLAIMS"  # "report": timing claims print their verdict, never fail


def timing_claims_reported() -> bool:
    """Whether timing claims are reported, not asserted (``$FTNOTES_TIMING_CLAIMS``)."""
    value = os.environ.get(TIMING_ENV, "").strip()
    if value:
        check_choice(TIMING_ENV, value, ("report",))
    return value == "report"


@dataclass
class Claims:
    """Checks measured claims at the shipped settings; reports them at any other settings.

    ``changed``: ``{name: (shipped value, your value)}`` for every setting that differs.
    """

    notebook: str
    changed: dict = field(default_factory=dict)

    @classmethod
    def from_settings(cls, notebook: str, namespace: dict) -> Claims:
        """Compare the settings in ``namespace`` (a notebook's ``globals()``) with ``DEFAULTS``."""
        check_choice("notebook", notebook, sorted(DEFAULTS))
        missing = [name for name in DEFAULTS[notebook] if name not in namespace]
        if missing:
            raise ValueError(f"namespace lacks the settings {missing}: run the settings cell first")
        changed = {name: (value, namespace[name]) for name, value in DEFAULTS[notebook].items()
                   if namespace[name] != value}  # fmt: skip
        return cls(notebook, changed)

    @property
    def at_defaults(self) -> bool:
        return not self.changed

    def describe_changes(self) -> str:
        return ", ".join(f"{n} = {mine!r} (shipped: {shipped!r})"
                         for n, (shipped, mine) in self.changed.items())  # fmt: skip

    def check(self, ok: bool, claim: str, timing: bool = False) -> bool:
        """Assert ``claim`` at the shipped settings; elsewhere print whether it held. Returns ok.

        ``timing=True``: a claim about measured time, reported instead of asserted where
        ``$FTNOTES_TIMING_CLAIMS=report`` (the browser test's kernels)."""
        ok = bool(ok)
        if self.at_defaults and timing and timing_claims_reported():
            verdict = "holds" if ok else "does NOT hold"
            print(f"[timing claim, reported: {TIMING_ENV}=report] {claim}: {verdict} in this run")
            return ok
        if self.at_defaults:
            assert ok, f"claim failed at the shipped settings: {claim}"
            return ok
        verdict = "still holds" if ok else "does NOT hold"
        print(f"[your settings] {claim}: {verdict} here (checked only at the shipped settings; "
              f"you changed {self.describe_changes()})")  # fmt: skip
        return ok
