"""Toolformer's self-supervised annotation (Schick et al. 2023, arXiv 2302.04761, §2).

For each text of a corpus:

1. **Positions.** Score the text once; at every token position i, the probability that
   a call starts there is P("[" | x_<i). Keep positions above τs, the top k.
2. **Candidates.** At each kept position, sample m calls: the model continues
   "…x_<i [Tool(" under a few-shot annotation prompt until it closes the call.
3. **Execute** every candidate with the tool (errors make the call useless).
4. **Filter.** With weights w_t ∝ max(0, 1 − 0.2 t) over the tokens that follow,
   L(z) = −Σ_t w_t log p(x_{i+t} | z, x_<i+t), a call c with result r is kept when
   L− − L+ ≥ τf, where L+ = L(e(c, r)) and L− = min(L(ε), L(e(c, ε))). As in the paper,
   the call is given as a prefix of the text.

Heuristics prune hopeless texts (a calculator is tried only where a text has at least
three numbers). The kept calls, inserted into the text as `[Tool(input)->result]`, form a
fine-tuning set. This module holds the arithmetic and the loop over a scorer and a
sampler; `annotate_corpus` (what `minsky toolformer annotate` runs) wires them to a
backend that scores (`minsky.backends.base.TextScoring`) through one logged, budgeted
run of the runner's (`minsky.direct`), and writes the rows through the results engine.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from minsky.backends.base import Backend, Scored, TextScoring, text_scoring
from minsky.messages import ChatReply, ChatRequest, Message, Options
from minsky.strict import Strict
from minsky.tools.base import Tool, ToolError

if TYPE_CHECKING:
    from minsky.direct import DirectRun
    from minsky.runlog import RunLog

# (context, continuation) pairs → their scores; probes are reported before each token
Scorer = Callable[[list[tuple[str, str]], Sequence[str]], Awaitable[list[Scored]]]
# (text before the call, tool name, m) → m candidate inputs
Sampler = Callable[[str, str, int], Awaitable[list[str]]]


class AnnotateConfig(Strict):
    """The annotation's thresholds; defaults are the paper's."""

    tau_s: float = Field(0.05, ge=0, le=1, description="call-start probability threshold")
    k: int = Field(5, ge=1, description="positions kept per text")
    m: int = Field(5, ge=1, description="candidate calls sampled per position")
    tau_f: float = Field(1.0, description="loss reduction a call must bring")
    window: int = Field(5, ge=1, description="following tokens the loss weighs")
    min_numbers: int = Field(3, ge=0, description="calculator: numbers a text needs")


def weights(n: int, window: int = 5) -> list[float]:
    """w_t = max(0, 1 − t/window), normalised to sum 1, for the first n following tokens."""
    raw = [max(0.0, 1.0 - t / window) for t in range(n)]
    total = sum(raw)
    return [w / total for w in raw] if total else raw


def weighted_loss(logprobs: Sequence[float], window: int = 5) -> float:
    """−Σ w_t log p(x_t) over the first tokens of a continuation."""
    return -sum(w * lp for w, lp in zip(weights(len(logprobs), window), logprobs, strict=False))


def keep_call(l_none: float, l_call: float, l_result: float, tau_f: float) -> tuple[bool, float]:
    """The filter: (keep?, L− − L+) with L− = min(L(ε), L(e(c, ε))) and L+ = L(e(c, r))."""
    gain = min(l_none, l_call) - l_result
    return gain >= tau_f, gain


def call_text(tool: str, inp: str, result: str | None) -> str:
    """e(c, r) = "[Tool(input)->result]" and e(c, ε) = "[Tool(input)->]"."""
    return f"[{tool}({inp})->{result if result is not None else ''}]"


CALL_STARTS = ("[", " [")  # how a call can start, as tokens; a scorer may drop multi-token ones
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def worth_trying(text: str, tool: str, cfg: AnnotateConfig) -> bool:
    """The paper's pruning: no calculator where a text has fewer than three numbers."""
    return tool != "Calculator" or len(_NUMBER.findall(text)) >= cfg.min_numbers


