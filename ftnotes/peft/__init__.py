"""Parameter-efficient fine-tuning, written from scratch, one module per method.

* :mod:`~ftnotes.peft.lora`: LoRA (Hu et al. 2021), mergeable into the weights.
* :mod:`~ftnotes.peft.adapters`: bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2021;
  parallel, He et al. 2022).
* :mod:`~ftnotes.peft.prompt`: prompt tuning / VPT (Lester et al. 2021; Jia et al. 2022).
* :mod:`~ftnotes.peft.prefix`: prefix tuning (Li & Liang 2021).
* :mod:`~ftnotes.peft.tasks`: many tasks on one backbone.
* :mod:`~ftnotes.peft.io`: adapter files tied to their backbone by a fingerprint.

LoRA and adapters attach in place to any torch model by module name; prompt and prefix tuning
wrap a :class:`ftnotes.models.TinyViT`. Only LoRA can be merged away after training.
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

__all__ = [
    "AdapterConfig", "AdapterLayer", "BottleneckAdapter", "adapter_layers", "add_adapters",
    "mark_only_adapters_as_trainable", "remove_adapters", "set_adapters_enabled",
    "adapter_state_dict", "fingerprint", "load_adapter", "read_adapter", "save_adapter",
    "LoraConfig", "LoRAConv2d", "LoRALayer", "LoRALinear", "add_lora", "lora_layers",
    "lora_state_dict", "mark_only_lora_as_trainable", "merge_lora", "remove_lora",
    "set_lora_enabled", "unmerge_lora",
    "PrefixTunedViT", "PrefixTuningConfig",
    "MultiTaskPromptViT", "PromptTunedViT", "PromptTuningConfig", "init_prompts_from_data",
    "TaskBank",
]  # fmt: skip
