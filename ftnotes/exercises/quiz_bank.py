"""The conceptual questions: one multiple-choice question per id, each option with its reason.

Format: ``id: (question, [(option, correct, why), ...])``; exactly one option is correct. The
"why" of a wrong option says what is wrong with it; the right option's says why it is right.

The bank is balanced so that it cannot be gamed (``tests/test_exercises_quizzes.py`` checks it):
the right answers are spread evenly over the letters, the right option is the longest in at
most 30% of the questions (and the shortest in at most 30%), right options make one claim (no
"X, or Y", "X, unless Y", "X, then Y" hedges that are right because they cover everything), and
every wrong option is something a student could believe (no "hard-code the predictions"). So
neither "always (b)", "the longest", "the shortest" nor "the careful-sounding one" passes.
"""

from .quiz_bank_stack import STACK_QUIZZES

QUIZZES = {
    "00_strategy_small_near": (
        "200 labelled images per class, a domain close to the pretraining data, a laptop CPU. "
        "What do you try first?",
        [
            (
                "A linear probe: train only a new head on the frozen backbone's features",
                True,
                "near domain + little data: the pretrained features already fit, so train "
                "the few parameters that must change; it is fast, cannot overfit much, and "
                "gives the baseline any PEFT method must beat.",
            ),
            (
                "A small CNN from scratch, since 2,000 images are enough for a CNN on 8x8 inputs",
                False,
                "a scratch CNN can get close with enough steps, but it throws away features "
                "that are free; start with what is cheap and already fits, then compare.",
            ),
            (
                "Full fine-tuning at the learning rate you would use for training from scratch",
                False,
                "a from-scratch rate on all weights wrecks the pretrained features (and the "
                "source task) before it helps the target; it also overfits small sets.",
            ),
            (
                "LoRA on every linear layer at a high rank, so that it surely can adapt",
                False,
                "it can adapt, but a high rank everywhere is slower and overfits 200 images "
                "per class more easily than a head on features that already fit.",
            ),
        ],
    ),  # fmt: skip
    "01_full_ft_earns_cost": (
        "When does full fine-tuning earn its cost over a linear probe or LoRA?",
        [
            (
                "Almost always, because more trainable parameters mean a higher accuracy",
                False,
                "with little data full fine-tuning overfits and forgets; it often loses to PEFT.",
            ),
            (
                "When the target domain is almost the source domain and labels are scarce",
                False,
                "then the features already fit: a probe or PEFT gets there for a fraction.",
            ),
            (
                "With plenty of target data and a large shift that needs new deep features",
                True,
                "then the lower layers need new features, the data supports training them all, "
                "and the compute and storage of a full copy per task are worth it.",
            ),
            (
                "When the source task's accuracy must be kept while the target task is learned",
                False,
                "full fine-tuning moves every weight: it forgets the source task most.",
            ),
        ],
    ),  # fmt: skip
    "01_llrd_assumption": (
        "What does layer-wise learning-rate decay (LLRD) assume about the layers?",
        [
            (
                "All layers are about equally task-specific, so they share one learning rate",
                False,
                "then one learning rate for all would do; LLRD would have no reason.",
            ),
            (
                "Lower layers are the least adapted to the new task, so they need the largest steps",
                False,
                "that is LLRD applied bottom-up: the opposite of its assumption.",
            ),
            (
                "The new head must stay frozen while the pretrained layers below it adapt",
                False,
                "the head is new and gets the base (largest) rate.",
            ),
            (
                "Lower layers hold general features that need little change; the higher ones must move",
                True,
                "so the rate shrinks by `decay` for each step away from the head.",
            ),
        ],
    ),  # fmt: skip
    "02_adapter_latency": (
        "After training, why do bottleneck adapters cost inference time while LoRA need not?",
        [
            (
                "Adapters train many more parameters than LoRA at any practical budget",
                False,
                "at a similar budget they have about as many; the count is not the reason.",
            ),
            (
                "The adapter's non-linearity keeps it a separate layer; LoRA's B·A merges into W",
                True,
                "x + up(act(down(x))) cannot be folded into a weight matrix; W + (α/r)·B·A can.",
            ),
            (
                "Adapters sit after every sub-layer, so their gradients must be kept at inference",
                False,
                "no gradients exist at inference; the cost is the extra layers' forward pass.",
            ),
            (
                "LoRA skips the frozen layers at inference and only runs its low-rank matrices",
                False,
                "LoRA still runs every layer; merged, it runs them with one matrix each.",
            ),
        ],
    ),  # fmt: skip
    "03_why_b_zero": (
        "Why is LoRA's B initialised to zero (and A at random)?",
        [
            (
                "Zeros are stored sparsely, so the adapter takes less memory during training",
                False,
                "zeros take as much memory as any other values in a dense tensor.",
            ),
            (
                "B is never trained: only A learns, and B = 0 keeps the update small and stable",
                False,
                "B is trained; it only starts at zero.",
            ),
            (
                "So that B·A = 0 at the start, while A random still gives B a gradient",
                True,
                "training starts exactly from the pretrained function; if A were zero too, "
                "neither factor would ever get a gradient.",
            ),
            (
                "A zero B makes the update full-rank, so it can express any change of W",
                False,
                "zero has rank 0; the update's rank is at most r by construction.",
            ),
        ],
    ),  # fmt: skip
    "04_prompt_no_merge": (
        "What can prompt (and prefix) tuning NOT do that LoRA can?",
        [
            (
                "Be merged into the weights: the extra tokens remain and lengthen every input",
                True,
                "prompts are extra inputs, not a change of W, so they cannot be folded in "
                "(they cannot be merged); attention pays for the P extra tokens on every call.",
            ),
            (
                "Be trained with the backbone frozen, since attention weights must adapt too",
                False,
                "they train with the backbone frozen, like LoRA.",
            ),
            (
                "Serve several tasks from one backbone, because prompts change every layer",
                False,
                "swapping a small prompt per task is one of their strengths, even in one batch.",
            ),
            (
                "Store a task in a few thousand parameters instead of a full model copy",
                False,
                "P·D (or 2·depth·P·D) is tiny; that is the point.",
            ),
        ],
    ),  # fmt: skip
    "05_no_test_tuning": (
        "Why must you never choose hyperparameters on the test set?",
        [
            (
                "Evaluating on the test set is slower than evaluating on the validation split",
                False,
                "the cost is the same.",
            ),
            (
                "The test set is too small to give a stable accuracy for each candidate",
                False,
                "size is not the issue: any use for choices biases it, small or large.",
            ),
            (
                "Test labels are noisier than training labels, so they mislead the choice",
                False,
                "they are the same kind of labels.",
            ),
            (
                "The chosen score is a selected maximum: it overstates accuracy on new data",
                True,
                "every choice made with the test set leaks it into training; pick on "
                "validation, report test once.",
            ),
        ],
    ),  # fmt: skip
    "05_warmup_protects": (
        "What does learning-rate warmup protect against when fine-tuning?",
        [
            (
                "Overfitting late in training, once the training loss is already near zero",
                False,
                "warmup acts only in the first steps; late overfitting is the decay's and "
                "early stopping's job.",
            ),
            (
                "Large early updates from a fresh head and Adam's unsettled statistics",
                True,
                "the first gradients are large and noisy; a small rate at first lets the head "
                "and the optimiser settle before the backbone moves much.",
            ),
            (
                "Vanishing gradients in the deepest layers of the pretrained network",
                False,
                "warmup does not change gradient sizes, only the step taken with them.",
            ),
            (
                "A final learning rate that is too small for the last epochs to learn anything",
                False,
                "that is the end of the schedule, which the decay shapes, not the warmup.",
            ),
        ],
    ),  # fmt: skip
    "06_many_tasks": (
        "Olympiad: serve 20 small tasks from one backbone on one machine, small storage. "
        "Which strategy?",
        [
            (
                "One frozen backbone plus a small LoRA adapter per task, swapped in",
                True,
                "each task stores only r·(in+out) per adapted layer; the backbone is loaded once "
                "(bottleneck adapters would do the same job).",
            ),
            (
                "Fully fine-tune 20 copies and compress each one to half precision",
                False,
                "20 full copies at half precision are still storage x10, and training x20.",
            ),
            (
                "One model fine-tuned on all 20 tasks in turn, one task after another",
                False,
                "sequential fine-tuning forgets the earlier tasks.",
            ),
            (
                "Train 20 small models from scratch, each one sized for its own task",
                False,
                "no data or time for that, and small tasks are where pretraining helps most.",
            ),
        ],
    ),  # fmt: skip
    "06_retention_score": (
        "Olympiad: the score is ½·(source accuracy kept) + ½·(target accuracy). "
        "Which strategy is safest?",
        [
            (
                "Full fine-tuning with a large learning rate, so the target half is maximal",
                False,
                "the body drifts and the source head no longer fits it: retention collapses.",
            ),
            (
                "LoRA merged into the weights, since a low-rank change cannot hurt the old task",
                False,
                "LoRA and prompts change what the body computes for every input, old ones "
                "too; only switching them off for source images restores the source path.",
            ),
            (
                "Keep the body frozen and train new head rows for the target classes only",
                True,
                "the source rows on an unchanged body keep their accuracy while the target rows "
                "learn, so both halves of the score count (replay or distillation can protect a "
                "body that must train).",
            ),
            (
                "Retrain the source head on the target data so one head serves both tasks",
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
                "A long full fine-tuning run with a sweep of six learning rates",
                False,
                "the sweep alone blows the budget; start with what gives a baseline in a minute.",
            ),
            (
                "LoRA at rank 64 on every linear layer, trained for as long as time allows",
                False,
                "a large adapter is slow per step and may not finish, and without a quick "
                "baseline a failed run leaves nothing to submit.",
            ),
            (
                "Prompt tuning, since it trains the fewest parameters and so runs fastest",
                False,
                "few trained parameters do not make a fast step: the backward still crosses the "
                "whole backbone, and on a small model prompts learn little (notebook 04).",
            ),
            (
                "A linear probe, for a safe baseline score within the first minute",
                True,
                "a probe scores in seconds; the remaining minutes can try LoRA against it, "
                "chosen on validation.",
            ),
        ],
    ),  # fmt: skip
    "06_far_domain": (
        "Olympiad: the target images look very different from the source, and you have "
        "10 000 labels and an hour. Which strategy?",
        [
            (
                "A linear probe only, since frozen features never overfit 10 000 labels",
                False,
                "with a large domain shift the frozen features do not fit: the probe plateaus.",
            ),
            (
                "Fine-tune every block, with layer-wise rate decay and a warmup",
                True,
                "a far domain needs new features down the network, and 10 000 labels can "
                "support training them; LLRD and warmup keep the useful general layers.",
            ),
            (
                "Prompt tuning with a single token, the cheapest method in the course",
                False,
                "far too little capacity for a far shift.",
            ),
            (
                "Keep the source head and map its classes onto the target classes",
                False,
                "it predicts the wrong classes, and the features do not fit either.",
            ),
        ],
    ),  # fmt: skip
    "06_hidden_split": (
        "Contest grading: the grader re-runs your notebook with a hidden test split in place of "
        "the public one. What should your notebook do?",
        [
            (
                "Load a model it trained earlier from a saved file, so the re-run skips training",
                False,
                "the grader runs the notebook in a fresh folder: a file from your machine is not "
                "there, and training inside the time limit is part of the task.",
            ),
            (
                "Tune the learning rate until the public test accuracy is the highest",
                False,
                "you have no test labels, and a score tuned on a test set flatters itself.",
            ),
            (
                "Train, choose on validation, and predict the test inputs load() serves",
                True,
                "then the same notebook scores on the hidden split, within the time limit.",
            ),
        ],
    ),  # fmt: skip
    "06_one_softmax": (
        "Old and new classes share ONE softmax. You expand the head and train only the new rows "
        "on new images. What happens to the old classes?",
        [
            (
                "Some old images now go to a new class: a new row wins their argmax",
                True,
                "the argmax is over all rows: the new rows compete for every image (replay or a "
                "tuned row scale limits it).",
            ),
            (
                "Nothing: their rows are copied and frozen, so their answers are unchanged",
                False,
                "true only when old images are scored on the old rows alone; in one softmax a "
                "new row can win on an old image.",
            ),
            (
                "The old rows change too, because the softmax couples every row's gradient",
                False,
                "frozen rows get no update; what changes is which row wins.",
            ),
        ],
    ),  # fmt: skip
    **STACK_QUIZZES,
}
