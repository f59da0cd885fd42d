"""Parameter-efficient fine-tuning, written from scratch, one module per method.

* :mod:`~ftnotes.peft.lora`: LoRA (Hu et al. 2021), mergeable into the weights.
* :mod:`~ftnotes.peft.dora`: DoRA (Liu et al. 2024), LoRA plus a learned magnitude per output.
* :mod:`~ftnotes.peft.adapters`: bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021;
  parallel, He et al. 2022).
* :mod:`~ftnotes.peft.ia3`: IA3 (Liu et al. 2022), vectors rescaling keys, values and MLP
  hidden units; mergeable.
* :mod:`~ftnotes.peft.bitfit`: BitFit (Ben Zaken et al. 2022), only the biases train; mergeable.
* :mod:`~ftnotes.peft.prompt`: prompt tuning / VPT (Lester et al. 2021; Jia et al. 2022).
* :mod:`~ftnotes.peft.prefix`: prefix tuning (Li & Liang 2021).
* :mod:`~ftnotes.peft.tasks`: many tasks on one backbone.
* :mod:`~ftnotes.peft.io`: adapter files tied to their backbone by a fingerprint.

What they share lives in two modules: :mod:`~ftnotes.peft.config` (the :class:`PeftConfig`
base; a method's config subclass declares its name, its tensors and whether it merges, and is
registered in :data:`CONFIGS` by being defined) and :mod:`~ftnotes.peft.tuners` (matching
module names, replacing modules, and one on/off, merge and remove protocol for every method:
:func:`set_enabled`, :func:`merge`, :func:`unmerge`, :func:`remove`).

Layer methods attach in place to any torch model by module name; prompt and prefix tuning
wrap a :class:`ftnotes.models.TinyViT`.
"""

from ftnotes.peft.adapters import (
    AdapterConfig,
    AdapterLayer,
    BottleneckAdapter,
    adapter_layers,
    add_adapters,
    mark_only_adapters_as_trainable,
    remove_adapters,
    set_adapters_enabled,
)
from ftnotes.peft.bitfit import BitFitConfig, BitFitLayer, add_bitfit, bitfit_layers
from ftnotes.peft.config import CONFIGS, PeftConfig
from ftnotes.peft.dora import DoraConfig, DoRALinear, add_dora, dora_layers
from ftnotes.peft.ia3 import IA3Config, IA3Linear, add_ia3, ia3_layers
from ftnotes.peft.io import (
    adapter_state_dict,
    fingerprint,
    load_adapter,
    read_adapter,
    save_adapter,
)
from ftnotes.peft.lora import (
    LoraConfig,
    LoRAConv2d,
    LoRALayer,
    LoRALinear,
    add_lora,
    lora_layers,
    lora_state_dict,
    mark_only_lora_as_trainable,
    merge_lora,
    remove_lora,
    set_lora_enabled,
    unmerge_lora,
)
from ftnotes.peft.prefix import PrefixTunedViT, PrefixTuningConfig
from ftnotes.peft.prompt import (
    MultiTaskPromptViT,
    PromptTunedViT,
    PromptTuningConfig,
    init_prompts_from_data,
)
from ftnotes.peft.tasks import TaskBank
from ftnotes.peft.tuners import (
    PeftWrapper,
    TunerLayer,
    attached_method,
    merge,
    remove,
    set_enabled,
    tuner_layers,
    unmerge,
)

__all__ = [
    "AdapterConfig", "AdapterLayer", "BottleneckAdapter", "adapter_layers", "add_adapters",
    "mark_only_adapters_as_trainable", "remove_adapters", "set_adapters_enabled",
    "BitFitConfig", "BitFitLayer", "add_bitfit", "bitfit_layers",
    "IA3Config", "IA3Linear", "add_ia3", "ia3_layers",
    "adapter_state_dict", "fingerprint", "load_adapter", "read_adapter", "save_adapter",
    "LoraConfig", "LoRAConv2d", "LoRALayer", "LoRALinear", "add_lora", "lora_layers",
    "lora_state_dict", "mark_only_lora_as_trainable", "merge_lora", "remove_lora",
    "set_lora_enabled", "unmerge_lora",
    "PrefixTunedViT", "PrefixTuningConfig",
    "MultiTaskPromptViT", "PromptTunedViT", "PromptTuningConfig", "init_prompts_from_data",
    "TaskBank", "DoraConfig", "DoRALinear", "add_dora", "dora_layers",
    "CONFIGS", "PeftConfig", "PeftWrapper", "TunerLayer", "attached_method", "merge", "remove",
    "set_enabled", "tuner_layers", "unmerge",
]  # fmt: skip
