"""How a request's options shape the society each of its `n` choices runs.

- `max_tokens` (or `max_completion_tokens`) caps the society's token budget: every
  member's prompt and completion tokens together, as a society file's `budget.max_tokens`
  counts them; the runner also caps each member call at its share of what is left. A
  run that reaches it stops, and the choice ends with finish_reason "length" and the
  answer its members lead with so far (`protocol.leading`).
- `temperature`, `top_p` and the llama-server sampler fields `top_k`, `min_p` and
  `repeat_penalty` replace the sampling options of every member that runs a model (a
  member that is a whole society keeps its own).
- `seed` seeds the members: the k-th member gets seed + k, so copies of one member still
  differ, as they do in a society file.
- Choice i > 0 shifts every member's seed by i × (number of members), so the n runs
  sample differently instead of repeating each other.
"""

from __future__ import annotations

from dataclasses import replace

from minsky.serve.protocol import ChatCompletionRequest
from minsky.society import Society


def for_choice(society: Society, request: ChatCompletionRequest, index: int) -> Society:
    """The society as choice `index` of `request` runs it."""
    sampling = request.sampling
    shift = index * len(society.agents)
    agents = []
    for k, agent in enumerate(society.agents):
        if agent.society is not None:
            agents.append(agent)
            continue
        update = dict(sampling)
        seed = request.seed + k if request.seed is not None else agent.options.seed
        if shift:
            seed = (seed or 0) + shift
        if seed is not None:
            update["seed"] = seed
        agents.append(replace(agent, options=agent.options.model_copy(update=update)))
    config = society.config
    cap = request.token_cap
    if cap is not None and cap < config.budget.max_tokens:
        budget = config.budget.model_copy(update={"max_tokens": cap})
        config = config.model_copy(update={"budget": budget})
    return replace(society, agents=agents, config=config)
