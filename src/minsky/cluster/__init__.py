"""Societies over a Ray cluster: one engine per node, the driver the only writer.

`minsky eval --ray` and `minsky batch --ray` hand whole cases to engine actors (one per
node, each owning that node's backends) and write the run log and the results file on
the driver alone, so resuming works exactly as on one machine. Ray is optional
(`pip install 'minsky[ray]'`); nothing here imports it until a command asks for it.
"""

from minsky.cluster.options import make_runner, ray_option
from minsky.cluster.pool import ClusterRunner, connect

__all__ = ["ClusterRunner", "connect", "make_runner", "ray_option"]
