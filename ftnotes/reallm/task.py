"""The task of notebook 11: name the WordNet category of a noun from its definition, as a
completion the model writes.

Each example is a chat: a system turn that lists the categories, the definition as the user's
turn, and an assistant turn that the prompt has already started with :data:`PREFILL`::

    <|im_start|>system\\nCategories: animal, artifact, food, location, person, plant.<|im_end|>\\n
    <|im_start|>user\\ntype genus of the Agamidae<|im_end|>\\n
    <|im_start|>assistant\\nThis noun names a kind of        <- the prompt ends here
     animal<|im_end|>                                        <- the completion (one token + EOS)

Ending the prompt inside the assistant's turn pins the answer's form: an instruct model asked
"what category?" writes a sentence; after "a kind of" its next word *is* the answer. Every
category is one token with its leading space (``Ġanimal``), so greedy decoding needs one new
token per answer. The data are the WordNet 3.0 definitions of :mod:`ftnotes.text` (fixed
train / validation / test splits per category).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ftnotes.reallm.model import chat_text, generate

CATEGORIES = ("animal", "artifact", "food", "location", "person", "plant")
PREFILL = "This noun names a kind of"


@dataclass(frozen=True)
class Example:
    """One definition and its category (a name from the task's categories)."""

    definition: str
    category: str


def system_prompt(categories=CATEGORIES) -> str:
    """The system turn: the list of allowed answers, as short as it can be (every token of it is
    in every prompt). A wordier one, "Name the category of the noun defined by the user: ...",
    is 8 tokens longer; on 60 validation definitions it gave zero-shot 0.267 instead of 0.200
    and 2-shot 0.383 instead of 0.500 (within the noise of 60 answers either way)."""
    return f"Categories: {', '.join(categories)}."


def load_examples(split: str, per_class: int | None = None, seed: int = 0,
                  categories=CATEGORIES) -> list[Example]:  # fmt: skip
    """The ``split`` ("train", "validation", "test") of the WordNet subset for ``categories``;
    ``per_class`` keeps that many per category (nested across sizes, order fixed by ``seed``).
    Categories are interleaved (one of each in turn), so any prefix is balanced."""
    from ftnotes.text import load_definitions

    d = load_definitions(tuple(categories), split, per_class=per_class, seed=seed)
    by_class = [[t for t, y in zip(d.texts, d.labels) if y == k] for k in range(len(d.label_names))]
    out = []
    for i in range(max(map(len, by_class))):
        out += [Example(texts[i], name) for texts, name in zip(by_class, d.label_names) if i < len(texts)]
    return out


def messages(definition: str, shots=(), categories=CATEGORIES) -> list[dict]:
    """The chat for ``definition``: the system turn, one user/assistant pair per solved example
    in ``shots`` (few-shot), then the definition as the last user turn."""
    turns = [{"role": "system", "content": system_prompt(categories)}]
    for ex in shots:
        turns += [{"role": "user", "content": ex.definition},
                  {"role": "assistant", "content": f"{PREFILL} {ex.category}"}]  # fmt: skip
    return turns + [{"role": "user", "content": definition}]


def prompt(tokenizer, example: Example, shots=(), categories=CATEGORIES) -> str:
    """The prompt text: chat template, assistant turn opened, ending with :data:`PREFILL`."""
    return chat_text(tokenizer, messages(example.definition, shots, categories), PREFILL)


def completion(example: Example) -> str:
    """What the model must write after the prompt: the category with its leading space (the
    end-of-turn token is added where the loss needs it, see :mod:`ftnotes.reallm.sft`)."""
    return " " + example.category


def prompt_completion(tokenizer, examples, categories=CATEGORIES) -> list[dict]:
    """TRL's prompt-completion rows ``{"prompt": str, "completion": str}``."""
    return [{"prompt": prompt(tokenizer, e, categories=categories), "completion": completion(e)}
            for e in examples]  # fmt: skip


def parse(continuation: str) -> str:
    """The answer in a continuation: its first word, lowercased, without punctuation."""
    words = continuation.strip().split()
    return words[0].strip(string.punctuation).lower() if words else ""


def predict(model, tokenizer, examples, shots=(), max_new_tokens: int = 2,
            categories=CATEGORIES) -> list[str]:  # fmt: skip
    """Greedy answers (:func:`parse` of each continuation) for ``examples``."""
    chats = [messages(e.definition, shots, categories) for e in examples]
    return [parse(c) for c in generate(model, tokenizer, chats, max_new_tokens, PREFILL)]


def accuracy(predictions, examples) -> float:
    """Share of predictions equal to their example's category."""
    if len(predictions) != len(examples) or not examples:
        raise ValueError(f"predictions and examples must be non-empty and of equal length, got "
                         f"{len(predictions)} and {len(examples)}")  # fmt: skip
    return sum(p == e.category for p, e in zip(predictions, examples)) / len(examples)
