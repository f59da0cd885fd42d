"""The conceptual questions: one multiple-choice question per id, each option with its reason.

Format: ``id: (question, [(option, correct, why), ...])``; exactly one option is correct. The
"why" of a wrong option says what is wrong with it; the right option's says why it is right.
"""

QUIZZES = {
    "00_strategy_small_near": (
        "200 labelled images per class, a domain close to the pretraining data, a laptop CPU. "
        "What do you try first?",
        [
            (
                "Train a CNN from scratch",
                False,
                "200 images are too few to learn good features; the pretrained ones are free.",
            ),
            (
                "A linear probe (frozen backbone, new head), then a PEFT method if it falls short",
                True,
                "near domain + little data: the pretrained features already fit, so train "
                "the few parameters that must change; it is fast and cannot overfit much.",
            ),
            (
                "Full fine-tuning with a large learning rate",
                False,
                "a large rate on all weights destroys the pretrained features (and the source "
                "task) and overfits 200 images.",
            ),
            (
                "Pretrain a bigger backbone first",
                False,
                "there is no data or compute for that, and no need: the domain is close.",
            ),
        ],
    ),  # fmt: skip
    "01_full_ft_earns_cost": (
        "When does full fine-tuning earn its cost over a linear probe or LoRA?",
        [
            (
                "Always: more trainable parameters means higher accuracy",
                False,
                "with little data full fine-tuning overfits and forgets; it often loses to PEFT.",
            ),
            (
                "With plenty of target data and a large domain shift, when features must change "
                "deep down and you can afford one model copy per task",
                True,
                "then the lower layers need new features, the data supports training them all, "
                "and the compute and storage of a full copy are worth it.",
            ),
            (
                "When the target domain is almost the source domain",
                False,
                "then the features already fit: a probe or PEFT gets there for a fraction.",
            ),
            (
                "When you must keep the source task's accuracy",
                False,
                "full fine-tuning moves every weight: it forgets the source task most.",
            ),
        ],
    ),  # fmt: skip
    "01_llrd_assumption": (
        "What does layer-wise learning-rate decay (LLRD) assume about the layers?",
        [
            (
                "Lower layers hold general features that need little change; higher layers are "
                "task-specific and must move more",
                True,
                "so the rate shrinks by `decay` for each step away from the head.",
            ),
            (
                "All layers are equally task-specific",
                False,
                "then one learning rate for all would do; LLRD would have no reason.",
            ),
            (
                "Lower layers need the largest updates",
                False,
                "that is LLRD applied bottom-up: the opposite of its assumption.",
            ),
            ("The head must be frozen", False, "the head is new and gets the base (largest) rate."),
        ],
    ),  # fmt: skip
    "02_adapter_latency": (
        "After training, why do bottleneck adapters cost inference time while LoRA need not?",
        [
            (
                "Adapters have more parameters",
                False,
                "at a similar budget they have about as many; the count is not the reason.",
            ),
            (
                "The adapter's non-linearity keeps it a separate computation; LoRA's update "
                "B·A is linear and merges into W",
                True,
                "x + up(act(down(x))) cannot be folded into a weight matrix; W + (α/r)·B·A can.",
            ),
            ("Adapters run on the CPU only", False, "they run wherever the model runs."),
            (
                "LoRA skips the frozen layers",
                False,
                "LoRA still runs every layer; merged, it runs them with one matrix each.",
            ),
        ],
    ),  # fmt: skip
    "03_why_b_zero": (
        "Why is LoRA's B initialised to zero (and A at random)?",
        [
            ("To save memory", False, "zeros take as much memory as any other values."),
            (
                "So that B·A = 0: the adapted model starts exactly at the pretrained function, "
                "and A random still gives B a gradient",
                True,
                "training starts from what the backbone knows; if A were zero too, neither "
                "factor would ever get a gradient.",
            ),
            ("Because B is never trained", False, "B is trained; it only starts at zero."),
            (
                "To make the update full-rank",
                False,
                "zero has rank 0; the update's rank is at most r by construction.",
            ),
        ],
    ),  # fmt: skip
    "04_prompt_no_merge": (
        "What can prompt (and prefix) tuning NOT do that LoRA can?",
        [
            (
                "Be trained with a frozen backbone",
                False,
                "they train with the backbone frozen, like LoRA.",
            ),
            (
                "Be merged into the weights: the extra tokens stay at inference and lengthen "
                "every sequence",
                True,
                "prompts are extra inputs, not a change of W, so they cannot be folded in; "
                "attention pays for the P extra tokens on every call.",
            ),
            (
                "Serve several tasks from one backbone",
                False,
                "swapping a small prompt per task is one of their strengths.",
            ),
            (
                "Store the task in few parameters",
                False,
                "P·D (or 2·depth·P·D) is tiny; that is the point.",
            ),
        ],
    ),  # fmt: skip
    "05_no_test_tuning": (
        "Why must you never choose hyperparameters on the test set?",
        [
            ("It is slower than using validation", False, "the cost is the same."),
            (
                "The test score would then be a selected maximum, an optimistic estimate of how "
                "the model does on new data",
                True,
                "every choice made with the test set leaks it into training; pick on "
                "validation, report test once.",
            ),
            (
                "The test set is too small to train on",
                False,
                "size is not the issue: any use for choices biases it.",
            ),
            ("Test labels are noisier", False, "they are the same kind of labels."),
        ],
    ),  # fmt: skip
    "05_warmup_protects": (
        "What does learning-rate warmup protect against when fine-tuning?",
        [
            (
                "Overfitting late in training",
                False,
                "warmup acts only in the first steps; late overfitting is the decay's and "
                "early stopping's job.",
            ),
            (
                "Large early updates driven by a random new head and Adam's not yet settled "
                "statistics, which can wreck the pretrained features",
                True,
                "the first gradients are large and noisy; a small rate at first lets the head "
                "and the optimiser settle before the backbone moves much.",
            ),
            (
                "Vanishing gradients in deep layers",
                False,
                "warmup does not change gradient sizes, only the step taken with them.",
            ),
            ("Too small a final learning rate", False, "that is the end of the schedule."),
        ],
    ),  # fmt: skip
    "06_many_tasks": (
        "Olympiad: serve 20 small tasks from one backbone on one machine, small storage. "
        "Which strategy?",
        [
            ("Fully fine-tune 20 copies", False, "20 full copies of the weights: storage x20."),
            (
                "One shared frozen backbone plus a small LoRA or adapter per task, swapped in",
                True,
                "each task stores only r·(in+out) per adapted layer; the backbone is loaded once.",
            ),
            (
                "One model fine-tuned on all tasks in turn",
                False,
                "sequential fine-tuning forgets the earlier tasks.",
            ),
            ("Train 20 models from scratch", False, "no data or time for that."),
        ],
    ),  # fmt: skip
    "06_retention_score": (
        "Olympiad: the score is ½·(source accuracy kept) + ½·(target accuracy). "
        "Which strategy is safest?",
        [
            (
                "Full fine-tuning with a large learning rate",
                False,
                "the body drifts and the source head no longer fits it: retention collapses.",
            ),
            (
                "A parameter-efficient method (frozen body: linear probe, LoRA kept unmerged, "
                "prompts) that leaves the source path intact",
                True,
                "the source head on the unchanged body keeps its accuracy while the target "
                "gains, so both halves of the score count.",
            ),
            (
                "Train on target only and ignore the source half",
                False,
                "that gives away up to half the score.",
            ),
            (
                "Retrain the source head on target data",
                False,
                "then the source classes are no longer predicted at all.",
            ),
        ],
    ),  # fmt: skip
    "06_time_budget": (
        "Olympiad: 10 minutes of laptop CPU, 500 labelled target images, near domain. "
        "What do you run first?",
        [
            (
                "A long full fine-tuning run with a sweep of learning rates",
                False,
                "the sweep alone blows the budget; start with what gives a baseline in a minute.",
            ),
            (
                "A linear probe for a baseline, then LoRA with the time left, choosing on "
                "validation",
                True,
                "a probe gives a safe score in seconds; LoRA usually improves on it cheaply; "
                "validation tells you which to submit.",
            ),
            (
                "Pretrain on the target images first",
                False,
                "500 images and 10 minutes are far too little for pretraining.",
            ),
            (
                "Tune on the test set to save time",
                False,
                "it gives an optimistic score and is against the rules.",
            ),
        ],
    ),  # fmt: skip
    "06_far_domain": (
        "Olympiad: the target images look very different from the source, and you have "
        "10 000 labels and an hour. Which strategy?",
        [
            (
                "Linear probe only",
                False,
                "with a large domain shift the frozen features do not fit: the probe plateaus.",
            ),
            (
                "Fine-tune deeper (unfreeze more blocks or fully, with LLRD and warmup)",
                True,
                "a far domain needs new features down the network, and 10 000 labels can "
                "support training them; LLRD and warmup keep the useful general layers.",
            ),
            ("Prompt tuning with 1 token", False, "far too little capacity for a far shift."),
            ("Keep the source head", False, "it predicts the wrong classes."),
        ],
    ),  # fmt: skip
    "06_hidden_split": (
        "Contest grading: the grader re-runs your notebook with a hidden test split in place of "
        "the public one. What should your notebook do?",
        [
            (
                "Hard-code the predictions it made on the public test inputs",
                False,
                "the hidden split has other images and other ids: the file is rejected.",
            ),
            (
                "Train, choose on validation data, and predict whatever test inputs load() serves",
                True,
                "then the same notebook scores on the hidden split, within the time limit.",
            ),
            (
                "Tune the learning rate until the public test accuracy is highest",
                False,
                "you have no test labels, and a score tuned on a test set flatters itself.",
            ),
        ],
    ),  # fmt: skip
    "06_one_softmax": (
        "Old and new classes share ONE softmax. You expand the head and train only the new rows "
        "on new images. What happens to the old classes?",
        [
            (
                "Nothing: their rows are copied, so their answers are unchanged",
                False,
                "true only when old images are scored on the old rows alone; in one softmax a "
                "new row can win on an old image.",
            ),
            (
                "Some old images go to new classes, unless replay or a tuned new-row scale "
                "keeps the new rows in check",
                True,
                "the argmax is over all rows: the new rows compete for every image.",
            ),
            (
                "The old rows change too, because the softmax couples them",
                False,
                "frozen rows get no update; what changes is which row wins.",
            ),
        ],
    ),  # fmt: skip
}
