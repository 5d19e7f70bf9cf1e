"""LoRA fine-tuning of a GGUF member on the CPU: SFT rows in, a GGUF LoRA adapter out.

The shipped GGUF is dequantised to fp32 by transformers (`base_model`), its prompts are
rendered as the llama backend renders them and only the reply tokens carry a loss
(`sft`). peft puts LoRA on the attention and MLP projections; a plain loop (AdamW,
linear warmup and decay, gradient clipping at 1.0) trains them, so checkpoints and
budgets are exact to the step (`checkpoint`). The adapter is written by
`minsky.star.adapter` for llama.cpp to load over the unchanged quantised base.

Leaves out: sequence packing and multi-process training (2 CPU cores); DPO.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from minsky.errors import MinskyError
from minsky.models import sha256_of
from minsky.star import checkpoint
from minsky.star.base_model import GGUFInfo, load_base, need_training_extra, read_gguf
from minsky.star.rows import SFTRow, read_rows
from minsky.star.sft import IGNORE, Encoder, Example, encode_rows, plan_batches

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
WARMUP = 0.05  # of the steps
Stopped = Literal["done", "budget", "interrupted"]


@dataclass
class TrainReport:
    """What a training call did. Totals count resumed steps too; `tokens_per_s` and
    `load_s` are this call's."""

    rows: int  # rows trained on
    dropped: int  # rows whose prompt alone was longer than max_len
    steps: int
    total_steps: int
    tokens: int  # reply tokens that carried a loss
    tokens_all: int  # all tokens processed (prompts included)
    tokens_per_s: float  # all tokens processed / training seconds, this call
    minutes: float  # training minutes, all calls
    load_s: float
    final_loss: float | None  # mean of the last 10 steps
    mean_loss: float | None
    resumed: bool
    stopped: Stopped
    adapter: Path | None  # None when no step was trained

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "adapter": str(self.adapter) if self.adapter else None}


def train_adapter(data: Path, out: Path, *, base: str = "qwen0.5b", rank: int = 16,
                  alpha: float = 32, epochs: float = 1.0, lr: float = 2e-4, batch: int = 2,
                  max_len: int = 512, max_minutes: float | None = None,
                  max_steps: int | None = None, seed: int = 0, progress: bool = True,
                  metadata: dict[str, Any] | None = None, dtype: str = "fp32",
                  layers_from: int = 0, threads: int | None = None,
                  save_every: int = 25) -> TrainReport:
    """Fine-tune `base` with LoRA on the SFT rows of `data`; write the GGUF adapter `out`.

    `max_minutes` (counted from the call's start, loading included) and `max_steps` (steps
    in all, resumed ones included) stop early on a checkpoint without changing the
    schedule, so a later call with the same settings resumes; both, and Ctrl-C or SIGTERM,
    still write the adapter. `dtype` "bf16" runs matmuls under bfloat16 autocast (slower
    than "fp32" on CPUs without AMX); `layers_from` puts LoRA only on the layers from that
    index up (backward stops there: faster). `threads` defaults to every core; on cores
    another job keeps busy, 1 is several times faster (the threads spin-wait on each
    other). A checkpoint is saved every `save_every` steps to `OUT.ckpt/`.
    """
    start = time.monotonic()
    _check_settings(rank, alpha, epochs, lr, batch, max_len, dtype, layers_from, save_every)
    if threads is not None and threads < 1:
        raise MinskyError(f"threads must be at least 1, not {threads}")
    need_training_extra()
    import torch

    rows = read_rows(data, SFTRow)
    info = read_gguf(_gguf_path(base))
    identity = {"data_sha256": sha256_of([data]), "base": info.key, "rank": rank,
                "alpha": float(alpha), "epochs": float(epochs), "lr": float(lr),
                "batch": batch, "max_len": max_len, "seed": seed, "dtype": dtype,
                "layers_from": layers_from}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _cores())
    try:
        model, tokenizer, load_s, _ = load_base(info, progress=progress)
        examples, dropped = _examples(tokenizer, info, rows, max_len, data)
        plan = plan_batches([len(e.ids) for e in examples], batch, epochs, seed)
        peft_model = _with_lora(model, rank, alpha, layers_from, seed)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        state, resumed = checkpoint.Progress(), False
        saved = checkpoint.load(out, identity)
        if saved is not None:
            state, tensors = saved
            _set_lora(peft_model, tensors["lora"])
            optim.load_state_dict(tensors["optim"])
            resumed = True
        loop = _Loop(peft_model, optim, params, examples, plan, lr, dtype, out, identity,
                     state, save_every)
        budget = None if max_minutes is None else start + 60 * max_minutes
        stopped, tokens_s = loop.run(max_steps, budget, progress)
        adapter = None
        if state.step:
            adapter = _write(peft_model, out, info, rank, alpha, state, len(examples),
                             epochs, lr, identity, metadata)
    finally:
        torch.set_num_threads(old_threads)
    tail = state.losses[-10:]
    return TrainReport(
        rows=len(examples), dropped=dropped, steps=state.step, total_steps=len(plan),
        tokens=state.tokens, tokens_all=state.tokens_all, tokens_per_s=tokens_s,
        minutes=state.train_s / 60, load_s=load_s,
        final_loss=sum(tail) / len(tail) if tail else None,
        mean_loss=sum(state.losses) / len(state.losses) if state.losses else None,
        resumed=resumed, stopped=stopped, adapter=adapter)


