"""`mixture`: Mixture-of-Agents (Wang et al., arXiv 2406.04692).

`layers` layers of proposers: the first answers the task alone; each later layer is shown
every response of the layer before and writes its own; an `aggregator` synthesises the
last layer's responses into the final answer. Groups: `proposer`s and one `aggregator`.
"""

from __future__ import annotations

from pydantic import Field

from minsky.messages import Message
from minsky.organisations.answering import answer_all, ask_all, decide, prompt
from minsky.organisations.base import Ask, Organisation, OrgRun, Outcome, SocietyView, Task
from minsky.strict import Strict


class MixtureParams(Strict):
    layers: int = Field(2, ge=1, le=8, description="proposer layers before the aggregator")
    repair: bool = True


def mixture(task: Task, society: SocietyView[MixtureParams]) -> OrgRun:
    params = society.params
    proposers = society.group("proposer")
    answers = yield from answer_all(proposers, task, "layer 1", repair=False)
    for k in range(2, params.layers + 1):
        shown = prompt("mixture_layer", task, responses=[a.text.strip() for a in answers])
        asks = [
            Ask(p.name, [Message("system", p.role), Message("user", shown)], purpose="propose")
            for p in proposers
        ]
        answers = yield from ask_all(asks, proposers, task, f"layer {k}", repair=False)
        for a in answers:
            a.round = k
    aggregator = society.group("aggregator")[0]
    responses = "\n\n".join(f"{i}. {a.text.strip()}" for i, a in enumerate(answers, 1))
    (verdict,) = yield from decide(
        aggregator, task,
        "Responses from several assistants (some may be wrong; synthesise the best answer):",
        responses, "aggregate", params.repair,
    )
    verdict.round = params.layers + 1
    names = [p.name for p in proposers]
    reads = {n: names for n in names} if params.layers > 1 else {}
    reads[aggregator.name] = names
    return Outcome(verdict.answer, [*answers, verdict], text=verdict.text, reads=reads)


MIXTURE = Organisation(
    "mixture", mixture, MixtureParams,
    "layers of proposers each see the previous layer; an aggregator synthesises",
    groups={"proposer": (1, None), "aggregator": (1, 1)},
)
