"""A real small instruct LM: SmolLM2-135M-Instruct (Allal et al. 2025, "SmolLM2: when smol goes
big", arXiv:2502.02737), obtained from a PyPI wheel's 4-bit GGUF and converted into a local
transformers folder (:mod:`.convert`), loaded and prompted with its chat template (:mod:`.model`)."""