def _check_settings(rank: int, alpha: float, epochs: float, lr: float, batch: int,
                    max_len: int, dtype: str, layers_from: int, save_every: int) -> None:
    for name, value in (("rank", rank), ("batch", batch), ("max_len", max_len),
                        ("save_every", save_every)):
        if value < 1:
            raise MinskyError(f"{name} must be at least 1, not {value}")
    for name, number in (("alpha", alpha), ("epochs", epochs), ("lr", lr)):
        if not number > 0 or not math.isfinite(number):
            raise MinskyError(f"{name} must be a positive number, not {number}")
    if dtype not in ("bf16", "fp32"):
        raise MinskyError(f"dtype must be 'bf16' or 'fp32', not {dtype!r}")
    if layers_from < 0:
        raise MinskyError(f"layers_from must be 0 or more, not {layers_from}")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _gguf_path(base: str) -> Path:
    from minsky.models import resolve_gguf

    if base.startswith("openai:"):
        raise MinskyError(f"cannot train {base!r}: training needs a local GGUF model")
    return resolve_gguf(base)


def _examples(tokenizer: Any, info: GGUFInfo, rows: list[SFTRow], max_len: int,
              data: Path) -> tuple[list[Example], int]:
    encoder = Encoder(tokenizer, info.chat_template, add_bos=info.add_bos, bos=info.bos,
                      end_of_turn=info.end_of_turn)
    examples, dropped = encode_rows(encoder, rows, max_len, str(data))
    if not examples:
        raise MinskyError(f"{data}: no row fits in max_len {max_len} tokens "
                          f"({dropped} dropped for a longer prompt)")
    return examples, dropped


def _with_lora(model: Any, rank: int, alpha: float, layers_from: int, seed: int) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model

    n_layers = model.config.num_hidden_layers
    if layers_from >= n_layers:
        raise MinskyError(f"layers_from {layers_from}: the model has {n_layers} layers")
    config = LoraConfig(
        r=rank, lora_alpha=alpha,  # type: ignore[arg-type]  # a float works: alpha / r
        lora_dropout=0.0, target_modules=TARGETS, bias="none",
        layers_to_transform=list(range(layers_from, n_layers)) if layers_from else None,
        layers_pattern="layers" if layers_from else None)
    model.config.use_cache = False
    torch.manual_seed(seed)  # LoRA A's initialisation
    try:
        with warnings.catch_warnings():  # peft calls an API transformers 5 deprecates
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, config)
    except ValueError as err:
        raise MinskyError(f"cannot put LoRA on this model: {str(err).splitlines()[0]}") from None


def _lora_state(peft_model: Any) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


def _set_lora(peft_model: Any, tensors: dict[str, Any]) -> None:
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(peft_model, tensors)


def lora_weights(peft_model: Any) -> dict[str, tuple[Any, Any]]:
    """The adapter as `write_adapter` takes it: Hugging Face module name ->
    (lora_A.weight [r, in], lora_B.weight [out, r]) as float32 numpy arrays."""
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in _lora_state(peft_model).items():
        name = key.removeprefix("base_model.model.")
        for part in ("lora_A", "lora_B"):
            if name.endswith(f".{part}.weight"):
                module = name[: -len(f".{part}.weight")]
                pairs.setdefault(module, {})[part] = tensor.float().numpy()
    return {m: (p["lora_A"], p["lora_B"]) for m, p in sorted(pairs.items())}


def _write(peft_model: Any, out: Path, info: GGUFInfo, rank: int, alpha: float,
           state: checkpoint.Progress, rows: int, epochs: float, lr: float,
           identity: dict[str, Any], metadata: dict[str, Any] | None) -> Path:
    from minsky.star.adapter import remember_adapter, write_adapter

    meta: dict[str, str | int | float] = {
        "rows": rows, "steps": state.step, "epochs": epochs, "lr": lr,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_sha256": identity["data_sha256"], "tokens": state.tokens,
        "minutes": round(state.train_s / 60, 2)}
    meta.update(metadata or {})
    write_adapter(out, lora_weights(peft_model), base=info.path, alpha=float(alpha),
                  rank=rank, metadata=meta)
    remember_adapter(out)
    return out


