"""minsky: natural-language societies of mind that run on small local models.

The public surface; everything else is an implementation module.
"""

from minsky.answers import AnswerKind, Tally, extract_answer, tally_votes
from minsky.backends.base import Backend, Capabilities
from minsky.backends.fakes import EchoBackend, FunctionBackend, ScriptedBackend
from minsky.backends.registry import Backends
from minsky.errors import MinskyError
from minsky.evals.benchmarks import load_benchmark
from minsky.messages import ChatReply, ChatRequest, Message, Options, Usage
from minsky.organisations.base import (
    Ask,
    Member,
    MemberAnswer,
    Organisation,
    Outcome,
    Round,
    SocietyView,
    Task,
    Turn,
)
from minsky.plugin_api import (
    BackendSettings,
    BackendType,
    Case,
    LoaderType,
    ToolContext,
    ToolType,
    hookimpl,
)
from minsky.runlog import RunLog
from minsky.runner import Runner, RunResult
from minsky.society import Society
from minsky.society import load as load_society
from minsky.strict import Strict
from minsky.tools.base import Tool

__all__ = [
    "AnswerKind",
    "Ask",
    "Backend",
    "BackendSettings",
    "BackendType",
    "Backends",
    "Capabilities",
    "Case",
    "ChatReply",
    "ChatRequest",
    "EchoBackend",
    "FunctionBackend",
    "LoaderType",
    "Member",
    "MemberAnswer",
    "Message",
    "MinskyError",
    "Options",
    "Organisation",
    "Outcome",
    "Round",
    "RunLog",
    "RunResult",
    "Runner",
    "ScriptedBackend",
    "Society",
    "SocietyView",
    "Strict",
    "Tally",
    "Task",
    "Tool",
    "ToolContext",
    "ToolType",
    "Turn",
    "Usage",
    "extract_answer",
    "hookimpl",
    "load_benchmark",
    "load_society",
    "tally_votes",
]
