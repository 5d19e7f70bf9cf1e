"""The run log: every run, round, message, backend call and outcome, in SQLite.

Written as the run goes (each call is committed when it returns), so a crash or Ctrl-C
loses nothing already computed, and `minsky ask --resume RUN_ID` can replay the logged
replies instead of asking the model again. Ids are ULIDs, so they sort by time. The
schema evolves through named migrations, applied once each, in order, under a write lock
(several processes may open a fresh log at once). Text is made valid UTF-8 before it is
written. Each run records the process that runs it, so a run whose process died without
finishing it (kill -9, a crash) reads as `interrupted`, not as `running` for ever.

A run is resumed by one process at a time: resuming takes an exclusive lock on
`logs.db.locks/RUN_ID.lock`, and refuses a run whose own process still runs it; the lock
is held until the resumed run finishes or its process ends. A top run records the
resolved path of its society file, so a resume from another folder finds the societies
it nests. A log that cannot be written (a read-only home) is still readable: `reader`
opens it read-only. Times are stored as epoch seconds; what is read back has each beside
the same instant in ISO 8601 UTC (`created_at` and `created_at_iso`). Scoring calls
(token log-probabilities of a given text) are logged beside the chat calls and replayed
on resume the same way.

All SQL against the log is in this package: the runner, the viewer, the trace replay and
the scripts read and write through `RunLog`'s methods and the functions here. Its private
modules, one job each: `_schema` (tables and migrations), `_log` (`RunLog`: opening,
writing, resuming), `_readers` (the read-side queries and the shape of what they give
back), `_scores` (scoring calls) and `_lock` (the resume locks).
"""

from __future__ import annotations

from minsky.runlog._log import RunLog, request_hash
from minsky.runlog._readers import with_run_id
from minsky.runlog._scores import log_score, score_hash, scores_for_resume

__all__ = [
    "RunLog",
    "log_score",
    "request_hash",
    "score_hash",
    "scores_for_resume",
    "with_run_id",
]
