"""Toolformer annotation: the loss-filter arithmetic against hand-computed values, and the
annotation loop on a scripted scorer and sampler."""

from __future__ import annotations

import json
import math

import pytest

from minsky.backends.base import Backend, Capabilities, Scored
from minsky.tools.calculator import CALCULATOR
from minsky.tools.toolformer import (
    AnnotateConfig,
    KeptCall,
    agreement,
    annotate_text,
    call_text,
    insert_calls,
    keep_call,
    strip_human_calls,
    token_offsets,
    top_positions,
    weighted_loss,
    weights,
    worth_trying,
)


def test_weights_by_hand() -> None:
    # raw 1, .8, .6, .4, .2 (sum 3): normalised
    assert weights(5) == pytest.approx([1 / 3, 0.8 / 3, 0.6 / 3, 0.4 / 3, 0.2 / 3])
    # past the window the weight is 0
    assert weights(7)[5:] == [0.0, 0.0]
    # fewer tokens: renormalised over what there is (1, .8 → sum 1.8)
    assert weights(2) == pytest.approx([1 / 1.8, 0.8 / 1.8])


def test_weighted_loss_by_hand() -> None:
    lps = [math.log(0.5), math.log(0.25)]
    expected = -(1 / 1.8 * math.log(0.5) + 0.8 / 1.8 * math.log(0.25))
    assert weighted_loss(lps) == pytest.approx(expected)
    assert weighted_loss([]) == 0


@pytest.mark.parametrize("l_none, l_call, l_result, keep, gain", [
    (3.0, 2.5, 1.0, True, 1.5),     # L- = min(3, 2.5) = 2.5; 2.5 - 1.0 = 1.5 >= 1
    (3.0, 2.5, 1.6, False, 0.9),    # 0.9 < 1
    (1.2, 4.0, 0.2, True, 1.0),     # L- = 1.2; exactly tau_f keeps
    (2.0, 2.0, 2.5, False, -0.5),   # the result made it worse
])
def test_keep_call_by_hand(l_none, l_call, l_result, keep, gain) -> None:
    kept, got = keep_call(l_none, l_call, l_result, 1.0)
    assert kept is keep and got == pytest.approx(gain)


def test_positions_threshold_and_top_k() -> None:
    probs = [0.01, 0.3, 0.06, 0.5, 0.05, 0.2]
    assert top_positions(probs, 0.05, 5) == [1, 2, 3, 4, 5]
    assert top_positions(probs, 0.05, 2) == [1, 3]
    assert top_positions(probs, 0.6, 5) == []


def test_pruning_heuristic() -> None:
    cfg = AnnotateConfig()
    assert not worth_trying("She has 3 apples and 4 pears.", "Calculator", cfg)
    assert worth_trying("3 apples, 4 pears and 5 plums.", "Calculator", cfg)
    assert worth_trying("no numbers", "Search", cfg)


def test_insertion_and_human_traces() -> None:
    text = "She sold 48/2 = 24 clips."
    calls = [KeptCall(16, "Calculator", "48/2", "24", 2.0)]
    assert insert_calls(text, calls) == "She sold 48/2 = [Calculator(48/2)->24] 24 clips."
    assert call_text("Calculator", "1+1", None) == "[Calculator(1+1)->]"
    clean, marks = strip_human_calls("half is <<48/2=24>>24 and <<48+24=72>>72 total")
    assert clean == "half is 24 and 72 total"
    assert marks == [8, 15]
    assert agreement([8, 30], marks) == {"kept": 2, "human": 2, "kept_at_human": 1,
                                         "human_found": 1}
    assert token_offsets(["She", " sold", " 4"]) == [0, 3, 8]