def top_positions(probs: Sequence[float], tau_s: float, k: int) -> list[int]:
    """Indices whose call-start probability is at least τs, the k most likely, in order."""
    above = [i for i, p in enumerate(probs) if p >= tau_s]
    best = sorted(above, key=lambda i: (-probs[i], i))[:k]
    return sorted(best)


@dataclass
class KeptCall:
    """A call that passed the filter, placed before character `offset` of the text."""

    offset: int
    tool: str
    input: str
    result: str
    gain: float


@dataclass
class Annotated:
    """One text's annotation and its counts."""

    text: str
    annotated: str
    calls: list[KeptCall] = field(default_factory=list)
    sampled: int = 0
    gains: list[float] = field(default_factory=list)
    # character offset of every position tried, and the best gain a call brought there
    # (None: no candidate executed), kept or not: where the model looked, and how close
    tried: list[tuple[int, float | None]] = field(default_factory=list)

    @property
    def positions(self) -> int:
        """How many positions were tried."""
        return len(self.tried)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "annotated": self.annotated,
                "calls": [asdict(c) for c in self.calls], "positions": self.positions,
                "sampled": self.sampled, "gains": [round(g, 4) for g in self.gains],
                "tried": [[at, None if g is None else round(g, 4)] for at, g in self.tried]}


def insert_calls(text: str, calls: Sequence[KeptCall]) -> str:
    """The text with each kept call inserted at its offset (later offsets first)."""
    out = text
    for c in sorted(calls, key=lambda c: c.offset, reverse=True):
        out = out[: c.offset] + call_text(c.tool, c.input, c.result) + " " + out[c.offset:]
    return out


_CUT_MARGIN = 3  # tokens scored past the loss window


def token_offsets(pieces: Sequence[str]) -> list[int]:
    """Character offset at which each token piece starts, given the pieces in order."""
    offsets, at = [], 0
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    return offsets


async def annotate_text(
    text: str,
    tool: Tool,
    score: Scorer,
    sample: Sampler,
    pieces: Callable[[str], list[str]],
    cfg: AnnotateConfig,
    position_context: str = "\n",
) -> Annotated:
    """Annotate one text with `tool` calls; see the module docstring for the steps.

    `position_context` precedes the text when positions are scored: the paper uses the
    few-shot annotation prompt, so that the model has seen what a call looks like.
    """
    out = Annotated(text, text)
    if not worth_trying(text, tool.name, cfg):
        return out
    # 1. positions: P(call start) before every token of the text
    toks = pieces(text)
    offsets = token_offsets(toks)
    (scored,) = await score([(position_context, text)], CALL_STARTS)
    probs = [sum(math.exp(lp) for lp in row) for row in scored.probes][: len(offsets)]
    chosen = top_positions(probs, cfg.tau_s, cfg.k)

    async def at_position(j: int) -> tuple[int, list[float], KeptCall | None]:
        """(candidates sampled, every candidate's gain, the best kept call) before token j."""
        at = offsets[j]
        # only the first `window` following tokens carry weight in L, so the filter scores
        # those and a margin (which keeps the cut from changing how the weighted ones
        # tokenize), not the rest of the text: the same losses for far fewer tokens
        end = j + cfg.window + _CUT_MARGIN
        before, after = text[:at], text[at : offsets[end] if end < len(offsets) else None]
        # 2. candidates, 3. executed
        inputs = list(dict.fromkeys(i.strip() for i in await sample(before, tool.name, cfg.m)))
        results: dict[str, str] = {}
        for inp in inputs:
            try:
                results[inp] = await tool(inp)
            except ToolError:
                continue  # a call that fails to execute cannot help
        if not results:
            return len(inputs), [], None
        # 4. filter: the call as a prefix of the text, as in the paper
        pairs = [(before, after)]
        for inp, res in results.items():
            pairs += [(call_text(tool.name, inp, None) + " " + before, after),
                      (call_text(tool.name, inp, res) + " " + before, after)]
        losses = [weighted_loss(s.logprobs, cfg.window) for s in await score(pairs, [])]
        l_none, best, gains = losses[0], None, []
        for n, (inp, res) in enumerate(results.items()):
            keep, gain = keep_call(l_none, losses[1 + 2 * n], losses[2 + 2 * n], cfg.tau_f)
            gains.append(gain)
            if keep and (best is None or gain > best.gain):
                best = KeptCall(at, tool.name, inp, res, gain)
        return len(inputs), gains, best

    # the positions are independent: in flight together, their samples and scores share
    # the backend's batches instead of taking turns
    found = await asyncio.gather(*(at_position(j) for j in chosen))
    for j, (sampled, gains, best) in zip(chosen, found, strict=True):
        out.sampled += sampled
        out.gains += gains
        out.tried.append((offsets[j], max(gains) if gains else None))
        if best is not None:
            out.calls.append(best)
    out.annotated = insert_calls(text, out.calls)
    return out


