"""`--ray`: societies over a real loopback Ray cluster (a head and two worker nodes).

Sharded over two engines an evaluation gives the local run's per-case results; an engine
killed mid-evaluation is restarted by Ray and its cases finish elsewhere, none lost or
written twice, with the results file and the run log in agreement.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from click.testing import CliRunner
from ray_cluster import auth_env, local_cluster

from minsky.backends.fakes import ScriptedBackend
from minsky.backends.registry import Backends
from minsky.cli import main
from minsky.cluster.engine import Engine
from minsky.cluster.pool import ClusterRunner, _Engine
from minsky.evals.harness import evaluate_society
from minsky.plugin_api import Case
from minsky.results import read_rows
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import load


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    auth = auth_env()
    with pytest.MonkeyPatch.context() as env, local_cluster(auth, workers=2) as address:
        for key, value in auth.items():
            env.setenv(key, value)
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        try:
            yield address
        finally:
            ray.shutdown()


def cases(n: int) -> list[Case]:
    return [Case(f"c{i}", f"What is {i} + {i}? Answer {2 * i if i % 3 else i}.",
                 str(2 * i), "number") for i in range(1, n + 1)]


def society(tmp: Path, delay: float) -> Any:
    path = tmp / "three.toml"
    path.write_text(f'name = "three"\norganisation = "vote"\nmodel = "echo:{delay}"\n'
                    '[[agents]]\nname = "solver"\ncount = 3\n')
    return load(str(path))


PER_CASE = ("case", "answer", "correct", "status", "prompt_tokens", "completion_tokens",
            "calls", "votes", "member_tokens", "config", "models", "case_sha")


def test_sharded_eval_matches_the_local_run(cluster: str, tmp_path: Path) -> None:
    soc, todo = society(tmp_path, 0.05), cases(10)

    async def local() -> None:
        async with Runner(Backends(), RunLog(tmp_path / "local.db")) as runner:
            await evaluate_society(runner, soc, todo, tmp_path / "local.jsonl", 2)

    async def sharded() -> ClusterRunner:
        runner = ClusterRunner(log=RunLog(tmp_path / "ray.db"), engines=2)
        async with runner:
            await evaluate_society(runner, soc, todo, tmp_path / "ray.jsonl", runner.scale(2))
        return runner

    asyncio.run(local())
    runner = asyncio.run(sharded())
    mine = {r["case"]: {k: r[k] for k in PER_CASE} for r in read_rows(tmp_path / "ray.jsonl")}
    ref = {r["case"]: {k: r[k] for k in PER_CASE} for r in read_rows(tmp_path / "local.jsonl")}
    assert mine == ref and len(mine) == 10
    assert any(r["correct"] for r in ref.values()) and not all(r["correct"] for r in ref.values())
    # both engines took cases, on two different nodes
    assert all(e.done > 0 for e in runner.engines)
    assert len({e.node for e in runner.engines}) == 2
    # the driver logged every run, calls included
    log = RunLog.read_only(tmp_path / "ray.db")
    for row in read_rows(tmp_path / "ray.jsonl"):
        run = log.get_run(row["run_id"])
        assert run["answer"] == row["answer"] and len(run["calls"]) == 3


def test_killed_engine_is_restarted_and_its_cases_finish_elsewhere(
        cluster: str, tmp_path: Path) -> None:
    soc, todo = society(tmp_path, 0.4), cases(12)
    out, db = tmp_path / "res.jsonl", tmp_path / "log.db"
    killed: dict[str, Any] = {}

    async def go() -> ClusterRunner:
        runner = ClusterRunner(log=RunLog(db), engines=2)
        first = await runner.where()
        rows: list[dict[str, Any]] = []

        async def kill_when_busy() -> None:
            # both engines hold cases once a couple have finished: kill the first one
            while len(rows) < 2:
                await asyncio.sleep(0.05)
            assert runner.engines[0].busy > 0
            killed["pid"] = first[0]["pid"]
            os.kill(first[0]["pid"], signal.SIGKILL)

        async with runner:
            killer = asyncio.ensure_future(kill_when_busy())
            await asyncio.wait_for(evaluate_society(runner, soc, todo, out, runner.scale(2),
                                                    rows.append), timeout=240)
            await killer
            killed["after"] = await runner.where()  # bounded: where() waits at most 60 s
        return runner

    runner = asyncio.run(go())
    assert runner.lost >= 1 and runner.engines[0].lost >= 1
    # the killed engine's cases were finished by the other one
    assert runner.engines[1].taken_over >= 1
    # Ray restarted the engine: a new process answers for it
    assert killed["after"][0]["pid"] != killed["pid"]
    rows = read_rows(out)
    assert sorted(r["case"] for r in rows) == sorted(c.id for c in todo)  # none lost or twice
    assert all(r["status"] == "ok" for r in rows)
    log = RunLog.read_only(db)
    logged = {r["id"]: r for r in log.list_runs(limit=100) if r["parent_id"] is None}
    assert set(logged) == {r["run_id"] for r in rows}  # no run of a lost attempt
    for row in rows:
        assert logged[row["run_id"]]["answer"] == row["answer"]
        assert logged[row["run_id"]]["status"] == "ok"
        assert len(log.get_run(row["run_id"])["calls"]) == 3
    # and a rerun over the same file skips every finished case
    asyncio.run(_rerun(soc, todo, out, db))
    assert len(read_rows(out)) == 12


async def _rerun(soc: Any, todo: list[Case], out: Path, db: Path) -> None:
    runner = ClusterRunner(log=RunLog(db), engines=2)
    async with runner:
        await evaluate_society(runner, soc, todo, out, 2)
    assert sum(e.done for e in runner.engines) == 0


def test_batch_cli_over_ray(cluster: str, tmp_path: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("".join(f"question {i}\n" for i in range(6)))
    out = tmp_path / "out.jsonl"
    args = ["batch", str(questions), "-s", "single", "-m", "echo:", "--out", str(out),
            "--ray", cluster, "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answered_now"] == 6
    # echo repeats the question; the society's answer is its number
    assert {r["id"]: r["answer"] for r in read_rows(out)} == {str(i + 1): str(i) for i in range(6)}


def test_arena_cli_over_ray_judges_as_locally(cluster: str, tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    prompts = data / "mt_bench" / "question.jsonl"
    base = ["arena", "--prompts", str(prompts), "--limit", "2", "--contestant", "single",
            "--contestant", "vote3", "--judge", "single", "--model", "echo:", "--json"]
    local = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "local.jsonl")])
    over = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "ray.jsonl"),
                                     "--ray", cluster])
    assert local.exit_code == 0 and over.exit_code == 0, over.output

    def rows(name: str) -> list[dict[str, Any]]:
        drop = {"run_id", "wall_s", "judge_run_id"}
        return sorted(json.dumps({k: v for k, v in r.items() if k not in drop},
                                  sort_keys=True) for r in read_rows(tmp_path / name))

    assert rows("ray.jsonl") == rows("local.jsonl") and len(rows("ray.jsonl")) == 2 * 2 + 4


class _Lost:
    """An engine handle whose every case dies with its actor."""

    class run_case:  # noqa: N801 - mimics a Ray actor method
        @staticmethod
        def remote(*args: Any) -> Any:
            async def die() -> None:
                raise ray.exceptions.ActorDiedError()
            return die()


class _AlwaysLost(ClusterRunner):
    def _launch(self, count: int | None, max_restarts: int, timeout_s: float) -> list[_Engine]:
        return [_Engine(1, _Lost(), "a"), _Engine(2, _Lost(), "b")]


def test_a_case_that_keeps_losing_its_engine_is_an_error_row(tmp_path: Path) -> None:
    soc, out = society(tmp_path, 0), tmp_path / "res.jsonl"

    async def go() -> None:
        runner = _AlwaysLost(log=RunLog(tmp_path / "log.db"), attempts=3)
        await evaluate_society(runner, soc, cases(1), out, 1)
        assert runner.lost == 3 and [e.lost for e in runner.engines] == [2, 1]

    asyncio.run(go())
    [row] = read_rows(out)
    assert row["status"] == "error" and row["answer"] is None
    run = RunLog.read_only(tmp_path / "log.db").get_run(row["run_id"])
    assert run["status"] == "error"


class _Stuck:
    """An engine handle whose cases never answer."""

    class run_case:  # noqa: N801 - mimics a Ray actor method
        @staticmethod
        def remote(*args: Any) -> Any:
            return asyncio.sleep(3600)


class _AlwaysStuck(ClusterRunner):
    restarted: list[int]

    def _launch(self, count: int | None, max_restarts: int, timeout_s: float) -> list[_Engine]:
        self.restarted = []
        return [_Engine(1, _Stuck(), "a"), _Engine(2, _Stuck(), "b")]

    def _restart(self, engine: _Engine) -> None:
        self.restarted.append(engine.number)


def test_a_stuck_engine_is_restarted_and_the_wait_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "quick.toml"
    path.write_text('name = "quick"\norganisation = "single"\nmodel = "echo:"\n'
                    '[budget]\ntimeout_s = 0.2\n[[agents]]\nname = "solver"\n')
    soc, out = load(str(path)), tmp_path / "res.jsonl"

    async def go() -> _AlwaysStuck:
        runner = _AlwaysStuck(log=RunLog(tmp_path / "log.db"), attempts=2, grace_s=0.3)
        await asyncio.wait_for(evaluate_society(runner, soc, cases(1), out, 1), timeout=10)
        return runner

    runner = asyncio.run(go())
    assert runner.restarted == [1, 2]  # each engine once, the case sent to the other
    [row] = read_rows(out)
    assert row["status"] == "error"


class _Here:
    """An engine handle whose cases run in this process, on an `Engine` over `backends`;
    it keeps what each case was sent with."""

    def __init__(self, backends: Backends) -> None:
        self.engine = Engine.__new__(Engine)
        self.engine.backends = backends
        self.sent: list[tuple[Any, ...]] = []
        self.run_case = self  # `handle.run_case.remote(...)`, as on an actor

    def remote(self, *args: Any) -> Any:
        # as sent: the run takes the replies it replays from the dict
        replay = args[-1]
        self.sent.append((*args[:-1], {k: list(v) for k, v in (replay or {}).items()}))
        return self.engine.run_case(*args)


class _HereRunner(ClusterRunner):
    handle: _Here

    def _launch(self, count: int | None, max_restarts: int, timeout_s: float) -> list[_Engine]:
        # a model asked here is an error reply: a resumed case must replay what it logged
        self.handle = _Here(Backends(overrides={"echo:0": ScriptedBackend([])}))
        return [_Engine(1, self.handle, "a")]


def test_the_cluster_runner_takes_the_runners_public_parameters() -> None:
    public = inspect.signature(Runner.run).parameters
    assert list(public) == ["self", "society", "question", "kind", "resume", "progress"]
    assert inspect.signature(ClusterRunner.run).parameters == public


def test_a_resumed_case_goes_to_an_engine_with_its_logged_replies(tmp_path: Path) -> None:
    soc, log = society(tmp_path, 0), RunLog(tmp_path / "log.db")
    first = asyncio.run(Runner(Backends(), log).run(soc, "What is 2 + 2?"))
    assert first.status == "ok"

    async def go() -> tuple[_HereRunner, Any]:
        runner = _HereRunner(log=log)
        return runner, await runner.run(soc, "What is 2 + 2?", resume=first.run_id)

    runner, again = asyncio.run(go())
    # the kind was settled on the driver ("auto": a number here), the replies read there
    [(_, _, kind, resume, replay)] = runner.handle.sent
    assert (kind, resume, sum(map(len, replay.values()))) == ("number", first.run_id, 3)
    assert (again.run_id, again.status, again.answer) == (first.run_id, "ok", first.answer)
    run = log.get_run(first.run_id)
    assert [c["replayed"] for c in run["calls"]] == [1, 1, 1]
    assert len(log.list_runs()) == 1


def test_without_ray_the_option_says_what_to_install(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    questions = tmp_path / "q.txt"
    questions.write_text("hello\n")
    result = CliRunner().invoke(main, ["batch", str(questions), "-m", "echo:", "--ray"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --ray needs Ray: pip install 'minsky[ray]'"


def test_no_cluster_at_the_address_is_one_line(tmp_path: Path) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("hello\n")
    with socket_closed() as port:
        result = CliRunner().invoke(main, ["batch", str(questions), "-m", "echo:",
                                           "--ray", f"127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: --ray 127.0.0.1:{port}: no Ray cluster there")
    assert len(result.output.strip().splitlines()) == 1


class socket_closed:  # noqa: N801 - a context manager
    """A port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = int(s.getsockname()[1])
        s.close()
        return self.port

    def __exit__(self, *exc: object) -> None:
        pass