class _Loop:
    """The training steps of one call, from the step a checkpoint left off at."""

    def __init__(self, model: Any, optim: Any, params: list[Any], examples: list[Example],
                 plan: list[list[int]], lr: float, dtype: str, out: Path,
                 identity: dict[str, Any], state: checkpoint.Progress, save_every: int):
        self.model, self.optim, self.params = model, optim, params
        self.examples, self.plan, self.lr, self.dtype = examples, plan, lr, dtype
        self.out, self.identity, self.state, self.save_every = out, identity, state, save_every
        self.warmup = max(1, round(WARMUP * len(plan)))
        self.term = False

    def lr_at(self, step: int) -> float:
        """Linear warmup to `lr`, then linear decay towards 0 at the last step."""
        total = len(self.plan)
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        return self.lr * (total - step) / max(1, total - self.warmup)

    def run(self, max_steps: int | None, budget: float | None,
            progress: bool) -> tuple[Stopped, float]:
        """Train until the plan, `max_steps` or the `budget` (a monotonic time) ends, or
        a signal: ("done" | "budget" | "interrupted", tokens/s of this call)."""
        state, total, first = self.state, len(self.plan), self.state.step
        stopped: Stopped = "done"
        tokens_all, busy, t0 = 0, 0.0, time.monotonic()
        self.model.train()
        with _bar(progress, total, first) as tick, self._on_sigterm():
            try:
                while state.step < total:
                    now = time.monotonic()
                    step_s = (now - t0) / (state.step - first) if state.step > first else 0.0
                    if self.term:
                        stopped = "interrupted"
                        break
                    if (max_steps is not None and state.step >= max_steps) or (
                            budget is not None and now + step_s > budget):
                        stopped = "budget"
                        break
                    loss, n_loss, n_all = self.gradients(self.plan[state.step])
                    # the update and its bookkeeping happen together or not at all
                    with _deferred_sigint():
                        self.update()
                        took = time.monotonic() - now
                        busy += took
                        tokens_all += n_all
                        state.step += 1
                        state.tokens += n_loss
                        state.tokens_all += n_all
                        state.train_s += took
                        state.losses.append(loss)
                    tick(loss, tokens_all / busy)
                    if state.step % self.save_every == 0 and state.step < total:
                        self.save()
            except KeyboardInterrupt:
                self.optim.zero_grad(set_to_none=True)
                stopped = "interrupted"
        if state.step > first:
            self.save()
        return stopped, tokens_all / busy if busy else 0.0

    def gradients(self, batch: list[int]) -> tuple[float, int, int]:
        """Forward and backward on the examples `batch`: (loss, loss tokens, all tokens)."""
        import torch
        import torch.nn.functional as F

        rows = [self.examples[i] for i in batch]
        width = max(len(r.ids) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r.ids)] = torch.tensor(r.ids)
            labels[i, : len(r.ids)] = torch.tensor(r.labels)
            mask[i, : len(r.ids)] = 1
        causal = self.model.get_base_model()
        # subtle: the vocabulary projection is the largest matmul of a small model; run
        # it only where a label is, not over the (much longer) prompts
        target = labels[:, 1:]
        where = target != IGNORE
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.dtype == "bf16")
        with autocast:
            hidden = causal.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
            logits = causal.get_output_embeddings()(hidden[:, :-1][where])
        loss = F.cross_entropy(logits.float(), target[where])
        loss.backward()
        return loss.item(), int(where.sum()), int(mask.sum())

    def update(self) -> None:
        """Clip the gradients and take the optimizer step at this step's learning rate."""
        import torch

        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        for group in self.optim.param_groups:
            group["lr"] = self.lr_at(self.state.step)
        self.optim.step()
        self.optim.zero_grad(set_to_none=True)

    def save(self) -> None:
        checkpoint.save(self.out, self.identity, self.state,
                        {"lora": _lora_state(self.model), "optim": self.optim.state_dict()})

    @contextlib.contextmanager
    def _on_sigterm(self) -> Iterator[None]:
        # SIGTERM sets a flag that ends the run between steps, on a checkpoint
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def flag(signum: int, frame: Any) -> None:
            self.term = True

        old = signal.signal(signal.SIGTERM, flag)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[None]:
    """Hold Ctrl-C back until the block ends: an optimizer step is never half applied."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hit: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if hit:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _bar(show: bool, total: int, done: int) -> Iterator[Any]:
    """A rich progress bar on stderr; yields tick(loss, tokens_per_s), one per step."""
    if not show:
        yield lambda loss, rate: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]} · {task.fields[rate]} tokens/s"),
                  TimeRemainingColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("train", total=total, completed=done, loss="-", rate="-")

        def tick(loss: float, rate: float) -> None:
            bar.update(task, advance=1, loss=f"{loss:.3f}", rate=f"{rate:.0f}")

        yield tick
