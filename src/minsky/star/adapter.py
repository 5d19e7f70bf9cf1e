"""LoRA adapters as GGUF files that llama.cpp loads over the unchanged quantized base.

`write_adapter` turns PEFT's `(lora_A, lora_B)` pairs, keyed by Hugging Face module name,
into the file llama.cpp's `llama_adapter_lora_init` reads; `read_adapter` and
`check_adapter` read one back and refuse an adapter made for another base model;
`list_adapters` finds the adapters minsky has made. Only numpy and the `gguf` package: no
torch here, so loading an adapter never needs the training stack.

The layout follows llama.cpp's `convert_lora_to_gguf.py` and `src/llama-adapter.cpp`:
`blk.{i}.attn_q.weight.lora_a` holds PEFT's `lora_A.weight` as it is ([r, in] in numpy,
so ggml `ne` = [in, r]) and `.lora_b` holds `lora_B.weight` ([out, r], `ne` = [r, out]);
llama.cpp checks `base.ne[0] == a.ne[0]`, `base.ne[1] == b.ne[1]`, `a.ne[1] == b.ne[0]`,
and scales the product by `alpha / r` as PEFT does. Left out: embeddings, norms,
aLoRA invocation tokens, and architectures whose conversion rearranges weights in ways
other than llama's rotary permutation of q and k (see `_ROPE_PERMUTED`).
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minsky.errors import MinskyError
from minsky.paths import cache_dir

# Hugging Face module → llama.cpp tensor, for the seven linear layers of a decoder block.
MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_MODULE = re.compile(r"^(?:base_model\.model\.)?model\.layers\.(\d+)\.(\w+\.\w+)$")
# subtle: for these architectures convert_hf_to_gguf.py permutes the rows of q_proj and
# k_proj (interleaved → halved rotary pairs), so lora_B's rows must be permuted the same
# way or the adapter adds its update to the wrong dimensions. Qwen2 is not permuted.
_ROPE_PERMUTED = {"llama"}
_INDEX = "index.json"
_PREFIX = "minsky."


@dataclass(frozen=True)
class AdapterInfo:
    """What a GGUF LoRA adapter says about itself."""

    path: Path
    architecture: str
    alpha: float
    rank: int
    base_sha256: str | None  # None: not made by minsky; checked by architecture only
    base_name: str | None
    metadata: dict[str, Any] = field(default_factory=dict)  # minsky.* keys, prefix cut
    size: int = 0  # bytes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise MinskyError("LoRA adapters need the 'gguf' package: pip install gguf") from None
    return gguf


# -- the base model ------------------------------------------------------------------

@dataclass(frozen=True)
class _Base:
    """What writing an adapter needs from its base model's GGUF header."""

    architecture: str
    shapes: dict[str, tuple[int, ...]]  # tensor name → numpy shape ([out, in] for weights)
    heads: int
    kv_heads: int


# per process, keyed by (path, size, mtime): hashing a 500 MB base takes a second, and
# GGUFReader parses its whole vocabulary (seconds for Qwen's 151k tokens)
_HASHES: dict[tuple[str, int, int], str] = {}
_BASES: dict[tuple[str, int, int], _Base] = {}


