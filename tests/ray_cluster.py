"""A real Ray cluster on loopback for the `--ray` tests: a head and two worker nodes,
each its own `ray start` (own raylet process), torn down by killing exactly the processes
that belong to its private temp dir (never `ray stop`, which would stop anyone's)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import minsky

SRC = str(Path(minsky.__file__).resolve().parents[1])
COMMON = ["--node-ip-address=127.0.0.1", "--object-store-memory=100000000",
          "--disable-usage-stats"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def auth_env() -> dict[str, str]:
    """One explicit auth mode for the head, the workers and the driver. Left unset, Ray
    2.60 looks for ~/.ray/auth_token (which a plain `ray.init()` may have created) and a
    head and a worker can disagree about token auth, and then cannot talk; loopback
    needs none."""
    return {"RAY_AUTH_MODE": "disabled"}


def _env(tmp: str, auth: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # the engines import this checkout's minsky, and may never load a real model
    env.update(PYTHONPATH=SRC, MINSKY_NO_REAL_MODELS="1", RAY_USAGE_STATS_ENABLED="0",
               MINSKY_CLUSTER_TEST=tmp, **auth)
    return env


def _ray_start(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(["ray", "start", *args, *COMMON], env=env, timeout=120,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{done.stdout[-2000:]}\n"
                           f"{done.stderr[-2000:]}")


def _ours(tmp: str) -> list[int]:
    """Pids of the processes of this cluster: their command line or environment names
    its temp dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if tmp.encode() in blob:
            found.append(int(entry.name))
    return found


@contextmanager
def local_cluster(auth: dict[str, str], workers: int = 2) -> Iterator[str]:
    """Start the cluster (`auth`: from `auth_env`); yield the head's address; kill it all
    afterwards."""
    # short: Ray's unix socket paths must stay under ~107 characters
    tmp = tempfile.mkdtemp(prefix="mr", dir="/tmp")
    env = _env(tmp, auth)
    address = f"127.0.0.1:{_free_port()}"
    try:
        # the head runs no engine (no CPUs): engines go to the two worker nodes
        _ray_start(["--head", f"--port={address.split(':')[1]}", "--num-cpus=0",
                    f"--temp-dir={tmp}", "--include-dashboard=false"], env)
        for _ in range(workers):
            _ray_start([f"--address={address}", "--num-cpus=1"], env)
        yield address
    finally:
        for _ in range(3):
            pids = _ours(tmp)
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if not pids:
                break
            time.sleep(0.5)
        shutil.rmtree(tmp, ignore_errors=True)
