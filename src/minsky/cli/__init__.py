"""The `minsky` command line.

Results go to stdout (`--json` for machines), progress to stderr. Errors a user can fix
are one line on stderr and exit code 2, never a traceback. Each module holds one family
of commands; importing them registers them on `main`.
"""

from minsky.cli import economy, evaluation, info, run, star, toolformer  # noqa: F401 - registers

# `main` is the `minsky` command, pyproject's entry point (`minsky.cli:main`), with every
# command registered on it; it is defined (its home) in `minsky.cli.core`
from minsky.cli.core import main as main
from minsky.serve import command as _serve  # noqa: F401 - registers `minsky serve`
from minsky.view import command as _view  # noqa: F401 - registers `minsky view`