async def test_annotate_keeps_the_call_that_helps() -> None:
    text = "Tom has 12 boxes of 4 eggs, so 48 eggs in all."
    pieces = ["Tom", " has", " 12", " boxes", " of", " 4", " eggs", ",", " so", " 48",
              " eggs", " in", " all", "."]
    assert "".join(pieces) == text
    at = text.index(" 48")
    cfg = AnnotateConfig(k=2, m=3)
    seen: list[list[tuple[str, str]]] = []

    async def score(items, probes):
        seen.append(items)
        if probes:  # the position pass: a call start is likely only before " 48"
            probs = [[math.log(0.6 if p == " 48" else 0.001)] for p in pieces]
            return [Scored([0] * len(pieces), [-1.0] * len(pieces), probs)]
        out = []
        for ctx, cont in items:
            assert cont == text[at:]
            # the true result makes " 48" likely; no call, or a call without a result, not
            good = "->48]" in ctx
            out.append(Scored([1, 2], [math.log(0.9 if good else 0.05), -0.1], []))
        return out

    async def sample(before, tool, m):
        assert before == text[:at] and tool == "Calculator" and m == 3
        return ["12*4", "12*4", "12+4", "12/"]

    result = await annotate_text(text, CALCULATOR, score, sample, lambda t: pieces, cfg)
    assert result.positions == 1
    assert result.sampled == 3  # duplicates dropped
    assert [(c.tool, c.input, c.result) for c in result.calls] == [("Calculator", "12*4", "48")]
    assert result.annotated == text[:at] + "[Calculator(12*4)->48]  48 eggs in all."
    # the filter pass scored: no call, then per executable candidate e(c, ε) and e(c, r)
    ctxs = [ctx for ctx, _ in seen[1]]
    assert ctxs[0] == text[:at]
    assert ctxs[1] == "[Calculator(12*4)->] " + text[:at]
    assert ctxs[2] == "[Calculator(12*4)->48] " + text[:at]
    assert len(ctxs) == 5  # "12/" fails to execute and is never scored
    assert len(result.gains) == 2
    assert result.tried == [(at, max(result.gains))]


async def test_filter_scores_only_the_loss_window_and_a_margin() -> None:
    # with window 1 only the first following token has weight: the filter scores it and
    # three more, not the rest of the text
    text = "Tom has 12 boxes of 4 eggs, so 48 eggs in all, and 2 more in the bag."
    pieces = ["Tom", " has", " 12", " boxes", " of", " 4", " eggs", ",", " so", " 48",
              " eggs", " in", " all", ",", " and", " 2", " more", " in", " the", " bag", "."]
    assert "".join(pieces) == text
    continuations: list[str] = []

    async def score(items, probes):
        if probes:
            probs = [[math.log(0.6 if p == " 48" else 0.001)] for p in pieces]
            return [Scored([0] * len(pieces), [-1.0] * len(pieces), probs)]
        continuations.extend(cont for _, cont in items)
        return [Scored([1], [-0.1 if "->48]" in ctx else -3.0], []) for ctx, _ in items]

    async def sample(before, tool, m):
        return ["12*4"]

    result = await annotate_text(text, CALCULATOR, score, sample, lambda t: pieces,
                                 AnnotateConfig(k=1, m=1, window=1))
    assert set(continuations) == {" 48 eggs in all"}
    assert [c.input for c in result.calls] == ["12*4"]
    assert result.gains == [pytest.approx(2.9)]


async def test_annotate_skips_hopeless_texts() -> None:
    async def never(*args):
        raise AssertionError("must not be called")

    result = await annotate_text("Just 2 numbers: 3.", CALCULATOR, never, never,
                                 lambda t: [t], AnnotateConfig())
    assert result.calls == [] and result.positions == 0 and result.annotated == result.text


class FakeModel(Backend):
    """Stands in for the embedded backend: a call start is likely before " 24"."""

    name = "fake-embedded"
    capabilities = Capabilities(logprobs=True, prefill=True)

    def __init__(self) -> None:
        self.contexts: list[str] = []

    def tokenize_plain(self, text: str) -> list[int]:
        return [1] if text in ("[", " [") else [1, 2]

    def pieces(self, text: str) -> list[str]:
        import re

        return re.findall(r"\s*\S+|\s+", text)

    def render(self, messages) -> str:
        return "PROMPT:" + messages[0].content

    async def score(self, items, probes):
        out = []
        for ctx, cont in items:
            self.contexts.append(ctx)
            pieces = self.pieces(cont)
            if probes:
                rows = [[math.log(0.5 if p == " 24" else 0.001)] * len(probes) for p in pieces]
                out.append(Scored([0] * len(pieces), [-1.0] * len(pieces), rows))
            else:
                good = "->24]" in ctx
                out.append(Scored([0, 0], [math.log(0.95 if good else 0.02), -0.5], []))
        return out

    async def complete(self, requests):
        from minsky.messages import ChatReply

        return [ChatReply("48/2", stop=")") for _ in requests]