_HUMAN = re.compile(r"<<([^<>=]*)=([^<>]*)>>")


def strip_human_calls(solution: str) -> tuple[str, list[int]]:
    """GSM8K's `<<48/2=24>>` traces removed, and the character offsets where they stood."""
    clean, marks, last = [], [], 0
    length = 0
    for m in _HUMAN.finditer(solution):
        piece = solution[last : m.start()]
        clean.append(piece)
        length += len(piece)
        marks.append(length)
        last = m.end()
    clean.append(solution[last:])
    return "".join(clean), marks


def agreement(kept: Sequence[int], human: Sequence[int], tolerance: int = 2) -> dict[str, int]:
    """How many kept call offsets land within `tolerance` characters of a human one."""
    hits = sum(any(abs(k - h) <= tolerance for h in human) for k in kept)
    found = sum(any(abs(k - h) <= tolerance for k in kept) for h in human)
    return {"kept": len(kept), "human": len(human), "kept_at_human": hits,
            "human_found": found}


# the paper's calculator demonstrations (Schick et al. 2023, appendix A.1), shortened
EXAMPLES = {
    "Calculator": (
        ("The number in the next term is 18 + 12 x 3 = 54.",
         "The number in the next term is 18 + 12 x 3 = [Calculator(18 + 12 * 3)->54] 54."),
        ("From this, we have 4 * 30 minutes = 120 minutes.",
         "From this, we have 4 * 30 minutes = [Calculator(4 * 30)->120] 120 minutes."),
        ("The population is 658,893 people. This is 11.4% of the national average of "
         "5,763,868 people.",
         "The population is 658,893 people. This is 11.4% of the national average of "
         "[Calculator(658,893 / 11.4%)->5,763,868] 5,763,868 people."),
    ),
}


def run_scorer(run: DirectRun, model: TextScoring, tag: str = "") -> Scorer:
    """A Scorer through `run` (each batch a logged, budgeted round, labelled after `tag`);
    probes that are not one token of `model` are left out."""
    async def score(items: list[tuple[str, str]], probes: Sequence[str]) -> list[Scored]:
        usable = [p for p in probes if len(model.tokenize_plain(p)) == 1]
        purpose = "positions" if probes else "filter"
        return await run.score(items, usable, purpose, f"{tag} {purpose}".strip())

    return score


def annotation_messages(tool: str, text: str) -> list[Message]:
    """The few-shot annotation prompt P(x) as a chat; the reply starts with "Output: "."""
    from minsky.prompts import render

    return [Message("user", render("annotate", tool=tool, examples=EXAMPLES.get(tool, ()),
                                   text=text))]


def chat_sampler(complete: Callable[[list[ChatRequest]], Awaitable[list[ChatReply]]],
                 text_of: Callable[[], str], temperature: float = 1.0,
                 max_tokens: int = 24) -> Sampler:
    """A Sampler that continues "Output: …[Tool(" under the few-shot annotation prompt.

    `complete(requests)` answers a batch (through a run, so every sample is logged);
    `text_of()` gives the whole text being annotated (the prompt shows it as Input).
    """
    async def sample(before: str, tool: str, m: int) -> list[str]:
        messages = annotation_messages(tool, text_of())
        requests = [
            ChatRequest(messages,
                        Options(temperature=temperature, max_tokens=max_tokens, seed=s,
                                stop=[")", "]", "\n"]),
                        prefix=f"Output: {before}[{tool}(")
            for s in range(m)
        ]
        replies = await complete(requests)
        return [r.text for r in replies if r.finish_reason == "stop" and r.text.strip()]

    return sample


