"""Societies over a Ray cluster: one engine per node, the driver the only writer.

`minsky eval --ray` and `minsky batch --ray` hand whole cases to engine actors (one per
node, each owning that node's backends) and write the run log and the results file on
the driver alone, so resuming works exactly as on one machine. Ray is optional
(`pip install 'minsky[ray]'`); nothing here imports it until a command asks for it.

    options    `--ray` and the runner a command makes with it (`make_runner`)
    pool       the driver's side: `ClusterRunner`, `connect`
    engine     the actor that runs whole cases on one node
"""
