"""The quiz questions of the Hugging Face stack and the real models (notebooks 07-11).

Same format and the same balance rules as :mod:`ftnotes.exercises.quiz_bank`, which merges
these into the one ``QUIZZES`` (kept in two files so that neither passes 400 lines).
"""

STACK_QUIZZES = {
    "07_ignore_mismatched": (
        "Notebook 07 loads the 34-class glyph checkpoint for 10 digit classes with "
        "ignore_mismatched_sizes=True. What did it measure on the digits test split?",
        [
            (
                "The glyph rows 0–9 are kept, since their labels match the new id2label",
                False,
                "transformers matches tensors by name and shape, never rows by label: the 34-row "
                "weight does not fit, so it is dropped.",
            ),
            (
                "The whole head is re-initialised: the zero-shot accuracy falls to chance level",
                True,
                "the only sign is a line in the load report; copying the rows of '0'-'9' by "
                "hand keeps the zero-shot classifier.",
            ),
            (
                "The load is refused, because a 10-row head cannot take a 34-row weight",
                False,
                "that happens *without* the flag; with it the load succeeds and says little.",
            ),
            (
                "The 34 rows are cut to the first 10, which happen to be the digits",
                False,
                "a mismatched tensor is never sliced; it is replaced by a fresh one.",
            ),
        ],
    ),  # fmt: skip
    "08_answer_only_loss": (
        "Notebook 08 fine-tunes once with labels = -100 on the prompt and once with the loss on "
        "every token. What does scoring the prompt tokens do?",
        [
            (
                "Most of the loss is unpredictable prompt letters, so the answer learns less",
                True,
                "the letters after 'mirror ' are random (log 26 each at best) and their gradients "
                "teach nothing about answering: exact match is lower after the same steps.",
            ),
            (
                "The model learns faster, since every token now gives it a training signal",
                False,
                "a random letter is no signal: it cannot be predicted from what comes before.",
            ),
            (
                "Nothing measurable: the prompt is the same in every example, so its loss is 0",
                False,
                "only the instruction word is shared; the letters after it differ in every "
                "example, and their loss stays high.",
            ),
            (
                "Generation breaks: the model learns to repeat the prompt instead of answering",
                False,
                "generation starts after <|assistant|> and the model still answers; it answers "
                "worse, because less of each step went into answering.",
            ),
        ],
    ),  # fmt: skip
    "09_lora_activations": (
        "Notebook 09 estimates LoRA (r = 8 on q and v) against full fine-tuning for a real-size "
        "model. Why does LoRA keep most of the activation memory?",
        [
            (
                "LoRA's A and B matrices are as large as the activations that they multiply",
                False,
                "A and B are r x width: tiny next to batch x tokens x width of activations.",
            ),
            (
                "The gradient still flows back through every layer to reach the adapters below",
                True,
                "each layer's saved inputs are needed to pass the gradient down; only a frozen "
                "probe, with no gradient crossing the encoder, saves almost nothing.",
            ),
            (
                "The frozen layers still need their optimizer state for the next step",
                False,
                "frozen weights have no gradient and no optimizer state: dropping both is "
                "exactly LoRA's saving.",
            ),
            (
                "Activations depend on the model's width alone, never on what trains",
                False,
                "what trains decides what is saved: a matmul keeps its input only if a gradient "
                "must flow through it or its weight trains.",
            ),
        ],
    ),  # fmt: skip
    "10_probe_or_finetune": (
        "A contest gives you a frozen-in-a-folder text encoder, 400 labelled texts and 10 "
        "minutes on a CPU. The probe (frozen embeddings + logistic regression) scores 0.90 on "
        "validation. What next?",
        [
            (
                "Fine-tune every weight, since fine-tuning always beats a frozen probe",
                False,
                "not always: on the concrete categories the probe was already near the ceiling "
                "and fine-tuning added little for many times the cost.",
            ),
            (
                "Switch to TF-IDF, which needs no model and so cannot overfit the texts",
                False,
                "TF-IDF was the weakest baseline on both tasks: it sees only the words.",
            ),
            (
                "Read the probe's validation errors before paying for any fine-tuning",
                True,
                "if its errors are distinctions the encoder never learned, fine-tuning can pay; "
                "if the probe is near what the data allows, spend the time elsewhere.",
            ),
            (
                "Train the same architecture from scratch so that nothing pretrained leaks in",
                False,
                "with a few hundred texts, a transformer from scratch learns next to nothing "
                "(the bench: close to chance).",
            ),
        ],
    ),  # fmt: skip
    "10_padding_mask": (
        "You mean-pool a padded batch but average over every position, the [PAD] ones too. "
        "What goes wrong?",
        [
            (
                "Nothing: padded positions hold zero vectors, so they add nothing to the sum",
                False,
                "the encoder computes a vector at every position, padding included; those "
                "vectors are not zero.",
            ),
            (
                "The tokenizer refuses the batch, because pooling needs equal lengths",
                False,
                "the tokenizer pads to equal lengths; the mistake is silent.",
            ),
            (
                "Only the longest text of the batch gets a wrong embedding",
                False,
                "the opposite: the longest row has no padding and is the only one left right.",
            ),
            (
                "A text's embedding depends on the other texts in its batch",
                True,
                "the shorter rows average in padding vectors, as many as the longest row "
                "dictates: same text, another batch, another embedding. Use the mask.",
            ),
        ],
    ),  # fmt: skip
    "11_pad_eos": (
        "SmolLM2's pad token is its EOS, <|im_end|>. You pad a training batch and set "
        "labels = -100 wherever input_ids == pad_token_id. What goes wrong?",
        [
            (
                "Nothing: the padding is masked, and the attention mask hides the pads as well",
                False,
                "the attention mask is about what positions see; the labels lost more than "
                "the pads: the id of every pad is also the id of the real EOS.",
            ),
            (
                "The EOS that ends each answer is masked too, so the model never learns to stop",
                True,
                "pad and EOS share one id, so masking by id drops the one token that teaches "
                "the model to end its turn; mask padding by position (the attention mask).",
            ),
            (
                "The prompt tokens are now scored, so the model learns to repeat the definitions",
                False,
                "whether the prompt is scored depends on the prompt mask (-100 on the prompt), "
                "not on how padding is found.",
            ),
            (
                "The loss averages over no tokens in most rows, so training diverges at once",
                False,
                "the answer tokens are still scored; the loss stays finite. The harm is quieter.",
            ),
        ],
    ),  # fmt: skip
}
