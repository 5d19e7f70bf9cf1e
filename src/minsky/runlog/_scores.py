"""Scoring calls in the run log: the `scores` table, written and replayed.

A scoring call (how likely a model finds a given text, what Toolformer annotation and the
contamination test are made of) is a row beside the chat calls: the log observer writes it
(`log_score`), a resumed run finds it by a hash of the request (`scores_for_resume`) and
replays it instead of scoring again, and `logs show` reads it back with the rest of its
run (`RunLog.get_run`, through `_readers._logged_scores`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ulid import ULID

from minsky.backends.base import Scored
from minsky.messages import Usage
from minsky.runlog._schema import FAMILY, valid_params

if TYPE_CHECKING:
    from minsky.runlog._log import RunLog


def score_hash(agent: str, model: str, context: str, continuation: str,
               probes: Sequence[str]) -> str:
    """A stable hash of who (on which model) asked to score what, to find it on resume."""
    canonical = json.dumps({"agent": agent, "model": model, "context": context,
                            "continuation": continuation, "probes": list(probes)},
                           sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def log_score(log: RunLog, run_id: str, where: tuple[int, int], agent: str, purpose: str,
              model: str, backend: str, item: tuple[str, str], probes: Sequence[str],
              scored: Scored, usage: Usage, latency_s: float, replayed: bool = False) -> None:
    """One scoring call of run `run_id` (`where`: its round and index there)."""
    context, continuation = item
    with log.db:
        log.db.execute(
            "INSERT INTO scores (id, run_id, round, idx, agent, purpose, backend, context, "
            "continuation, probes_json, request_hash, total, scored_json, prompt_tokens, "
            "cached_tokens, latency_s, replayed, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            valid_params((str(ULID()), run_id, *where, agent, purpose, backend, context,
                          continuation, json.dumps(list(probes)),
                          score_hash(agent, model, context, continuation, probes),
                          scored.total,
                          json.dumps({"tokens": scored.tokens, "logprobs": scored.logprobs,
                                      "probes": scored.probes}),
                          usage.prompt_tokens, usage.cached_tokens, latency_s, int(replayed),
                          time.time())),
        )


def _scored(row: sqlite3.Row) -> Scored:
    data = json.loads(row["scored_json"])
    return Scored(data["tokens"], data["logprobs"], data["probes"],
                  row["prompt_tokens"] - len(data["tokens"]), row["cached_tokens"])


def scores_for_resume(log: RunLog, run_id: str) -> dict[str, deque[Scored]]:
    """Logged scores of a run and the runs beneath it by request hash, in order."""
    found: dict[str, deque[Scored]] = defaultdict(deque)
    rows = log.db.execute(
        f"{FAMILY}SELECT * FROM scores WHERE run_id IN (SELECT id FROM family) ORDER BY id",
        (run_id,))
    for row in rows:
        found[row["request_hash"]].append(_scored(row))
    return found
