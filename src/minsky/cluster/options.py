"""`--ray [ADDRESS]`: the option, and the runner it selects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from minsky.backends.registry import Backends
from minsky.plugin_api import BackendSettings
from minsky.runlog import RunLog
from minsky.runner import Runner


def ray_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--ray [ADDRESS]` (or $MINSKY_RAY): run the cases on a Ray cluster's engines.
    Bare `--ray` joins the cluster `ray start` made here ("auto"); "local" starts a
    private one on this machine."""
    return click.option(
        "--ray", "ray_address", is_flag=False, flag_value="auto", default=None,
        envvar="MINSKY_RAY", metavar="[ADDRESS]",
        help="run cases on a Ray cluster's engines, one per node (HOST:PORT, auto, "
             "local; env MINSKY_RAY); needs minsky[ray]")(fn)


def make_runner(settings: BackendSettings, log: RunLog | None, ray_address: str | None,
                concurrency: int) -> tuple[Runner, int]:
    """The local runner, or with `ray_address` a `ClusterRunner` on that cluster; and the
    cases to keep in flight (on a cluster `concurrency` is per engine)."""
    if not ray_address:
        return Runner(Backends(settings), log), concurrency
    from minsky.cluster.pool import ClusterRunner, connect

    connect(ray_address)
    runner = ClusterRunner(settings, log)
    return runner, runner.scale(concurrency)