def _key(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError as err:
        raise MinskyError(f"base model {path}: cannot read it ({err.strerror})") from None
    return str(path), stat.st_size, stat.st_mtime_ns


def base_sha256(base: Path) -> str:
    """The sha256 of a base GGUF: a shipped model's known checksum, else hashed once
    per process."""
    from minsky.models import MODELS, sha256_of

    resolved = base.resolve()
    for model in MODELS.values():
        # an assembled shipped model was checked against this sum when it was assembled
        if model.sha256 and resolved == (cache_dir() / "models" / model.filename).resolve():
            return model.sha256
    key = _key(resolved)
    if key not in _HASHES:
        _HASHES[key] = sha256_of([resolved])
    return _HASHES[key]


def _reader(path: Path) -> Any:
    try:
        return _gguf().GGUFReader(path)
    except (OSError, ValueError, IndexError, KeyError) as err:
        raise MinskyError(f"{path}: not a readable GGUF file ({err})") from None


@functools.lru_cache(maxsize=4)
def _header(path: str, size: int, mtime_ns: int) -> Any:
    return _reader(Path(path))


def gguf_header(path: Path) -> Any:
    """A GGUF file's parsed header (a `gguf.GGUFReader`), once per file version and
    process: training and the adapter writer both read the base's."""
    return _header(*_key(path.resolve()))


def gguf_field(reader: Any, key: str) -> Any:
    """A metadata value of a parsed GGUF header as a Python value; None when absent."""
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def _base(base: Path) -> _Base:
    key = _key(base.resolve())
    if key not in _BASES:
        reader = gguf_header(base)
        arch = gguf_field(reader, "general.architecture")
        if not arch:
            raise MinskyError(f"{base}: a GGUF without general.architecture")
        # ggml lists dimensions fastest first; numpy (and PyTorch) slowest first
        shapes = {t.name: tuple(int(d) for d in reversed(t.shape.tolist()))
                  for t in reader.tensors}
        heads = int(gguf_field(reader, f"{arch}.attention.head_count") or 0)
        kv_heads = int(gguf_field(reader, f"{arch}.attention.head_count_kv") or heads)
        _BASES[key] = _Base(str(arch), shapes, heads, kv_heads)
    return _BASES[key]


def _gguf_row_order(b: np.ndarray, n_head: int) -> np.ndarray:
    """lora_B with its rows in the order convert_hf_to_gguf.py gives q/k weights."""
    out, r = b.shape
    return b.reshape(n_head, 2, out // n_head // 2, r).swapaxes(1, 2).reshape(out, r)


# -- writing -------------------------------------------------------------------------


def _tensor_name(module: str) -> str:
    m = _MODULE.match(module)
    if m is None or m.group(2) not in MODULES:
        known = ", ".join(MODULES)
        raise MinskyError(f"LoRA weight {module!r}: expected model.layers.N.MODULE with "
                          f"MODULE one of {known}")
    return f"blk.{int(m.group(1))}.{MODULES[m.group(2)]}.weight"


def write_adapter(
    path: Path,
    weights: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    base: Path,
    alpha: float,
    rank: int,
    metadata: dict[str, str | int | float] | None = None,
) -> None:
    """Write PEFT LoRA weights (module name → (lora_A [r, in], lora_B [out, r])) as a
    GGUF adapter for `base`, atomically; the tensors are stored as F16."""
    gguf = _gguf()
    if not weights:
        raise MinskyError(f"{path}: no LoRA weights to write")
    if reserved := {"base.sha256", "base.name", "adapter.rank"} & set(metadata or {}):
        raise MinskyError(f"adapter metadata {sorted(reserved)[0]!r}: minsky sets it itself")
    info = _base(base)
    tensors: list[tuple[str, np.ndarray]] = []
    for module, (a, b) in sorted(weights.items()):
        name = _tensor_name(module)
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        if name not in info.shapes:
            raise MinskyError(f"LoRA weight {module!r}: the base {base.name} has no {name}")
        out, inp = info.shapes[name]
        if a.shape != (rank, inp) or b.shape != (out, rank):
            raise MinskyError(
                f"LoRA weight {module!r}: lora_A {a.shape} and lora_B {b.shape}, expected "
                f"{(rank, inp)} and {(out, rank)} for rank {rank} on {base.name}")
        if info.architecture in _ROPE_PERMUTED and name.endswith(("q.weight", "k.weight")):
            b = _gguf_row_order(b, info.heads if "attn_q" in name else info.kv_heads)
        # F16: half the size of F32, and llama.cpp multiplies F16 LoRA tensors directly
        a16, b16 = a.astype(np.float16), b.astype(np.float16)
        if not (np.isfinite(a16).all() and np.isfinite(b16).all()):
            raise MinskyError(f"LoRA weight {module!r}: values not finite in float16")
        tensors += [(f"{name}.lora_a", a16), (f"{name}.lora_b", b16)]

    path.parent.mkdir(parents=True, exist_ok=True)
    # subtle: a temporary name then a rename, so a killed write never leaves a truncated
    # file that a later run would load
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        # GGUFWriter writes general.architecture itself
        writer = gguf.GGUFWriter(tmp, info.architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        writer.add_string(f"{_PREFIX}base.sha256", base_sha256(base))
        writer.add_string(f"{_PREFIX}base.name", base.name)
        writer.add_uint32(f"{_PREFIX}adapter.rank", rank)
        for key, value in (metadata or {}).items():
            _add_value(writer, f"{_PREFIX}{key}", value)
        for name, tensor in tensors:
            writer.add_tensor(name, tensor)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _add_value(writer: Any, key: str, value: str | int | float) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_int64(key, value)
    elif isinstance(value, float):
        writer.add_float64(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    else:
        raise MinskyError(f"adapter metadata {key!r}: a string or a number, not "
                          f"{type(value).__name__}")


# -- reading and checking ------------------------------------------------------------


def read_adapter(path: Path) -> AdapterInfo:
    """What the GGUF LoRA adapter at `path` says about itself; MinskyError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise MinskyError(f"{path}: no such adapter file")
    reader = _reader(path)
    kind = gguf_field(reader, "general.type")
    if kind != "adapter" or gguf_field(reader, "adapter.type") != "lora":
        raise MinskyError(f"{path}: not a GGUF LoRA adapter (general.type is {kind!r})")
    metadata = {key[len(_PREFIX):]: f.contents() for key, f in reader.fields.items()
                if key.startswith(_PREFIX)}
    rank = metadata.pop("adapter.rank", None)
    if rank is None:  # another tool's adapter: the rank is lora_b's first ggml dimension
        rank = next((int(t.shape[0]) for t in reader.tensors if t.name.endswith(".lora_b")), 0)
    return AdapterInfo(
        path=path,
        architecture=str(gguf_field(reader, "general.architecture")),
        alpha=float(gguf_field(reader, "adapter.lora.alpha") or 0.0),
        rank=int(rank),
        base_sha256=metadata.pop("base.sha256", None),
        base_name=metadata.pop("base.name", None),
        metadata=metadata,
        size=path.stat().st_size,
    )


def check_adapter(adapter: Path, base: Path) -> None:
    """Refuse, in one MinskyError line, an adapter made for another base model."""
    info = read_adapter(adapter)
    if info.base_sha256 is None:
        arch = _base(base).architecture
        if arch != info.architecture:
            raise MinskyError(f"adapter {adapter.name} is for {info.architecture} models, "
                              f"not for {base.name} ({arch})")
        return
    actual = base_sha256(base)
    if actual != info.base_sha256:
        raise MinskyError(
            f"adapter {adapter.name} was trained on base {info.base_name} (sha256 "
            f"{info.base_sha256[:12]}…), not on {base.name} (sha256 {actual[:12]}…)")


# -- the adapters minsky has made ----------------------------------------------------


def adapters_dir() -> Path:
    """Where minsky writes adapters by default (and keeps the index of the others)."""
    return cache_dir() / "adapters"


def _index() -> list[str]:
    try:
        data = json.loads((adapters_dir() / _INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [p for p in data if isinstance(p, str)] if isinstance(data, list) else []


def remember_adapter(path: Path) -> None:
    """Record an adapter written outside `adapters_dir()`, so `list_adapters` finds it."""
    entry = str(Path(path).resolve())
    known = _index()
    if entry in known:
        return
    folder = adapters_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{_INDEX}.part{os.getpid()}"
    tmp.write_text(json.dumps([*known, entry], indent=1), encoding="utf-8")
    tmp.replace(folder / _INDEX)


def list_adapters() -> list[AdapterInfo]:
    """The adapters in `adapters_dir()` and those remembered; gone or foreign files skipped."""
    folder = adapters_dir()
    paths = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    paths += [Path(p) for p in _index()]
    if paths:
        _gguf()  # a missing package is one clear error, not an empty listing
    seen: set[Path] = set()
    found: list[AdapterInfo] = []
    for path in paths:
        resolved = path.resolve()
        if resolved in seen or not resolved.is_file():
            continue
        seen.add(resolved)
        try:
            found.append(read_adapter(resolved))
        except MinskyError:
            continue  # a file moved over, or a model in the folder: not an adapter of ours
    return found
