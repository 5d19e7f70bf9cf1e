"""The worker process: `python -I -m minsky.pyrun MEMORY_MB CPU_S` serves programs on
stdin and stdout (see minsky.pyrun._worker)."""

import sys

from minsky.pyrun._worker import _serve

if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
