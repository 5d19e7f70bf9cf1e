"""LoRA adapters as GGUF files: written by minsky, loaded by llama.cpp over the base.

The real-model tests build adapters with random weights for SmolLM2-135M (shapes read
from its GGUF) and check what llama.cpp makes of them: a zero lora_B changes nothing, a
random one changes the log-probabilities, and an adapter that cancels the query weights
of a block scores exactly like one that cancels its key weights (both leave that block's
attention uniform) — which only holds if names, A/B orientation and llama's rotary row
order of q and k are all right.
"""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.errors import MinskyError
from minsky.models import split_adapter

TINY = "smollm2-135m"
CONTEXT = "The capital of France is Paris. The capital of Italy is"
CONTINUATION = " Rome, and the capital of Spain is Madrid."


@pytest.fixture(scope="module")
def tiny() -> Path:
    from minsky.models import resolve_gguf

    return resolve_gguf(TINY)


@functools.cache
def base_tensors(base: Path) -> tuple[dict[str, tuple[int, ...]], int]:
    """numpy shapes of the base's tensors (ggml lists dimensions the other way round),
    and its number of blocks."""
    import gguf

    reader = gguf.GGUFReader(base)
    shapes = {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}
    blocks = int(reader.fields["llama.block_count"].contents())
    return shapes, blocks


