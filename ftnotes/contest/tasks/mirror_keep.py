"""Task "mirror_keep": the tiny LM of notebook 08 learns a new instruction, ``mirror``, and must
keep the skills it was pretrained on; answers are text (JSON lines), scored by exact match,
½ · new + ½ · old.

Pattern: IOAI 2026 at-home task 1 (learn new classes, keep the old ones: ½·acc_old +
½·acc_new) moved to a language model, with the text answers of the 2026 "Find the Order" task
(JSONL). Notebook 08 measured the trap this task is built on: supervised fine-tuning on the new
skill alone learns it (exact match 0.98) and forgets the rest (source exact match 1.00 -> 0.06).

The hidden boards draw their prompts from the grading run's secret, so no seed in this source
regenerates them. What remains possible by design: the skills are string functions a few lines
of Python compute; a rule-based solver would score 1.0, and the statement forbids it (answers
must be the model's greedy generations), as the IOAI rules forbid answers not produced by the
submitted model. The grader cannot tell the difference; a coach reading the notebook can.
"""

from __future__ import annotations

import torch

from ftnotes.checks import check_int
from ftnotes.contest.core import ContestData, ContestTask, check_split, conceal, numbers_line
from ftnotes.contest.formats import JsonlAnswers
from ftnotes.contest.metrics import exact_match
from ftnotes.lm import corpus

NAME = "mirror_keep"
TIME_LIMIT_S = 90.0
N_TRAIN, N_VAL, N_REPLAY = 300, 50, 2_000  # mirror examples to learn from; source ones to replay
N_MIRROR_TEST, N_SKILL_TEST = 100, 20  # per test split: mirror prompts; prompts per source skill
PUBLIC_SEED = 20_000  # the public mirror test is notebook 08's (corpus.target_split)
# mean of seeds 0-2 (each with its own secret) per board: python -m ftnotes.contest.measure
BASELINE_SCORE = {"live": 0.515, "final": 0.513}
REFERENCE_SCORE = {"live": 0.947, "final": 0.935}
MARGIN = 0.3  # the reference beats the baseline by more on every seed and board (tests)

STATEMENT = f"""\
# The Mirror Clerk: a new instruction, the old ones kept

The tiny language model of notebook 08 (`ftnotes.lm.load_pretrained_lm()`: 163k parameters, a
character tokenizer, a chat template) answers five kinds of instruction: copy (`"repeat kqe"` ->
`"kqe"`), reverse (`"flip kqe"` -> `"eqk"`), add (`"3 plus 4"` -> `"7"`), count (`"count a in
abca"` -> `"2"`), copy-and-reverse (`"copy ab and reverse cde"` -> `"abedc"`), each in several
phrasings. It must learn a **new** one, **mirror**: `"mirror kqe"` -> `"kqeeqk"` (the string, then
its reverse), and keep answering the old five.

**Data** (`data = task.load()`): `data.train`: ({N_TRAIN} mirror prompts, their answers);
`data.val`: {N_VAL} more; `data.extra["source_train"]`: ({N_REPLAY:,} prompts of the five old
instructions, their answers) you may replay; `data.extra["source_val"]`: {N_SKILL_TEST} of each
old instruction for validation. Test: `data.test_ids` and `data.test_x`, {N_MIRROR_TEST} mirror
prompts and {N_SKILL_TEST} of each old instruction, shuffled (user prompts, no answers).

**Submit**: `submission_{NAME}.jsonl`, one line `{{"id": <test id>, "answer": "<text>"}}` per
test id (`task.write_submission(data.test_ids, answers)` writes it). An answer must be the
model's own greedy generation for its prompt (`ftnotes.lm.sft.generate_answers`); answers computed
by hand-written string code are against the rules, however right they are.

**Time limit**: the whole notebook, from the kernel's start to the last cell, in
**{TIME_LIMIT_S:.0f} s** on the grader's 2-core CPU.

**Score**: `½ · exact match on the mirror prompts + ½ · exact match on the old prompts` (an
answer counts when it equals the right one after surrounding spaces are stripped; a missing or
malformed line scores 0 for its item). Points: `100 · (score − baseline) / (reference −
baseline)`, 0 below the baseline. The baseline (full fine-tuning on the mirror examples alone)
learns mirror and forgets nearly everything else. {numbers_line(BASELINE_SCORE, REFERENCE_SCORE, MARGIN)}
"""


def _pairs(examples) -> tuple[list[str], list[str]]:
    return [e.prompt for e in examples], [e.answer for e in examples]


def _public_test() -> list:
    """Notebook 08's mirror test and ``N_SKILL_TEST`` held-out prompts of each source skill
    (never in the tiny LM's pretraining stream)."""
    mirror = corpus.draw(corpus.TARGET_SKILL, N_MIRROR_TEST, seed=PUBLIC_SEED)
    held = corpus.held_out(N_SKILL_TEST)
    return mirror + [e for s in corpus.SOURCE_SKILLS for e in held[s]]


