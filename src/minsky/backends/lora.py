"""Attach a GGUF LoRA adapter to a llama.cpp context (and free it again).

The adapter is loaded against the model (`llama_adapter_lora_init`) and then set on the
context, so it applies to every sequence the context decodes: all members, all slots,
and the prefix cache, which holds adapted activations only. llama.cpp renamed the
setter (`llama_set_adapter_lora(ctx, adapter, scale)` became
`llama_set_adapters_lora(ctx, adapters, n, scales)`); both are handled.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from minsky.errors import MinskyError

# llama.cpp says why it refused an adapter only in its log: the log sink of
# minsky.backends.llama hands every line to `note_log`, which keeps the last error
_last_error = ""


def note_log(level: int, text: bytes | None) -> None:
    """Keep llama.cpp's last error-level log line (GGML_LOG_LEVEL_ERROR is 4)."""
    global _last_error
    if level == 4 and text:
        _last_error = text.decode("utf-8", "replace").strip()


def attach(ll: Any, model: Any, ctx: Any, path: Path | None, scale: float) -> Any:
    """Load the adapter at `path` for `model` and set it on `ctx` at `scale`; returns
    the adapter handle, which `detach` frees (None when `path` is None)."""
    global _last_error
    if path is None:
        return None
    _last_error = ""
    adapter = ll.llama_adapter_lora_init(model, str(path).encode())
    if not adapter:
        # llama.cpp prefixes its reason with the function name: keep the reason
        why = _last_error.rpartition(": failed to apply lora adapter: ")[2]
        raise MinskyError(f"llama.cpp refused LoRA adapter {path}: "
                          f"{why or 'see its log (verbose)'}")
    if hasattr(ll, "llama_set_adapters_lora"):
        adapters = (ll.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(scale)
        rc = ll.llama_set_adapters_lora(ctx, adapters, 1, scales)
    else:  # llama.cpp before the rename
        rc = ll.llama_set_adapter_lora(ctx, adapter, scale)
    if rc != 0:
        ll.llama_adapter_lora_free(adapter)
        raise MinskyError(f"llama.cpp could not set LoRA adapter {path} on the context "
                          f"(code {rc})")
    return adapter


def detach(ll: Any, adapter: Any) -> None:
    """Free an adapter from `attach`; call it after the context is freed, before the model."""
    if adapter is not None:
        ll.llama_adapter_lora_free(adapter)