def random_weights(
    base: Path, rank: int, *, zero_b: bool = False, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """PEFT-shaped LoRA weights on all seven linear layers of every block."""
    from minsky.star.adapter import MODULES

    shapes, blocks = base_tensors(base)
    rng = np.random.default_rng(seed)
    weights = {}
    for i in range(blocks):
        for module, tensor in MODULES.items():
            out, inp = shapes[f"blk.{i}.{tensor}.weight"]
            a = rng.normal(0, 0.1, (rank, inp)).astype(np.float32)
            b = np.zeros((out, rank), np.float32) if zero_b else rng.normal(
                0, 0.1, (out, rank)).astype(np.float32)
            weights[f"model.layers.{i}.{module}"] = (a, b)
    return weights


def score(base: Path, adapter: Path | None) -> list[float]:
    from minsky.backends.llama import LlamaBackend

    backend = LlamaBackend(base, n_ctx=512, n_parallel=2, n_threads=2, lora=adapter)
    try:
        (scored,) = asyncio.run(backend.score([(CONTEXT, CONTINUATION)]))
    finally:
        asyncio.run(backend.aclose())
    return scored.logprobs


# -- the spec parser (no model) ------------------------------------------------------


def test_split_adapter_on_names_with_and_without_plus(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_adapter("qwen0.5b") == ("qwen0.5b", None)
    assert split_adapter("openai:gpt") == ("openai:gpt", None)
    assert split_adapter("qwen0.5b+star/r1.gguf") == ("qwen0.5b", Path("star/r1.gguf"))
    # an adapter path may hold '+' itself: the first '+' after a known base splits
    assert split_adapter("qwen0.5b+a+b.gguf") == ("qwen0.5b", Path("a+b.gguf"))
    plus = tmp_path / "my+model.gguf"
    plus.write_bytes(b"GGUF")
    assert split_adapter(str(plus)) == (str(plus), None)  # an existing file stays a path
    assert split_adapter(f"{plus}+x.gguf") == (str(plus), Path("x.gguf"))
    monkeypatch.chdir(tmp_path)
    assert split_adapter("my+model.gguf") == ("my+model.gguf", None)
    assert split_adapter("nothing+here.gguf") == ("nothing+here.gguf", None)  # no base
    with pytest.raises(MinskyError, match="no adapter file after"):
        split_adapter("qwen0.5b+")


def test_a_missing_adapter_is_one_line_naming_it() -> None:
    with pytest.raises(MinskyError) as err:
        Backends().get("qwen0.5b+missing-adapter.gguf")
    assert "missing-adapter.gguf does not exist" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_society_names_an_adapted_model_unchanged(make_society, tmp_path: Path) -> None:
    spec = f"qwen0.5b+{tmp_path / 'round1.gguf'}"
    society = make_society(model=spec)
    assert {a.model for a in society.agents} == {spec}
    override = make_society(override=spec)
    assert {a.model for a in override.agents} == {spec}


# -- files on the tiny model's shapes ------------------------------------------------


def test_write_then_read_round_trips_the_metadata(tiny: Path, tmp_path: Path) -> None:
    from minsky.star.adapter import base_sha256, read_adapter, write_adapter

    out = tmp_path / "a.gguf"
    write_adapter(out, random_weights(tiny, 4), base=tiny, alpha=8.0, rank=4,
                  metadata={"created": "2025-01-02T03:04:05Z", "rows": 120, "lr": 2e-4,
                            "society": "consensus"})
    info = read_adapter(out)
    assert info.architecture == "llama" and info.rank == 4 and info.alpha == 8.0
    assert info.base_name == tiny.name and info.base_sha256 == base_sha256(tiny)
    assert info.metadata == {"created": "2025-01-02T03:04:05Z", "rows": 120, "lr": 2e-4,
                             "society": "consensus"}
    assert info.size == out.stat().st_size
    assert not list(tmp_path.glob(".*part*"))  # the temporary file is gone


def test_llama_rotary_rows_of_q_and_k_follow_the_converter(tiny: Path,
                                                          tmp_path: Path) -> None:
    import gguf

    from minsky.star.adapter import write_adapter

    weights = random_weights(tiny, 2)
    write_adapter(tmp_path / "a.gguf", weights, base=tiny, alpha=2, rank=2)
    stored = {t.name: np.asarray(t.data, np.float32)
              for t in gguf.GGUFReader(tmp_path / "a.gguf").tensors}
    reader = gguf.GGUFReader(tiny)
    heads = int(reader.fields["llama.attention.head_count"].contents())
    b = weights["model.layers.3.self_attn.q_proj"][1]
    hd = b.shape[0] // heads
    q = stored["blk.3.attn_q.weight.lora_b"]
    # Hugging Face pairs dimension i with i + hd/2 of a head; GGUF llama pairs 2i, 2i+1
    for h, i, j in [(0, 0, 1), (2, 5, 0), (heads - 1, hd // 2 - 1, 1)]:
        np.testing.assert_allclose(q[h * hd + 2 * i + j], b[h * hd + j * hd // 2 + i],
                                   rtol=1e-3)
    v = weights["model.layers.3.self_attn.v_proj"]
    np.testing.assert_allclose(stored["blk.3.attn_v.weight.lora_b"], v[1], rtol=1e-3)
    np.testing.assert_allclose(stored["blk.3.attn_v.weight.lora_a"], v[0], rtol=1e-3)


def test_bad_weights_are_one_line_errors(tiny: Path, tmp_path: Path) -> None:
    from minsky.star.adapter import write_adapter

    a, b = np.zeros((4, 576), np.float32), np.zeros((576, 4), np.float32)
    for weights, message in [
        ({"model.layers.0.self_attn.qq_proj": (a, b)}, "expected model.layers.N.MODULE"),
        ({"model.layers.999.self_attn.q_proj": (a, b)}, "has no blk.999.attn_q.weight"),
        ({"model.layers.0.self_attn.q_proj": (b, a)}, "expected (4, 576) and (576, 4)"),
    ]:
        with pytest.raises(MinskyError) as err:
            write_adapter(tmp_path / "x.gguf", weights, base=tiny, alpha=4, rank=4)
        assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "x.gguf").exists()


def test_a_model_file_is_not_an_adapter(tiny: Path) -> None:
    from minsky.star.adapter import read_adapter

    with pytest.raises(MinskyError, match="not a GGUF LoRA adapter \\(general.type is"):
        read_adapter(tiny)


def test_an_adapter_for_another_base_is_refused(tiny: Path, tmp_path: Path) -> None:
    from minsky.star.adapter import check_adapter, write_adapter

    other = tmp_path / "other-base.gguf"
    other.write_bytes(tiny.read_bytes()[: 1 << 20])  # a different file, same header
    adapter = tmp_path / "for-other.gguf"
    write_adapter(adapter, random_weights(tiny, 2), base=tiny, alpha=2, rank=2)
    check_adapter(adapter, tiny)  # its own base passes
    with pytest.raises(MinskyError) as err:
        check_adapter(adapter, other)
    text = str(err.value)
    assert f"was trained on base {tiny.name} (sha256" in text
    assert "not on other-base.gguf (sha256" in text and "\n" not in text
    with pytest.raises(MinskyError, match="was trained on base"):
        Backends().get(f"{other}+{adapter}")


def test_models_lists_remembered_adapters(tiny: Path, tmp_path: Path) -> None:
    from minsky.star.adapter import adapters_dir, remember_adapter, write_adapter

    inside = adapters_dir() / "round1.gguf"
    write_adapter(inside, random_weights(tiny, 2), base=tiny, alpha=2, rank=2,
                  metadata={"created": "2025-01-02", "rows": 57})
    elsewhere = tmp_path / "out" / "anywhere.gguf"
    write_adapter(elsewhere, random_weights(tiny, 2), base=tiny, alpha=2, rank=2)
    remember_adapter(elsewhere)
    remember_adapter(elsewhere)  # once is enough
    rows = json.loads(CliRunner().invoke(main, ["models", "--json"]).stdout)
    adapters = {r["name"]: r["adapter"] for r in rows if "adapter" in r}
    assert set(adapters) == {str(inside.resolve()), str(elsewhere.resolve())}
    first = adapters[str(inside.resolve())]
    assert first["base_name"] == tiny.name and first["rank"] == 2
    assert first["metadata"] == {"created": "2025-01-02", "rows": 57}
    described = {r["name"]: r["description"] for r in rows}[str(inside.resolve())]
    assert described.startswith(f"LoRA on {tiny.name}, rank 2, ")
    assert described.endswith("created 2025-01-02, rows 57")
    text = CliRunner().invoke(main, ["models"]).stdout
    assert "anywhere.gguf" in text and "adapter" in text


# -- llama.cpp loads them ------------------------------------------------------------


@pytest.mark.real
def test_the_adapter_changes_scores_and_a_zero_one_does_not(tiny: Path,
                                                           tmp_path: Path) -> None:
    from minsky.star.adapter import write_adapter

    zero, rand = tmp_path / "zero.gguf", tmp_path / "rand.gguf"
    write_adapter(zero, random_weights(tiny, 4, zero_b=True), base=tiny, alpha=4, rank=4)
    write_adapter(rand, random_weights(tiny, 4), base=tiny, alpha=4, rank=4)
    plain = score(tiny, None)
    assert np.allclose(score(tiny, zero), plain, atol=1e-3)
    changed = score(tiny, rand)
    assert len(changed) == len(plain)
    assert np.abs(np.asarray(changed) - plain).max() > 0.05


@pytest.mark.real
def test_cancelling_q_or_k_of_a_block_scores_the_same(tiny: Path, tmp_path: Path) -> None:
    """B·A = -W turns the projection off. With q off or with k off, block 0's attention
    is uniform either way, so both score alike, and unlike the base; a wrong row order,
    a transposed A or B, or a wrong tensor name would leave q or k on.

    subtle: the cancellation is not exact (llama.cpp multiplies the Q4_1 base weight
    with Q8-quantised activations and the F16 adapter with F16 ones), so the two agree
    only to a few hundredths; with q's rows in the wrong order the scores stay within a
    few hundredths of the base instead (measured: 0.04 mean, against 0.8 when right)."""
    import gguf

    from minsky.star.adapter import write_adapter

    reader = gguf.GGUFReader(tiny)
    tensors = {t.name: t for t in reader.tensors}
    heads = int(reader.fields["llama.attention.head_count"].contents())
    kv_heads = int(reader.fields["llama.attention.head_count_kv"].contents())

    def hf_order(name: str, n_head: int) -> np.ndarray:
        """The base's weight in Hugging Face's row order (undoing the converter's)."""
        t = tensors[name]
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        out, inp = w.shape
        return w.reshape(n_head, out // n_head // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)

    scores = {}
    for module, name, n in [("q_proj", "blk.0.attn_q.weight", heads),
                            ("k_proj", "blk.0.attn_k.weight", kv_heads)]:
        w = hf_order(name, n)
        rank = w.shape[1]
        path = tmp_path / f"no-{module}.gguf"
        write_adapter(path, {f"model.layers.0.self_attn.{module}":
                             (np.eye(rank, dtype=np.float32), -w)},
                      base=tiny, alpha=rank, rank=rank)
        scores[module] = np.asarray(score(tiny, path))
    plain = np.asarray(score(tiny, None))
    off = np.abs(scores["q_proj"] - plain).mean()
    assert off > 0.3 and np.abs(scores["k_proj"] - plain).mean() > 0.3
    assert np.abs(scores["q_proj"] - scores["k_proj"]).mean() < 0.15 * off


@pytest.mark.real
def test_llama_cpp_refusing_an_adapter_is_one_line(tiny: Path, tmp_path: Path) -> None:
    from minsky.star.adapter import write_adapter

    path = tmp_path / "a.gguf"
    write_adapter(path, random_weights(tiny, 2), base=tiny, alpha=2, rank=2)
    # break a tensor name the way another base model's adapter would look
    data = path.read_bytes().replace(b"blk.0.attn_q.weight.lora_a",
                                     b"blk.0.attn_x.weight.lora_a")
    path.write_bytes(data)
    with pytest.raises(MinskyError) as err:
        score(tiny, path)
    text = str(err.value)
    assert text.startswith(f"llama.cpp refused LoRA adapter {path}: ")
    assert "\n" not in text
