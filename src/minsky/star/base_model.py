"""The model STaR fine-tunes: a shipped GGUF, dequantised to fp32 by transformers.

transformers reads a GGUF directly (`from_pretrained(dir, gguf_file=name)`) but
dequantises every tensor on each load (~70 s for the 0.5B model on 2 cores), so the
result is cached once as safetensors under `cache_dir()/dequantised/<sha256 or name>`
and later rounds load it in seconds. The chat template, the BOS rule and the end-of-turn
tokens come from the GGUF's own metadata, as llama.cpp reads them, so training prompts
are the prompts the member sees at inference.

Leaves out: quantisation-aware training; the base stays the unchanged Q4_K_M file and
only the LoRA adapter is trained against its fp32 dequantisation.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError
from minsky.paths import cache_dir
from minsky.star.adapter import base_sha256, gguf_field, gguf_header

EXTRA = ("torch", "transformers", "peft", "gguf", "numpy")

# llama.cpp's own default when a GGUF does not say whether to add BOS: yes for
# sentencepiece/wordpiece vocabularies and a few BPE pre-tokenizers (llama-vocab.cpp)
_BOS_PRE = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
            "midm-2.0", "lfm2", "tekken", "chameleon"}


def need_training_extra() -> None:
    """Raise a one-line MinskyError naming the first training package not importable."""
    import importlib

    for name in EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            raise MinskyError(f"minsky star train needs the training extra ({name} is "
                              "missing): pip install 'minsky[train]'") from None


@dataclass(frozen=True)
class GGUFInfo:
    """What training needs from a GGUF's header, read without loading its weights."""

    path: Path
    key: str  # the sha256 of a shipped model, else of the file: names its cache entry
    params: int  # elements in all tensors (the fp32 model is about 4 bytes each)
    chat_template: str | None
    add_bos: bool
    bos: int | None
    end_of_turn: frozenset[int]  # eos / eot / eom: where llama.cpp stops a reply


def read_gguf(path: Path) -> GGUFInfo:
    """The header facts of the GGUF `path` (its header parsed once per process)."""
    reader = gguf_header(path)

    def field(key: str) -> Any:
        return gguf_field(reader, key)

    add_bos = field("tokenizer.ggml.add_bos_token")
    if add_bos is None:
        vocab = field("tokenizer.ggml.model")
        add_bos = vocab in ("llama", "bert") or (
            vocab == "gpt2" and field("tokenizer.ggml.pre") in _BOS_PRE)
    ends = {field(f"tokenizer.ggml.{k}_token_id") for k in ("eos", "eot", "eom")}
    params = sum(int(t.n_elements) for t in reader.tensors)
    return GGUFInfo(path, base_sha256(path), params, field("tokenizer.chat_template"),
                    bool(add_bos), field("tokenizer.ggml.bos_token_id"),
                    frozenset(int(e) for e in ends if e is not None))


def load_base(info: GGUFInfo, *, progress: bool = True) -> tuple[Any, Any, float, bool]:
    """(fp32 model, tokenizer, seconds, from the cache?) for the GGUF `info` describes;
    the first load dequantises it and writes the cache."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from minsky.backends.base import check_real_model

    if not progress:
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    root = cache_dir() / "dequantised"
    cached = root / info.key
    start = time.perf_counter()
    check_real_model(f"model {info.path}")
    if cached.is_dir():
        try:
            model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(cached)
            return model, tokenizer, time.perf_counter() - start, True
        except (OSError, ValueError) as err:
            print(f"minsky: {cached}: unreadable dequantised cache ({err}); rebuilding it",
                  file=sys.stderr)
            shutil.rmtree(cached, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    need = 1.2 * info.params * 4
    free = shutil.disk_usage(root).free
    if free < need:
        raise MinskyError(f"caching the dequantised {info.path.name} needs {need / 1e9:.1f} GB "
                          f"free in {root}, which has {free / 1e9:.1f} GB (MINSKY_CACHE "
                          "moves it)")
    model, tokenizer = _from_gguf(info.path)
    # subtle: save under a temporary name and rename, so a killed save never leaves a
    # half-written cache that a later round would load
    tmp = root / f".{info.key}.tmp{os.getpid()}"
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.rename(cached)
    except OSError as err:
        if cached.is_dir():  # another process cached it first
            return model, tokenizer, time.perf_counter() - start, False
        raise MinskyError(f"cannot write the dequantised model to {cached}: "
                          f"{err.strerror or err}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model, tokenizer, time.perf_counter() - start, False


def _from_gguf(path: Path) -> tuple[Any, Any]:
    """A dense fp32 model and its tokenizer, dequantised from the GGUF `path`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, name = str(path.parent), path.name
    extra: dict[str, Any] = {}
    try:  # transformers 5 may keep the blocks packed (untrainable); ask it to unpack them
        from transformers import GgufConfig

        extra["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:
        pass
    model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32,
                                                 **extra)
    # subtle: transformers 5 marks a model read from a GGUF as quantized even once it is
    # dense fp32, and then refuses to save it; it is a plain model now, so drop the mark
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, AutoTokenizer.from_pretrained(where, gguf_file=name)
