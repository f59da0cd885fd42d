"""Will it fit? The memory and time of fine-tuning a transformers model, predicted and measured.

``estimate(model_or_config, Setup(...))`` gives the memory terms and the FLOPs of a step (a
classifier's or, with ``Setup(task="causal-lm")``, a causal LM's supervised fine-tuning);
``measure(config, Setup(...))`` runs a real step and counts the same terms; ``DEVICES`` holds the
peak throughputs of the usual GPUs, cited from their datasheets.
"""

from .devices import DEVICES, PRECISIONS, Device
from .estimate import (
           GB,
           METHODS,
           OPTIMIZERS,
           TASKS,
           Estimate,
           Setup,
           estimate,
           meta_model,
           step_seconds,
           steps_in,
)
from .measure import build, measure, measure_step, random_batch, time_step
from .models import MODELS, config

__all__ = ["DEVICES", "GB", "METHODS", "MODELS", "OPTIMIZERS", "PRECISIONS", "TASKS", "Device",
           "Estimate", "Setup", "build", "config", "estimate", "measure", "measure_step",
           "meta_model", "random_batch", "step_seconds", "steps_in", "time_step"]  # fmt: skip
