"""Checkpoints that resume exactly: model, optimizer, scheduler, RNG states, data position.

Layout, after Megatron-LM's: ``<run_dir>/checkpoints/iter_0000100.pt`` and
``latest_checkpointed_iteration.txt`` naming the newest. Both are written under a
temporary name and renamed, so a kill mid-save leaves the previous checkpoint usable.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from megatron.core import tensor_parallel

__all__ = [
    "TRACKER_FILE",
    "checkpoint_path",
    "latest_checkpoint",
    "load_checkpoint",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
]

TRACKER_FILE = "latest_checkpointed_iteration.txt"


def checkpoint_path(directory: Path, iteration: int) -> Path:
    """Where the checkpoint of ``iteration`` lives."""
    return directory / f"iter_{iteration:07d}.pt"


def rng_state() -> dict[str, Any]:
    """Every RNG the training touches, as Megatron-LM records them."""
    state = {
        "random": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "tracker": tensor_parallel.get_cuda_rng_tracker().get_states(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo ``rng_state``."""
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    tensor_parallel.get_cuda_rng_tracker().set_states(state["tracker"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(directory: Path, iteration: int, state: dict[str, Any]) -> Path:
    """Write ``state`` as the checkpoint of ``iteration`` and mark it the latest."""
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, iteration)
    _atomic_write(path, lambda tmp: torch.save(state, tmp))
    _atomic_write(directory / TRACKER_FILE, lambda tmp: tmp.write_text(f"{iteration}\n"))
    return path


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint in ``directory``, or None."""
    tracker = directory / TRACKER_FILE
    if not tracker.is_file():
        return None
    path = checkpoint_path(directory, int(tracker.read_text().strip()))
    if not path.is_file():
        raise FileNotFoundError(f"{tracker} names {path.name}, which is missing")
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU.

    ``weights_only=False``: the RNG states are NumPy and Python objects; these files are
    the run's own.
    """
    return torch.load(path, map_location="cpu", weights_only=False)
