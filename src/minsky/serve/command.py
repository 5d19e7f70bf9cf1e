"""The `minsky serve` command: serve societies as OpenAI-compatible models."""

from __future__ import annotations

from pathlib import Path

import click

from minsky.cli.core import MAX_WORKERS, backend_options, count, friendly, main
from minsky.cli.progress import say
from minsky.errors import MinskyError
from minsky.plugin_api import BackendSettings
from minsky.serve.connections import ConnectionLimits, connection_options, is_loopback
from minsky.strict import error_line

INSTALL = "minsky serve needs FastAPI and uvicorn: pip install 'minsky[serve]'"


@main.command("serve")
@click.option("--society", "-s", "society_refs", multiple=True,
              help="a built-in society name or a society TOML file (repeat for more; "
                   "default: every built-in society)")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback lets others run societies")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--api-key", envvar="MINSKY_API_KEY", default=None,
              help="clients must send 'Authorization: Bearer KEY' (also $MINSKY_API_KEY)")
@backend_options
@click.option("--max-concurrent", type=count(1, MAX_WORKERS), default=16, show_default=True,
              help="society runs in flight at once (a request for n choices takes n)")
@click.option("--max-queue", type=count(0, 1_000_000), default=64, show_default=True,
              help="requests that may wait for a slot; more get 429 with Retry-After")
@click.option("--max-body", "max_body_bytes", type=count(1024, 1 << 30), default=1_048_576,
              show_default=True, help="largest request body in bytes")
@click.option("--log", "log_path", type=click.Path(path_type=Path), default=None,
              help="the run log (default $MINSKY_HOME/logs.db)")
@connection_options()
@friendly
def serve(society_refs: tuple[str, ...], host: str, port: int, api_key: str | None,
          model: str | None, settings: BackendSettings, max_concurrent: int,
          max_queue: int, max_body_bytes: int, log_path: Path | None,
          connections: ConnectionLimits) -> None:
    """Serve societies as OpenAI-compatible models at http://HOST:PORT/v1 (model = the
    society's name)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MinskyError(INSTALL) from None
    from pydantic import ValidationError

    from minsky import society as societies
    from minsky.backends.registry import Backends
    from minsky.runlog import RunLog
    from minsky.runner import Runner
    from minsky.serve.app import ServeSettings, create_app
    from minsky.serve.server import bind, config

    try:
        limits = ServeSettings(api_key=api_key or None, max_concurrent=max_concurrent,
                               max_queue=max_queue, max_body_bytes=max_body_bytes)
    except ValidationError as err:
        raise MinskyError(error_line(err, name=_flag)) from None
    served = {}
    for ref in society_refs or societies.builtin_names():
        soc = societies.load(ref, model)
        if soc.name in served:
            raise MinskyError(f"option --society: two societies are named {soc.name!r}")
        served[soc.name] = soc
    runner = Runner(Backends(settings), RunLog(log_path))
    app = create_app(served, runner, limits)
    if not is_loopback(host) and not limits.api_key:
        say(f"warning: serving on {host} without --api-key: anyone who can reach it can "
            "run societies")
    try:
        sock = bind(host, port)
    except OSError as err:
        raise MinskyError(f"option --port: cannot listen on {host}:{port} "
                          f"({err.strerror or err})") from None
    port = sock.getsockname()[1]  # the one bound: --port 0 picks a free one
    noun = "society" if len(served) == 1 else "societies"
    shown = f"[{host}]" if ":" in host else host
    say(f"serving {len(served)} {noun} at http://{shown}:{port}/v1 "
        f"(models: {', '.join(served)})")
    import uvicorn

    uvicorn.Server(config(app, host, port, connections)).run(sockets=[sock])


def _flag(field: str) -> str:
    """The option that sets a `ServeSettings` field: `option --max-body` for max_body_bytes."""
    return f"option --{field.removesuffix('_bytes').replace('_', '-')}"
