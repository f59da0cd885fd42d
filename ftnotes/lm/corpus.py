"""The tiny language model's world: source skills for pretraining and one target skill that is not.

Every example is one chat turn: a user instruction (``"reverse kqe"``) and the assistant's
answer (``"eqk"``). The pretraining corpus draws from the **source skills** only, each in
several phrasings so the model learns the skill rather than one template:

* ``copy``: repeat a string of 3-6 lowercase letters;
* ``reverse``: the same string backwards;
* ``add``: the sum of two digits (0-18);
* ``count``: how many times a letter occurs in a string over ``abcd``;
* ``copy_reverse``: two skills in one answer, ``"copy ab and reverse cde"`` -> ``"abedc"``
  (two different strings: the reverse part starts in the middle of the answer).

The **target skill** of notebook 08 is ``mirror``: ``"mirror kqe"`` -> ``"kqeeqk"``, the string
followed by its reverse. No source phrasing contains the word ``mirror`` and no source answer
is a string of the prompt followed by its own reverse (``copy_reverse`` never draws the same
string twice; :func:`make_example` redraws anything :func:`is_target_like` flags, and
:func:`assert_no_target` checks the stream; tested), so the target is new to the model: a new
instruction word, one string used twice. But every part of the answer is a skill it has (copy,
reverse, both in one answer), which is why a few hundred examples should be enough after
pretraining and far too few from scratch.

Everything is drawn from a ``random.Random(seed)``: the same seed gives the same examples.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from ftnotes.checks import check_choice, check_int

LETTERS = string.ascii_lowercase
COUNT_LETTERS = "abcd"  # count strings use 4 letters, so counts 0..7 all occur
MIN_LEN, MAX_LEN = 3, 6  # copy / reverse / mirror strings
COUNT_MIN_LEN, COUNT_MAX_LEN = 4, 7

# Several phrasings per skill: the model must learn the skill, not one template.
PHRASINGS = {
    "copy": ("copy {s}", "repeat {s}", "say {s}"),
    "reverse": ("reverse {s}", "{s} backwards", "flip {s}"),
    "add": ("{a}+{b}", "add {a} and {b}", "sum of {a} and {b}", "{a} plus {b}"),
    "count": ("count {c} in {s}", "how many {c} in {s}"),
    "copy_reverse": ("copy {s} and reverse {t}", "repeat {s} then flip {t}"),
}
SOURCE_SKILLS = tuple(PHRASINGS)
# Shares of the pretraining stream (equal). Measured with the three add phrasings of an earlier
# corpus: equal shares left add at 0.93 held-out exact match; two shares for add gave 0.98 but
# a model that learned the target worse (full fine-tuning 0.74 vs 0.96, unclipped at lr 6e-3,
# 3 seeds). A fourth add phrasing at equal shares gave add 1.00 and kept the target learnable:
# each digit pair is met in more phrasings, which is what the held-out prompts (an unseen
# phrasing of a seen pair) test.
MIX = {"copy": 1, "reverse": 1, "add": 1, "count": 1, "copy_reverse": 1}
TARGET_SKILL = "mirror"
TARGET_PHRASING = "mirror {s}"
TARGET_WORD = "mirror"


@dataclass(frozen=True)
class Example:
    """One chat turn: ``prompt`` is the user's text, ``answer`` the assistant's."""

    skill: str
    prompt: str
    answer: str


def _word(rng: random.Random, lo=MIN_LEN, hi=MAX_LEN, letters=LETTERS) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(lo, hi)))


def make_example(skill: str, rng: random.Random) -> Example:
    """One random example of ``skill`` (a source skill or ``"mirror"``); a source example is
    never target-like (:func:`is_target_like`): such draws are redrawn."""
    while True:
        ex = _make(skill, rng)
        if skill == TARGET_SKILL or not is_target_like(ex):
            return ex


def _make(skill: str, rng: random.Random) -> Example:
    if skill == TARGET_SKILL:
        s = _word(rng)
        return Example(skill, TARGET_PHRASING.format(s=s), s + s[::-1])
    check_choice("skill", skill, (*SOURCE_SKILLS, TARGET_SKILL))
    phrasing = rng.choice(PHRASINGS[skill])
    if skill in ("copy", "reverse"):
        s = _word(rng)
        return Example(skill, phrasing.format(s=s), s if skill == "copy" else s[::-1])
    if skill == "copy_reverse":
        a, b = _word(rng), _word(rng)
        while b == a:
            b = _word(rng)
        return Example(skill, phrasing.format(s=a, t=b), a + b[::-1])
    if skill == "add":
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        return Example(skill, phrasing.format(a=a, b=b), str(a + b))
    s = _word(rng, COUNT_MIN_LEN, COUNT_MAX_LEN, COUNT_LETTERS)
    c = rng.choice(COUNT_LETTERS)
    return Example(skill, phrasing.format(c=c, s=s), str(s.count(c)))


def draw(skill: str, n: int, seed: int, exclude=frozenset()) -> list[Example]:
    """``n`` distinct examples of ``skill`` whose prompts are not in ``exclude``.

    Distinct prompts, so a held-out set never repeats itself; ``exclude`` keeps training
    examples out of a held-out set (pass the held-out prompts).
    """
    check_int("n", n, 0)
    rng = random.Random(f"{skill}:{seed}")  # one stream per skill and seed
    out, seen = [], set(exclude)
    for _ in range(200 * n + 1000):
        if len(out) == n:
            return out
        ex = make_example(skill, rng)
        if ex.prompt not in seen:
            seen.add(ex.prompt)
            out.append(ex)
    raise ValueError(f"could not draw {n} distinct {skill!r} examples (only {len(out)} exist "
                     f"outside exclude): ask for fewer")  # fmt: skip


def held_out(n_per_skill: int = 100, seed: int = 0) -> dict[str, list[Example]]:
    """The held-out source examples the manifest's per-skill accuracies are measured on.

    ``add`` has only 400 distinct prompts (100 digit pairs x 4 phrasings), so its held-out set
    is small and the pretraining stream never shows those prompts.
    """
    n = {s: n_per_skill for s in SOURCE_SKILLS}
    n["add"] = min(n_per_skill, 60)
    return {s: draw(s, n[s], seed=10_000 + seed) for s in SOURCE_SKILLS}


def source_stream(n: int, seed: int, exclude=frozenset()) -> list[Example]:
    """``n`` pretraining examples, the source skills mixed in the shares of ``MIX`` (no target
    skill).

    Not distinct (a stream: the same short string may come twice); prompts in ``exclude``
    (the held-out ones) never appear.
    """
    rng = random.Random(f"stream:{seed}")
    weights = [MIX[s] for s in SOURCE_SKILLS]
    out = []
    while len(out) < n:
        ex = make_example(rng.choices(SOURCE_SKILLS, weights)[0], rng)
        if ex.prompt not in exclude:
            out.append(ex)
    return out


def target_split(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """Disjoint train and test examples of the target skill (test drawn first, fixed by seed)."""
    test = draw(TARGET_SKILL, n_test, seed=20_000)  # one test set, whatever the training seed
    train = draw(TARGET_SKILL, n_train, seed=30_000 + seed, exclude={e.prompt for e in test})
    return train, test


def is_target_like(ex: Example) -> bool:
    """True if ``ex`` is the target skill in disguise: the word ``mirror`` in the prompt, or an
    answer that is a string followed by its own reverse where that string is in the prompt."""
    if TARGET_WORD in ex.prompt:
        return True
    a = ex.answer
    half = len(a) // 2
    return len(a) >= 2 * MIN_LEN and len(a) % 2 == 0 and a == a[:half] + a[:half][::-1] and (
        a[:half] in ex.prompt.split()
    )  # fmt: skip


def assert_no_target(examples) -> None:
    """Raise ``AssertionError`` if any example is the target skill (see :func:`is_target_like`)."""
    bad = [e for e in examples if e.skill == TARGET_SKILL or is_target_like(e)]
    assert not bad, f"{len(bad)} source examples teach the target skill, e.g. {bad[0]}"


def alphabet() -> list[str]:
    """Every character any prompt or answer can contain (the tokenizer's vocabulary)."""
    chars = set(LETTERS) | set(string.digits) | {" ", "+"}
    for phrasings in PHRASINGS.values():
        for p in phrasings:
            chars |= set(p.replace("{s}", "").replace("{a}", "").replace("{b}", "")
                         .replace("{c}", "").replace("{t}", ""))  # fmt: skip
    return sorted(chars)
