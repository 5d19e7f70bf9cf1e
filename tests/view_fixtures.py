"""A run log and results files for the viewer's tests, made by real societies on fakes.

Everything goes through the real Runner with the scripted backends of
`minsky.backends.fakes`: a nested society (a contest whose proposers are sub-societies,
one of them a calculator user) judged by a critics' vote, an evaluation of two societies,
an arena of two contestants and an economy. One proposer's reply carries
`<script>alert(1)</script>`, which the viewer must show as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from test_hierarchy import team_toml

from minsky.backends.fakes import FunctionBackend
from minsky.backends.registry import Backends
from minsky.economy.market import EconomyConfig
from minsky.economy.run import run_economy
from minsky.evals.arena import run_arena
from minsky.evals.harness import evaluate_society
from minsky.messages import ChatRequest
from minsky.organisations.judging import PAIR_TEMPLATE
from minsky.plugin_api import Case
from minsky.runlog import RunLog
from minsky.runner import Runner
from minsky.society import from_dict, load

SCRIPT = "<script>alert(1)</script>"
QUESTION = "Plan a picnic for 17*23+4 people. <b>not bold</b>"


@dataclass
class ViewFixture:
    log: Path
    nested_run: str  # the contest run: sub-societies, a tool call, a vote
    eval_file: Path
    arena_file: Path
    economy_file: Path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


CALC_TEAM = """
name = "team-calc"
organisation = "vote"
model = "fake:t"
answer = "text"

[[agents]]
name = "counter"
tools = ["Calculator"]
role = "You count heads for team calc."
"""

# the nested team is the hierarchy tests' two-round mixture
WORDS_TEAM = team_toml("team-words", "words", "fake:t")

PARENT = """
name = "picnic"
organisation = "contest"
model = "fake:c"

[[agents]]
name = "calc"
group = "proposer"
society = "subs/calc.toml"

[[agents]]
name = "words"
group = "proposer"
society = "subs/words.toml"

[[agents]]
name = "critic"
group = "critic"
count = 3
role = "You are a critic."
"""


def _team(request: ChatRequest) -> str:
    system = request.messages[0].content
    if "team calc" in system:
        if not request.prefix:
            return "We are [Calculator(17*23+4)-> 300"
        return " people, so bring 395 sandwiches."
    if "aggregate" in system:
        return f"Words final plan: a blanket and {SCRIPT} lemonade."
    return "words idea"


def _critic(request: ChatRequest) -> str:
    return "A"


async def build(tmp: Path) -> ViewFixture:
    """Fill a run log and three results files under `tmp`."""
    log_path = tmp / "runs.db"
    log = RunLog(log_path)
    backends = {"fake:t": FunctionBackend(_team), "fake:c": FunctionBackend(_critic)}
    runner = Runner(Backends(overrides=backends), log)
    _write(tmp / "subs" / "calc.toml", CALC_TEAM)
    _write(tmp / "subs" / "words.toml", WORDS_TEAM)
    parent = load(str(_write(tmp / "picnic.toml", PARENT)))
    nested = await runner.run(parent, QUESTION)

    def adder(request: ChatRequest) -> str:
        q = request.messages[-1].content
        n = int(q.split("What is ")[1].split("+")[0])
        # the 'sloppy' society gets odd cases wrong, so the matrix has both marks
        sloppy = "sloppy" in request.messages[0].content and n % 2
        return f"The answer is {2 * n + (1 if sloppy else 0)}."

    arith = Runner(Backends(overrides={"fake:a": FunctionBackend(adder)}), log)
    cases = [Case(f"c{i}", f"What is {i}+{i}?", str(2 * i), "number") for i in range(6)]
    eval_file = tmp / "eval-fake.jsonl"
    for name, role, count in (("careful", "You are careful.", 1),
                              ("sloppy3", "You are sloppy.", 3)):
        society = from_dict({"name": name, "organisation": "vote", "model": "fake:a",
                             "agents": [{"name": "m", "role": role, "count": count}]},
                            f"{name}.toml")
        await evaluate_society(arith, society, cases, eval_file)

    def contestant(request: ChatRequest) -> str:
        system = request.messages[0].content
        return "A long and careful answer." if "verbose" in system else f"Short. {SCRIPT}"

    def judge(request: ChatRequest) -> str:
        # prefers whichever answer is shown first: a position bias the page must show
        return "A"

    arena_runner = Runner(Backends(overrides={"fake:p": FunctionBackend(contestant),
                                              "fake:j": FunctionBackend(judge)}), log)
    players = [from_dict({"name": name, "organisation": "vote", "model": "fake:p",
                          "agents": [{"name": "writer", "role": f"You are {name}."}]},
                         f"{name}.toml") for name in ("verbose", "terse")]
    referee = from_dict({"name": "judge", "organisation": "vote", "model": "fake:j",
                         "agents": [{"name": "judge", "role": "You judge."}]}, "judge.toml")
    arena_file = tmp / "arena-fake.jsonl"
    await run_arena(arena_runner, [("p1", "Say hi."), ("p2", "Say bye.")], players, referee,
                    PAIR_TEMPLATE, arena_file)

    economy = from_dict({"name": "eco3", "organisation": "vote", "model": "fake:a",
                         "agents": [{"name": "m", "role": "You are careful.", "count": 3}]},
                        "eco.toml")
    cfg = EconomyConfig(endowment=100, reward=900, rent=40, token_price=1.0,
                        birth_threshold=400, birth_share=0.5, max_members=5)
    economy_file = tmp / "economy-fake.jsonl"
    await run_economy(arith, economy, cases, 2, 3, cfg, economy_file)
    log.close()
    return ViewFixture(log_path, nested.run_id, eval_file, arena_file, economy_file)
