"""`minsky serve`: every society served as an OpenAI-compatible chat model.

`create_app` builds the FastAPI application over a set of societies and one shared
`Runner`; `BackgroundServer` runs it under uvicorn in a thread. The wire format is in
`protocol`, how a conversation reaches a society in `conversation`, how request options
shape a run in `choices`, admission control in `slots`, and the only coupling to the
runner in `adapter`. FastAPI and uvicorn come with the `serve` extra; they are imported
on first use of these names, so the `minsky` command works without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minsky.serve.app import ServeSettings, create_app
    from minsky.serve.server import BackgroundServer

__all__ = ["BackgroundServer", "ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("ServeSettings", "create_app"):
        from minsky.serve import app

        return getattr(app, name)
    if name == "BackgroundServer":
        from minsky.serve.server import BackgroundServer

        return BackgroundServer
    raise AttributeError(f"module 'minsky.serve' has no attribute {name!r}")
