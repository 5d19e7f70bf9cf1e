"""The resumable state of a LoRA training run, kept in `OUT.ckpt/` beside the adapter.

A checkpoint holds the LoRA weights, the optimizer state, the step, the running totals
and the identity of the run (the data file's sha256 and every setting that changes the
result). A later run with the same identity resumes at that step; any other starts over.
It is written to a temporary folder and renamed into place, so a kill mid-save leaves
the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1


@dataclass
class Progress:
    """Where a run stands: steps done and the totals since its first step."""

    step: int = 0
    tokens: int = 0  # reply tokens that carried a loss
    tokens_all: int = 0  # every token processed, prompts included
    train_s: float = 0.0
    losses: list[float] = field(default_factory=list)  # one per step


def ckpt_dir(out: Path) -> Path:
    """The checkpoint folder of the adapter `out`."""
    return out.with_name(out.name + ".ckpt")


def save(out: Path, identity: dict[str, Any], progress: Progress, tensors: dict[str, Any]) -> None:
    """Write the checkpoint of `out` (`tensors`: torch-saveable state) atomically."""
    import torch

    final = ckpt_dir(out)
    tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
    old = final.with_name(final.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(tensors, tmp / "state.pt")
    state = {"format": FORMAT, "identity": identity, "progress": asdict(progress)}
    (tmp / "progress.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    # subtle: move the previous checkpoint aside before renaming the new one in, and
    # delete it only after; `load` falls back to `.old` if a kill lands in between
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load(out: Path, identity: dict[str, Any]) -> tuple[Progress, dict[str, Any]] | None:
    """(progress, tensors) of a checkpoint of the same run, or None: none there, or one
    of another run (then a one-line notice says so)."""
    import sys

    import torch

    final = ckpt_dir(out)
    where = final if final.is_dir() else final.with_name(final.name + ".old")
    if not where.is_dir():
        return None
    try:
        state = json.loads((where / "progress.json").read_text(encoding="utf-8"))
        same = state.get("format") == FORMAT and state.get("identity") == identity
        if same:
            tensors = torch.load(where / "state.pt", weights_only=True)
            return Progress(**state["progress"]), tensors
        print(f"minsky: {where} was made with other data or settings; starting over",
              file=sys.stderr)
    except (OSError, ValueError, TypeError, RuntimeError) as err:
        print(f"minsky: {where} is unreadable ({err}); starting over", file=sys.stderr)
    return None
