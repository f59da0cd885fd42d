"""``Trainer`` the course's way: one progress bar per training, and the best epoch restored whole.

Every ``Trainer`` in the course (notebooks 07 and 10, :mod:`ftnotes.text.finetune`,
:mod:`ftnotes.reallm.sft`) goes through :func:`quiet`: transformers' ``ProgressCallback`` draws
a bar per evaluation and ``PrinterCallback`` prints every log dict, where a student wants one
bar per training and plots ``trainer.state.log_history`` instead. :func:`restore_best` finishes
``load_best_model_at_end`` for models whose weight names transformers 5 converts (a ViT: see
:class:`BestModelRestorer`).

Importing it imports :mod:`ftnotes.hf`, which switches the Hugging Face libraries offline and
their own bars ("Loading weights", "Writing model shards") off.
"""

from __future__ import annotations

from tqdm.auto import tqdm
from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

from ftnotes import hf  # noqa: F401  (offline, and the libraries' own bars off; see its _go_offline)
from ftnotes.utils import progress_disabled  # also hf_trainer.progress_disabled (notebook 07)


class TrainingBar(TrainerCallback):
    """One progress bar per ``Trainer.train()``, counting optimizer steps, and nothing else.

    ``Trainer``'s own ``ProgressCallback`` also opens a bar for every evaluation (one per epoch
    with ``eval_strategy="epoch"``) and writes every log dict below the bar; notebook 07 plots
    ``trainer.state.log_history`` instead. Silent under ``args.disable_tqdm`` or
    ``$TQDM_DISABLE``. ``desc`` labels the bar; ``leave=False`` clears it when the training ends
    (for loops of many short runs, such as notebook 10's).
    """

    def __init__(self, desc: str = "training", leave: bool = True):
        self.desc, self.leave, self.bar = desc, leave, None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            off = bool(args.disable_tqdm) or progress_disabled()
            self.bar = tqdm(total=state.max_steps, desc=self.desc, unit="step", leave=self.leave,
                            disable=off)  # fmt: skip

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def quiet(trainer, desc: str = "training", leave: bool = True):
    """``trainer`` with one progress bar per training and no other output from its loop.

    Replaces ``PrinterCallback`` / ``ProgressCallback`` (a bar per evaluation, a printed dict
    per log) by a :class:`TrainingBar` (``desc``, ``leave``). The libraries' own bars
    (transformers' "Writing model shards" at every checkpoint save, "Loading weights") are
    switched off when :mod:`ftnotes.hf` is imported. Returns the trainer.
    """
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(TrainingBar(desc, leave))
    return trainer


class BestModelRestorer(TrainerCallback):
    """Finish ``load_best_model_at_end`` for a model whose weight names transformers converts.

    transformers 5 saves each checkpoint under the original format's names (ViT:
    ``vit.encoder.layer.0.attention.attention.query``) and ``Trainer`` reloads the best one with
    a plain ``load_state_dict`` under today's names (``vit.layers.0.attention.q_proj``): only the
    tensors whose names did not change come back, with a "missing keys" warning (hidden at
    verbosity "error"), and the model is a mix of the best and the last epoch (seen with
    transformers 5.25; ``tests/test_hf_trainer.py`` measures it). ``from_pretrained`` converts
    the names: after Trainer's own attempt, load the best checkpoint that way and copy every
    tensor into the model (strict). peft models are left alone: Trainer reloads their adapter
    with peft's loader, which gets it right.
    """

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not args.load_best_model_at_end or state.best_model_checkpoint is None:
            return
        if model is None or hasattr(model, "peft_config"):
            return
        best = type(model).from_pretrained(state.best_model_checkpoint, local_files_only=True)
        model.load_state_dict(best.state_dict(), strict=True)  # copies onto model's device


def restore_best(trainer):
    """Add :class:`BestModelRestorer` to ``trainer`` (a no-op without
    ``load_best_model_at_end``); returns the trainer."""
    trainer.add_callback(BestModelRestorer)
    return trainer
