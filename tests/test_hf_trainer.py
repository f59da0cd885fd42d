"""ftnotes.hf_trainer: one progress bar per training (ours, and text.finetune's), TQDM_DISABLE,
the thread rule, the best epoch restored."""

import os

import pytest
import torch
import tqdm.std
from torch.utils.data import TensorDataset
from transformers import Trainer, TrainerCallback, TrainingArguments, trainer_callback
from transformers.utils import logging as hf_logging

from ftnotes import hf, hf_trainer
from ftnotes.artifacts import WeightsError
from ftnotes.exercises.fixtures import tiny_vit
from ftnotes.text import encoder, finetune
from ftnotes.utils import pin_threads


def _trainer(tmp_path, **args):
    model = hf.to_hf(tiny_vit(num_classes=3), ["a", "b", "c"])
    g = torch.Generator().manual_seed(0)
    data, held_out = (TensorDataset(torch.rand(24, 1, 8, 8, generator=g),
                                    torch.randint(0, 3, (24,), generator=g)) for _ in range(2))  # fmt: skip
    kw = dict(output_dir=str(tmp_path), num_train_epochs=3, per_device_train_batch_size=8,
              eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
              save_total_limit=1, save_only_model=True, load_best_model_at_end=True,
              report_to="none", use_cpu=True, disable_tqdm=hf_trainer.progress_disabled())  # fmt: skip
    return Trainer(model=model, args=TrainingArguments(**(kw | args)), train_dataset=data,
                   eval_dataset=held_out, data_collator=hf.collate_images)  # fmt: skip


@pytest.fixture
def bars(monkeypatch):
    """Every tqdm bar the training loop opens (shown or not), wherever it comes from."""
    made = []

    class Recorded(tqdm.std.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "file": open(os.devnull, "w")})
            self.shown = not self.disable  # close() sets disable: read it now
            made.append(self)

    monkeypatch.setattr(hf_trainer, "tqdm", Recorded)
    monkeypatch.setattr(trainer_callback, "tqdm", Recorded)
    monkeypatch.setattr(hf_logging.tqdm_lib, "tqdm", Recorded)  # "Writing model shards"
    return made


def test_quiet_trainer_shows_one_bar_per_training_and_no_eval_or_save_bars(tmp_path, bars,
                                                                          monkeypatch):  # fmt: skip
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    trainer = hf_trainer.quiet(_trainer(tmp_path))
    trainer.train()  # 3 epochs: 3 evaluations and 3 checkpoint saves
    trainer.evaluate()
    shown = [b for b in bars if b.shown]
    assert len(shown) == 1 and shown[0].total == trainer.state.max_steps == 9
    assert shown[0].n == 9  # it counted every step
    assert not any(isinstance(c, trainer_callback.ProgressCallback)
                   for c in trainer.callback_handler.callbacks)  # fmt: skip


def test_finetune_train_shows_one_bar_labelled_and_cleared(tmp_path, bars, monkeypatch):
    """text.finetune's Trainer (notebook 10, its bench) goes through the same quiet():
    one bar, its ``desc``, cleared at the end (``leave=False``), also across an evaluation."""
    try:
        encoder.model_dir()
    except WeightsError as err:  # without `make models`
        pytest.skip(f"all-MiniLM-L6-v2 not obtained: {err}")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    _, tok = encoder.load_encoder()
    model = finetune.new_classifier(["a", "b"], method="lora", r=2)
    ds = finetune.tokenize(tok, ["one text", "another text", "a third", "and a fourth"],
                           [0, 1, 0, 1])  # fmt: skip
    trainer, _ = finetune.train(model, tok, ds, lr=1e-3, epochs=1, batch_size=2, desc="lora")
    trainer.evaluate(ds)
    shown = [b for b in bars if b.shown]
    assert len(shown) == 1 and shown[0].desc == "lora" and shown[0].n == 2
    assert shown[0].leave is False


def test_tqdm_disable_silences_the_training_bar(tmp_path, bars, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")  # tqdm.notebook would ignore it: read by ftnotes
    assert hf_trainer.progress_disabled()
    trainer = hf_trainer.quiet(_trainer(tmp_path))
    trainer.train()
    assert bars and not [b for b in bars if b.shown]
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not hf_trainer.progress_disabled()


def test_importing_hf_switches_the_library_bars_off():
    assert not hf_logging.is_progress_bar_enabled()  # ftnotes.hf does it, on import


@pytest.mark.parametrize("threads", [1, 2])
def test_trainer_keeps_the_pinned_thread_count(tmp_path, threads):
    """transformers/accelerate must not reset torch's threads (they do only for multi-process
    CPU training): every step of a Trainer run sees the count pin_threads set."""
    if threads > (os.cpu_count() or 1):
        pytest.skip("needs two cores")
    seen = []

    class Threads(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    try:
        pin_threads(threads)
        trainer = hf_trainer.quiet(_trainer(tmp_path, eval_strategy="no", save_strategy="no",
                                    load_best_model_at_end=False))  # fmt: skip
        trainer.add_callback(Threads)
        trainer.train()
    finally:
        torch.set_num_threads(before)
    assert seen == [threads] * 9


def test_load_best_model_at_end_restores_every_tensor_of_the_best_epoch(tmp_path):
    """Trainer alone reloads only the tensors whose names transformers did not convert (the
    encoder layers stay at the last epoch); with restore_best the model is the best epoch's.
    Random labels: the held-out loss is best early and the model overfits after."""
    snapshots = {}

    class Snapshot(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            snapshots[state.global_step] = {k: v.clone() for k, v in model.state_dict().items()}

    def run(restore):
        snapshots.clear()
        trainer = _trainer(tmp_path / str(restore), num_train_epochs=6, learning_rate=3e-2,
                           metric_for_best_model="eval_loss", greater_is_better=False)  # fmt: skip
        trainer.add_callback(Snapshot)
        hf_trainer.quiet(hf_trainer.restore_best(trainer) if restore else trainer).train()
        best = int(trainer.state.best_model_checkpoint.rsplit("-", 1)[1])
        assert best != trainer.state.global_step, "the test needs a best epoch before the last"
        state = trainer.model.state_dict()
        return max((state[k] - v).abs().max().item() for k, v in snapshots[best].items())

    assert run(restore=False) > 1e-4  # transformers' own reload: a mix of two epochs
    assert run(restore=True) == 0.0