def _board_test(split: str, secret, exclude: set) -> list:
    """A board's prompts, each skill drawn from the grading run's secret, none of them a public
    test or validation prompt (replayed source prompts may recur: ``add`` has only 400)."""
    sizes = {corpus.TARGET_SKILL: N_MIRROR_TEST} | dict.fromkeys(corpus.SOURCE_SKILLS, N_SKILL_TEST)
    return [e for skill, n in sizes.items()
            for e in corpus.draw(skill, n, seed=secret.seed(f"{NAME}:{split}:{skill}"),
                                 exclude=exclude)]  # fmt: skip


def build(seed: int = 0, split: str = "public", secret=None):
    """(ContestData, test answers as :class:`ftnotes.lm.corpus.Example`, skill included).
    ``train``/``val``: mirror (prompts, answers), drawn with ``seed``; ``extra``: the source
    skills' replay and validation sets; test inputs: the prompts, shuffled by
    :func:`~ftnotes.contest.core.conceal` (a board's by the secret)."""
    check_int("seed", seed, 0)
    check_split(split, secret)
    public = _public_test()
    train = corpus.draw(corpus.TARGET_SKILL, N_TRAIN, seed=30_000 + seed,
                        exclude={e.prompt for e in public})  # fmt: skip
    seen = {e.prompt for e in public + train}
    val = corpus.draw(corpus.TARGET_SKILL, N_VAL, seed=40_000 + seed, exclude=seen)
    source_val = [e for s in corpus.SOURCE_SKILLS
                  for e in corpus.draw(s, N_SKILL_TEST, seed=60_000 + seed, exclude=seen)]  # fmt: skip
    seen |= {e.prompt for e in val + source_val}
    replay = corpus.source_stream(N_REPLAY, seed=50_000 + seed, exclude=seen)
    examples = public if split == "public" else _board_test(split, secret, seen)
    ids, x, y = conceal([e.prompt for e in examples], examples, split, secret, f"{NAME}:{split}",
                        seed=PUBLIC_SEED)  # fmt: skip
    extra = {"source_train": _pairs(replay), "source_val": _pairs(source_val)}
    return ContestData(NAME, _pairs(train), _pairs(val), ids, x, split, extra), y


def score(pred, y) -> dict:
    """½ · exact match on the mirror items + ½ · on the source ones (``y``: Examples; ``pred``:
    one str per item, None where the submission had no valid answer)."""
    groups = {"new": [], "old": []}
    for p, e in zip(pred, y, strict=True):
        groups["new" if e.skill == corpus.TARGET_SKILL else "old"].append((p, e.answer))
    parts = {k: exact_match(*map(list, zip(*v)))["score"] for k, v in groups.items()}
    return {"score": 0.5 * parts["new"] + 0.5 * parts["old"], **parts}


def examples(pairs, skill: str = "") -> list:
    """(prompts, answers) as the :class:`~ftnotes.lm.corpus.Example` list ``train_sft`` takes."""
    return [corpus.Example(skill, p, a) for p, a in zip(*pairs, strict=True)]


def baseline_solution(data, seed: int = 0):
    """The naive answer: full fine-tuning on the mirror examples alone (notebook 08's rate and
    budget: 100 steps of 32 at 3e-3). Mirror is learned; the old skills are overwritten."""
    return _finetune(examples(data.train, "mirror"), steps=100, seed=seed)


def reference_solution(data, seed: int = 0):
    """Full fine-tuning on the mirror examples *and* twice as many replayed source examples
    (a rehearsal mix, 600 of the 2,000), 200 steps of 32 at 3e-3: every batch reminds the model
    of its old skills while it learns the new one."""
    mix = examples(data.train, "mirror") + examples(data.extra["source_train"])[:600]
    return _finetune(mix, steps=200, seed=seed)


def _finetune(train, steps: int, seed: int):
    from ftnotes.lm.model import load_pretrained_lm
    from ftnotes.lm.sft import train_sft

    model, tokenizer = load_pretrained_lm()
    torch.manual_seed(seed)
    train_sft(model, tokenizer, train, steps=steps, lr=3e-3, batch_size=32, seed=seed)
    return model.eval(), tokenizer


def _answers(solution, data, seed: int) -> list[str]:
    from ftnotes.lm.sft import generate_answers

    model, tokenizer = solution(data, seed)
    return generate_answers(model, tokenizer, list(data.test_x))


def baseline(data, seed: int = 0) -> list[str]:
    """:func:`baseline_solution`, then the greedy answer to every test prompt."""
    return _answers(baseline_solution, data, seed)


def reference(data, seed: int = 0) -> list[str]:
    """:func:`reference_solution`, then the greedy answer to every test prompt."""
    return _answers(reference_solution, data, seed)


TASK = ContestTask(NAME, "The Mirror Clerk: a new instruction, the old ones kept (text answers)",
                   STATEMENT, TIME_LIMIT_S, f"submission_{NAME}.jsonl", None, build, score,
                   baseline, reference, BASELINE_SCORE, REFERENCE_SCORE, MARGIN,
                   reference_code=(reference_solution, _finetune),
                   answers_format=JsonlAnswers("text", max_item_bytes=100))  # fmt: skip
