"""SFT rows as training tokens: prompts rendered and tokenized exactly as at inference.

The llama backend renders a chat with the GGUF's own template (Jinja, sandboxed,
`trim_blocks`/`lstrip_blocks`, a `tojson` filter, empty `bos_token`/`eos_token`) and
tokenizes it with special tokens parsed and a BOS added when the vocabulary asks for
one (`minsky.backends.llama._Engine`). This module does the same with the transformers
tokenizer, so the prompt tokens a row trains on are the ones the member is sent. The
reply is tokenized on its own, as the model generates it, and ends at the end-of-turn
token the template writes after it. Only the reply tokens carry a loss.

Also here: batches of rows of similar length, in a seeded order that a resumed run
replays exactly.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from minsky.errors import MinskyError
from minsky.star.rows import SFTRow

IGNORE = -100  # the label torch's cross-entropy skips

# llama.cpp's fallback when a GGUF has no template (minsky.backends.llama._CHATML)
_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class Example:
    """One row as tokens: `labels` is `ids` with the prompt masked out."""

    ids: list[int]
    labels: list[int]
    row: int  # 1-based position in the file

    @property
    def trained(self) -> int:
        return sum(1 for t in self.labels if t != IGNORE)


class Encoder:
    """Renders and tokenizes chat rows as the llama backend does for one GGUF."""

    def __init__(self, tokenizer: Any, template: str | None, *, add_bos: bool,
                 bos: int | None, end_of_turn: frozenset[int]) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False)
        self.template = env.from_string(template or _CHATML)
        self.tokenizer = tokenizer
        self.add_bos = add_bos and bos is not None
        self.bos = bos
        self.end_of_turn = end_of_turn

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The text the chat template makes of `messages`."""
        return str(self.template.render(messages=messages, add_generation_prompt=
                                        add_generation_prompt, bos_token="", eos_token=""))

    def tokenize(self, text: str, bos: bool = True) -> list[int]:
        """Tokens of `text`, special tokens parsed, BOS first where the vocabulary adds it."""
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if bos and self.add_bos and (not ids or ids[0] != self.bos):
            ids.insert(0, self.bos)  # type: ignore[arg-type]
        return ids

    def encode(self, row: SFTRow, n: int, where: str) -> Example:
        """Row `n` of the file `where` as tokens with the prompt masked."""
        messages = [{"role": t.role, "content": t.content} for t in row.messages]
        prompt = self.render(messages[:-1], add_generation_prompt=True)
        full = self.render(messages, add_generation_prompt=False)
        if not full.startswith(prompt):
            raise MinskyError(f"{where}:{n}: the chat template renders this row's prompt "
                              "differently once the reply follows; it cannot be masked")
        head = self.tokenize(prompt)
        tail = self.tokenize(full[len(prompt):], bos=False)
        # the template may write text after the end-of-turn token (Qwen's "\n"); the
        # model never generates it, since llama.cpp stops at that token
        ends = [i for i, t in enumerate(tail) if t in self.end_of_turn]
        if ends:
            tail = tail[: ends[-1] + 1]
        return Example(head + tail, [IGNORE] * len(head) + tail, n)


def encode_rows(encoder: Encoder, rows: list[SFTRow], max_len: int,
                where: str) -> tuple[list[Example], int]:
    """(examples, rows dropped): a row longer than `max_len` loses the end of its reply; a
    row whose prompt alone fills `max_len` is dropped."""
    examples: list[Example] = []
    dropped = 0
    for n, row in enumerate(rows, 1):
        ex = encoder.encode(row, n, where)
        if ex.labels[:max_len].count(IGNORE) >= max_len:
            dropped += 1
            continue
        examples.append(Example(ex.ids[:max_len], ex.labels[:max_len], n))
    return examples, dropped


def plan_batches(lengths: list[int], batch: int, epochs: float, seed: int) -> list[list[int]]:
    """The order of every training step: lists of example indices, `epochs` passes (a
    fraction keeps the first part of the last pass). Each pass shuffles with `seed`, then
    sorts windows of 16 batches by length so a batch pads little, then shuffles batches."""
    per_epoch = math.ceil(len(lengths) / batch)
    total = max(1, math.ceil(per_epoch * epochs))
    plan: list[list[int]] = []
    for epoch in range(math.ceil(total / per_epoch)):
        rng = random.Random(f"{seed}:{epoch}")
        order = list(range(len(lengths)))
        rng.shuffle(order)
        window = 16 * batch
        batches: list[list[int]] = []
        for w in range(0, len(order), window):
            chunk = sorted(order[w: w + window], key=lambda i: lengths[i])
            batches += [chunk[b: b + batch] for b in range(0, len(chunk), batch)]
        rng.shuffle(batches)
        plan += batches
    return plan[:total]
