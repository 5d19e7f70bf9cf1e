"""The `minsky view` command: serve the viewer, or export it as a static folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from minsky.cli.core import friendly, main
from minsky.cli.progress import say
from minsky.errors import MinskyError
from minsky.inputs.safetext import printable
from minsky.serve.connections import ConnectionLimits, connection_options, is_loopback


@main.command("view")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="0 picks a free port")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback lets others read the log")
@click.option("--log", "log_path", type=click.Path(path_type=Path), default=None,
              help="the run log (default $MINSKY_HOME/logs.db)")
@click.option("--results", "results_files", type=click.Path(path_type=Path), multiple=True,
              help="an eval, arena or economy results JSONL (repeat for more)")
@click.option("--export", "export_dir", type=click.Path(path_type=Path), default=None,
              help="write the pages as a static folder here instead of serving")
@connection_options("head_s", "max_connections")
@friendly
def view(port: int, host: str, log_path: Path | None, results_files: tuple[Path, ...],
         export_dir: Path | None, connections: ConnectionLimits) -> None:
    """Browse runs, evaluations, arenas and economies in a local, read-only web viewer."""
    from minsky.paths import log_path as default_log
    from minsky.view.export import export
    from minsky.view.pages import App
    from minsky.view.results import detect
    from minsky.view.server import ViewServer

    log_file: Path | None = log_path or default_log()
    files = [detect(p) for p in results_files]
    if files and log_file is not None and not log_file.exists():
        # a fresh home, or results copied from elsewhere: the files are enough
        say(f"no run log at {log_file}: showing the results files alone")
        log_file = None
    if export_dir is not None:
        count = export(log_file, files, export_dir, say)
        click.echo(printable(f"wrote {count} pages to {export_dir}/ (open index.html)",
                             line=True))
        return
    app = App(log_file, files)
    try:
        server = ViewServer(host, port, app, connections)
    except OSError as err:
        raise MinskyError(f"--host {host} --port {port}: cannot listen ({err.strerror})") \
            from None
    if not is_loopback(host):
        say(f"warning: serving on {host}: anyone who can reach it can read the log")
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    say(f"minsky view: http://{shown}:{bound_port}/ (read-only; Ctrl-C stops)")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
