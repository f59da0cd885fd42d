"""Forgetting, measured on what the instruct model could do before fine-tuning: the
log-likelihood it gives short reference answers to general instructions.

:data:`INSTRUCTIONS` are everyday questions with a one-sentence reference answer in the
assistant's style (facts, arithmetic, translation, word knowledge), none about word categories.
:func:`answer_loglik` is the mean log-probability per answer token (the answer's closing
``<|im_end|>`` included: stopping is an ability too), each question in the default chat format
(the template's own system turn). Higher is better; fine-tuning on a narrow task typically
lowers it. It is a cheap, deterministic proxy (one forward pass, no generation): a drop means
the model moved away from answers it used to find likely, not that every answer is now wrong.
"""

from __future__ import annotations

import torch

from ftnotes.reallm.model import chat_text
from ftnotes.reallm.sft import answer_logprobs, answer_only_batch

INSTRUCTIONS = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days are there in a week?", "There are seven days in a week."),
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
    ("What is 2 plus 3?", "2 plus 3 equals 5."),
    ("Translate 'thank you' into Spanish.", "Thank you in Spanish is 'gracias'."),
    ("What do bees make?", "Bees make honey."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is the opposite of hot?", "The opposite of hot is cold."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("At what temperature does water boil at sea level?", "Water boils at 100 degrees Celsius at sea level."),
    ("Give a synonym for happy.", "A synonym for happy is joyful."),
    ("What language is spoken in Brazil?", "The official language of Brazil is Portuguese."),
    ("What is the plural of mouse?", "The plural of mouse is mice."),
    ("What do plants need to make their food?", "Plants need sunlight, water and carbon dioxide to make their food."),
    ("Write a short greeting.", "Hello! How can I help you today?"),
)  # fmt: skip


def instruction_rows(tokenizer, pairs=INSTRUCTIONS) -> list[dict]:
    """Prompt-completion rows: the question as one user turn (the template adds its default
    system turn), the reference answer as the completion."""
    return [{"prompt": chat_text(tokenizer, [{"role": "user", "content": q}]), "completion": a}
            for q, a in pairs]  # fmt: skip


@torch.no_grad()
def answer_loglik(model, tokenizer, pairs=INSTRUCTIONS) -> float:
    """Mean log-probability per reference-answer token (``<|im_end|>`` included)."""
    batch = answer_only_batch(tokenizer, instruction_rows(tokenizer, pairs))
    device = next(model.parameters()).device
    logp = answer_logprobs(model, {k: v.to(device) for k, v in batch.items()})
    return float(logp.sum() / (batch["labels"][:, 1:] != -100).sum())