async def test_annotate_corpus_resumes_and_summarises(tmp_path) -> None:
    from minsky.tools.toolformer import annotate_corpus, summarise

    texts = ["Natalia sold 48/2 = <<48/2=24>>24 clips in May, and 48+24 = <<48+24=72>>72 in all.",
             "Only 1 and 2."]
    model = FakeModel()
    out = tmp_path / "ann.jsonl"
    summary = await annotate_corpus(texts, CALCULATOR, model, AnnotateConfig(), out)
    assert summary["texts"] == 2
    assert summary["calls_kept"] == 1
    assert summary["human_calls"] == 2
    assert summary["kept_at_human_position"] == 1 and summary["human_positions_found"] == 1
    assert summary["mean_loss_reduction"] > 1
    # the one position tried is the first human call's; the second human call was not tried
    assert summary["tried_at_human_position"] == 1 and summary["human_positions_tried"] == 1
    assert summary["max_gain"] == summary["mean_loss_reduction"]
    # positions were scored under the few-shot annotation prompt
    assert model.contexts[0].startswith("PROMPT:Your task is to add calls to a Calculator API")
    assert model.contexts[0].endswith("Output: ")
    first = out.read_text().splitlines()[0]
    assert "[Calculator(48/2)->24]" in first
    again = await annotate_corpus(texts, CALCULATOR, FakeModel(), AnnotateConfig(), out)
    assert again == summary == summarise([json.loads(x) for x in out.read_text().splitlines()])


def test_annotate_cli_rejects_bad_input(tmp_path) -> None:
    from click.testing import CliRunner

    from minsky.cli import main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"body": "x"}\n')
    run = CliRunner().invoke(main, ["toolformer", "annotate", "--corpus", str(corpus),
                                    "--out", str(tmp_path / "o.jsonl")])
    assert run.exit_code == 2 and "c.jsonl:1: expected an object with a string 'text'" in run.output
    run = CliRunner().invoke(main, ["toolformer", "annotate", "--corpus", str(corpus),
                                    "--tool", "Search", "--out", str(tmp_path / "o.jsonl")])
    assert run.exit_code == 2 and "--tool 'Search'" in run.output


