"""The driver's side: connect to Ray, start one engine per node, supervise the cases.

`ClusterRunner` is a `Runner` whose `run` sends the whole case to an engine actor and
replays the events that come back into the driver's observers (the run log among them),
so `run_many` and everything above it are unchanged: the driver alone writes the run
log and the results file, and resume works exactly as on one machine (a resumed run's
logged replies are read here and go with its case).

Supervision, OTP-style but with Ray doing the restarts:
- an engine is a Ray actor with `max_restarts`: a killed process or lost node is
  restarted by Ray (on the same node, or another when the node is gone);
- a case whose engine died is sent again, preferring another live engine, at most
  `attempts` times in all; the lost attempt's events never reach the log, and a case's
  row is written once, when a run has finished, so nothing is counted twice;
- a case that keeps losing its engine becomes that case's error row (logged as a run
  with status "error"), not an endless retry; when every engine is gone the run stops
  with one line, and a rerun resumes;
- every wait is bounded: a case gets its society's time budget plus `grace_s`.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ulid import ULID

from minsky.answers import AnswerKind
from minsky.backends.registry import Backends
from minsky.errors import MinskyError
from minsky.inputs.safetext import valid
from minsky.messages import Usage
from minsky.organisations.base import Outcome
from minsky.plugin_api import BackendSettings
from minsky.run_events import RunFinished, RunStarted
from minsky.runlog import RunLog
from minsky.runner import Runner, RunResult
from minsky.society import Society

INSTALL = "--ray needs Ray: pip install 'minsky[ray]'"


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MinskyError(INSTALL) from None
    return ray


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, when nothing listens at HOST:PORT (ray.init
    would wait minutes for a cluster that is not there)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise MinskyError(f"--ray {address!r}: expected HOST:PORT, 'auto' or 'local'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise MinskyError(f"--ray {address}: no Ray cluster there ({err.strerror or err}); "
                          "start one with `ray start --head`") from None


def connect(address: str) -> None:
    """Join the Ray cluster at `address` (HOST:PORT; "auto": the one `ray start` made on
    this machine, or $RAY_ADDRESS; "local": a private one-node cluster started now)."""
    ray = _ray()
    if address not in ("auto", "local"):
        _reachable(address)
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False,
                 logging_level="ERROR", include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MinskyError(f"--ray {address}: {first}") from None


@dataclass
class _Engine:
    """One engine actor and what the driver knows of it."""

    number: int
    handle: Any
    node: str
    busy: int = 0  # cases in flight
    done: int = 0  # cases finished here
    taken_over: int = 0  # of those, cases another engine had lost
    lost: int = 0  # times it was lost under a case


class ClusterRunner(Runner):
    """A `Runner` whose runs happen on engine actors, one per node with CPUs (or
    `engines` of them, spread over those nodes)."""

    def __init__(self, settings: BackendSettings | None = None, log: RunLog | None = None,
                 engines: int | None = None, max_restarts: int = 3, attempts: int = 3,
                 grace_s: float = 120.0, start_timeout_s: float = 120.0) -> None:
        super().__init__(Backends(settings), log)
        self.settings = settings or BackendSettings()
        self.attempts = attempts
        self.grace_s = grace_s
        self.lost = 0  # engine losses seen (a test and the summary line read it)
        self.engines = self._launch(engines, max_restarts, start_timeout_s)

    def _launch(self, count: int | None, max_restarts: int,
               timeout_s: float) -> list[_Engine]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from minsky.cluster.engine import Engine

        ray = _ray()
        nodes = [n["NodeID"] for n in ray.nodes()
                 if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        if not nodes:
            raise MinskyError("--ray: the cluster has no node with CPUs for an engine")
        remote = ray.remote(Engine)
        engines = []
        for i in range(count or len(nodes)):
            node = nodes[i % len(nodes)]
            # num_cpus=0: one engine per node is placement, not a resource claim, so a
            # restart can land on another node when this one is gone (soft affinity);
            # max_task_retries=0: a lost case is re-sent by `run`, to another engine
            handle = remote.options(
                num_cpus=0, max_restarts=max_restarts, max_task_retries=0,
                max_concurrency=64,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True),
            ).remote(self.settings)
            engines.append(_Engine(i + 1, handle, node))
        try:
            ray.get([e.handle.where.remote() for e in engines], timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            raise MinskyError(f"--ray: the engines did not start within {timeout_s:.0f} s "
                              "(is minsky installed on every node?)") from None
        except ray.exceptions.RayError as err:
            raise MinskyError(f"--ray: an engine failed to start: {_first_line(err)}") from None
        return engines

    def scale(self, concurrency: int) -> int:
        """Cases in flight over the whole cluster for `concurrency` per engine."""
        return concurrency * len(self.engines)

    async def where(self) -> list[dict[str, Any]]:
        """Each engine's pid, host and node (bounded wait)."""
        refs = [e.handle.where.remote() for e in self.engines]
        return list(await asyncio.wait_for(asyncio.gather(*refs), timeout=60))

    async def __aexit__(self, *exc: object) -> None:
        ray = _ray()
        for engine in self.engines:
            ray.kill(engine.handle, no_restart=True)

    def _pick(self, avoid: set[int]) -> _Engine:
        """The least busy engine still worth trying, another than those in `avoid` when
        there is one."""
        alive = [e for e in self.engines if e.lost <= self._max_losses]
        if not alive:
            raise MinskyError("--ray: every engine was lost; rerun the same command to "
                              "resume (finished cases are kept)")
        fresh = [e for e in alive if e.number not in avoid] or alive
        return min(fresh, key=lambda e: (e.busy, e.lost, e.number))

    _max_losses = 6  # an engine lost this often is left alone (Ray may give up on it too)

    async def run(self, society: Society, question: str, kind: AnswerKind | None = None,
                  resume: str | None = None,
                  progress: Callable[[str], None] | None = None) -> RunResult:
        """Run `society` on `question` on an engine; its events reach this runner's
        observers (the run log) only once the run has finished there. With `resume`, the
        run's logged replies are read (and the run claimed) here and sent with the case."""
        ray = _ray()
        question = valid(question)
        # settled once, here: the engine runs with it, and a lost case is logged with it
        kind = society.answer_kind(question, kind)
        replay = self._logged(resume) if resume else None
        timeout = society.config.budget.timeout_s + self.grace_s
        tried: set[int] = set()
        failures: list[str] = []
        for _ in range(self.attempts):
            engine = self._pick(tried)
            tried.add(engine.number)
            engine.busy += 1
            ref = engine.handle.run_case.remote(society, question, kind, resume, replay)
            try:
                result, events, raised = await asyncio.wait_for(ref, timeout=timeout)
            except TimeoutError:
                # the engine enforces the society's own time budget, so a case this late
                # means a stuck engine: have Ray restart it (its other cases are re-sent)
                self._restart(engine)
                failures.append(f"engine {engine.number}: no answer in {timeout:.0f} s")
            except ray.exceptions.RayTaskError as err:  # not the engine: the run itself
                raise err.as_instanceof_cause() from None
            except ray.exceptions.RayError as err:
                failures.append(f"engine {engine.number}: {_first_line(err)}")
            else:
                for event in events:
                    self.emit(event, progress)
                if raised is not None:
                    raise raised
                engine.done += 1
                engine.taken_over += bool(failures)
                return result
            finally:
                engine.busy -= 1
            engine.lost += 1
            self.lost += 1
            print(f"warning: --ray: {failures[-1]}; sending the case again", file=sys.stderr)
        return self._failed(society, question, kind, failures, progress, resume)

    def _restart(self, engine: _Engine) -> None:
        """Kill a stuck engine's process; Ray restarts it (`max_restarts`)."""
        _ray().kill(engine.handle, no_restart=False)

    def _failed(self, society: Society, question: str, kind: AnswerKind,
                failures: list[str], progress: Callable[[str], None] | None,
                resume: str | None = None) -> RunResult:
        """The run of a case that lost its engine `attempts` times: logged as an error run
        (so the results file and the run log still agree), reported as its row."""
        run_id = resume or str(ULID())
        error = f"lost its engine {len(failures)} times: {'; '.join(failures)}"
        outcome = Outcome(None, [], detail={"stopped": True})
        self.emit(RunStarted(run_id, society.name, society.config.model_dump(), question,
                             kind, {}, resumed=resume is not None), progress)
        self.emit(RunFinished(run_id, "error", outcome, Usage(), 0.0), progress)
        return RunResult(run_id, society.name, question, kind, "error", outcome, Usage(),
                         0.0, [], error)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


__all__ = ["ClusterRunner", "connect"]