def read_corpus(path: Path | str, field: str) -> list[str]:
    """Texts from a JSONL file (the `field` of each object) or a text file (one a line)."""
    from minsky.inputs.records import read_records

    return [row[field] for _, row in read_records(Path(path), field, "corpus")]


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Totals over annotated texts: positions, samples, kept calls, gains, agreement."""
    kept = [c for r in rows for c in r["calls"]]
    gains = [c["gain"] for c in kept]
    with_human = [r for r in rows if r.get("human_marks")]
    agree = [r["agreement"] for r in with_human]
    return {
        "texts": len(rows),
        "positions_tried": sum(r["positions"] for r in rows),
        "calls_sampled": sum(r["sampled"] for r in rows),
        "calls_kept": len(kept),
        "texts_with_a_kept_call": sum(bool(r["calls"]) for r in rows),
        "mean_loss_reduction": round(sum(gains) / len(gains), 4) if gains else None,
        # over every executed candidate, kept or not: how close the filter came
        "candidates_scored": len(every := [g for r in rows for g in r.get("gains", [])]),
        "mean_gain_all_candidates": round(sum(every) / len(every), 4) if every else None,
        "human_calls": sum(a["human"] for a in agree),
        "kept_at_human_position": sum(a["kept_at_human"] for a in agree),
        "human_positions_found": sum(a["human_found"] for a in agree),
        # where the model looked at all: tried positions at a human call, kept or not
        "tried_at_human_position": sum(r["tried_agreement"]["kept_at_human"]
                                       for r in with_human if "tried_agreement" in r),
        "human_positions_tried": sum(r["tried_agreement"]["human_found"]
                                     for r in with_human if "tried_agreement" in r),
        "max_gain": max(every) if every else None,
    }


MODEL = "toolformer"  # the model's name in the run log


async def annotate_corpus(
    texts: Sequence[str], tool: Tool, backend: Backend, cfg: AnnotateConfig, out: Path | str,
    progress: Callable[[str], None] | None = None, log: RunLog | None = None,
) -> dict[str, Any]:
    """Annotate every text not yet in `out`; summarise all of them.

    `out` is a results file (`minsky.results`): locked while this writes it, a
    half-written last line cut off, one row per text appended as the text is done, so a
    rerun goes on from the first text without a row. Every model call, samples and
    scores alike, goes through one direct run named "toolformer annotate" (logged to
    `log`, a RunLog, when given), each batch a round labelled with its text's index."""
    from minsky.backends.registry import Backends
    from minsky.results import open_results
    from minsky.runner import Runner

    model = text_scoring(backend)  # one that cannot score is refused before any work
    runner = Runner(Backends(overrides={MODEL: backend}), log)
    with open_results(Path(out)) as results:
        done = {row["index"] for row in results.rows}
        todo = [(index, raw) for index, raw in enumerate(texts) if index not in done]
        if todo:
            async with runner.direct(MODEL, "toolformer annotate", question=(
                    f"annotate {len(todo)} text(s) with {tool.name} calls")) as run:
                for index, raw in todo:
                    row = await _annotate_row(run, model, tool, cfg, index, raw)
                    results.append(row)
                    if progress:
                        progress(f"#{index}: {row['positions']} position(s), "
                                 f"{len(row['calls'])} kept")
        return summarise(results.rows)


async def _annotate_row(run: DirectRun, model: TextScoring, tool: Tool, cfg: AnnotateConfig,
                        index: int, raw: str) -> dict[str, Any]:
    """The results row of text `index` of the corpus, annotated through `run`."""
    text, marks = strip_human_calls(raw)
    tag = f"#{index}"
    sample = chat_sampler(lambda requests: run.chat(requests, "sample", f"{tag} sample"),
                          lambda: text)
    context = model.render(annotation_messages(tool.name, text)) + "Output: "
    result = await annotate_text(text, tool, run_scorer(run, model, tag), sample,
                                 model.pieces, cfg, context)
    return {"index": index, **result.to_dict(), "human_marks": marks,
            "agreement": agreement([c.offset for c in result.calls], marks),
            "tried_agreement": agreement([at for at, _ in result.tried], marks)}