def test_annotate_cli_shows_a_bar_of_texts(tmp_path, terminal, monkeypatch) -> None:
    from click.testing import CliRunner

    from minsky.backends.registry import Backends
    from minsky.cli import main

    monkeypatch.setattr(Backends, "get", lambda self, spec: FakeModel())
    corpus = tmp_path / "c.txt"
    corpus.write_text("Natalia sold 48/2 = 24 clips.\nOnly 1 and 2.\n")
    out = tmp_path / "o.jsonl"
    run = CliRunner().invoke(main, ["toolformer", "annotate", "--corpus", str(corpus),
                                    "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert run.stdout.split()[:2] == ["texts", "2"]  # the summary, one key a line
    drawn = terminal.getvalue()
    assert "texts" in drawn and "2/2" in drawn and "#0: " in drawn


# -- the annotation through the runner's gate and the results engine ----------------------

CORPUS = ["Natalia sold 48/2 = <<48/2=24>>24 clips in May, and 48+24 = <<48+24=72>>72 in all.",
          "Tom has 3 bags of 4 = <<3*4=12>>12 apples, 2 fewer than 14.",
          "Ann read 5 + 6 = <<5+6=11>>11 pages, of 20 and 3 more."]


def embedded(fail_on: str | None = None):
    """The shipped scoring fake as the embedded model: a call is likely to start after
    " =", the right result makes the number after it likely; scoring a text that holds
    `fail_on` fails (a kill, mid-corpus)."""
    from minsky.backends.fakes import ScoringFake

    def logprob(before: str, token: str) -> float:
        if token in ("[", " ["):
            return math.log(0.3 if before.endswith(" =") else 0.001)
        number = token.strip(" .,")
        if number.isdigit() and before.rstrip().endswith("="):
            return math.log(0.95 if f"->{number}]" in before else 0.02)
        return -0.5

    def sample(request) -> str:
        # the sum just before the call: "… 48+24 =[Calculator(" → "48+24)"
        return request.prefix.rsplit("=[", 1)[0].split()[-1] + ")"

    class Embedded(ScoringFake):
        async def score(self, items, probes=()):
            if fail_on and any(fail_on in cont for _, cont in items):
                raise RuntimeError("killed")
            return await super().score(items, probes)

    return Embedded(logprob, sample)


async def test_an_annotation_is_one_logged_run_with_its_scores_and_samples(tmp_path) -> None:
    from minsky.runlog import RunLog
    from minsky.tools.toolformer import annotate_corpus

    log = RunLog(tmp_path / "runs.db")
    out = tmp_path / "ann.jsonl"
    summary = await annotate_corpus(CORPUS[:1], CALCULATOR, embedded(), AnnotateConfig(), out,
                                    log=log)
    assert summary["calls_kept"] == 2 and summary["kept_at_human_position"] == 2
    (listed,) = log.list_runs()
    run = log.get_run(listed["id"])
    assert run["society"] == "toolformer annotate" and run["status"] == "ok"
    # the position pass, then per position: samples and the filter's scores
    purposes = {s["purpose"] for s in run["scores"]}
    assert purposes == {"positions", "filter"}
    assert {c["purpose"] for c in run["calls"]} == {"sample"}
    assert {r["label"] for r in run["rounds"]} == {"#0 positions", "#0 sample", "#0 filter"}
    assert all(s["prompt_tokens"] > 0 for s in run["scores"])
    spent = (sum(s["prompt_tokens"] for s in run["scores"])
             + sum(c["prompt_tokens"] for c in run["calls"]))
    assert run["prompt_tokens"] == spent
    log.close()


async def test_an_interrupted_annotation_resumes_without_repeating_or_losing_a_text(
        tmp_path, capsys) -> None:
    from minsky.runlog import RunLog
    from minsky.tools.toolformer import annotate_corpus

    log = RunLog(tmp_path / "runs.db")
    out = tmp_path / "ann.jsonl"
    with pytest.raises(RuntimeError, match="killed"):
        await annotate_corpus(CORPUS, CALCULATOR, embedded(fail_on="Tom has"),
                              AnnotateConfig(), out, log=log)
    assert [json.loads(x)["index"] for x in out.read_text().splitlines()] == [0]
    (killed,) = log.list_runs()
    assert killed["status"] == "error"
    # the kill also cut a row short as it was written
    with out.open("a") as f:
        f.write('{"index": 1, "text": "Tom has 3 ba')
    model = embedded()
    summary = await annotate_corpus(CORPUS, CALCULATOR, model, AnnotateConfig(), out, log=log)
    assert "half-written" in capsys.readouterr().err
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and summary["texts"] == 3
    # text 0 was done: nothing of it was scored again
    scored = [cont for batch in model.scored for _, cont in batch]
    assert not any("Natalia" in c or "clips" in c for c in scored)
    # the same annotations as one uninterrupted run
    whole = tmp_path / "whole.jsonl"
    assert await annotate_corpus(CORPUS, CALCULATOR, embedded(), AnnotateConfig(),
                                 whole) == summary
    assert whole.read_text() == out.read_text()
    log.close()


async def test_an_annotation_refuses_a_file_another_writes(tmp_path) -> None:
    from minsky.errors import MinskyError
    from minsky.results import open_results
    from minsky.tools.toolformer import annotate_corpus

    out = tmp_path / "ann.jsonl"
    with open_results(out), pytest.raises(MinskyError, match="being written by another"):
        await annotate_corpus(CORPUS, CALCULATOR, embedded(), AnnotateConfig(), out)


async def test_an_annotation_refuses_a_backend_that_cannot_score(tmp_path) -> None:
    from minsky.backends.fakes import EchoBackend
    from minsky.errors import MinskyError
    from minsky.tools.toolformer import annotate_corpus

    with pytest.raises(MinskyError, match="cannot give token log-probabilities"):
        await annotate_corpus(CORPUS, CALCULATOR, EchoBackend(), AnnotateConfig(),
                              tmp_path / "ann.jsonl")
