"""A single-process megatron-core session: process group, parallel state, seeds, teardown."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator

import numpy as np
import torch
from megatron.core import parallel_state
from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

from train import cpu_compat

__all__ = ["megatron_session", "seed_everything"]


def _free_localhost_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, torch and megatron-core's model-parallel RNG tracker."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        model_parallel_cuda_manual_seed(seed)
    else:
        cpu_compat.seed_cpu_rng_tracker(seed)


@contextlib.contextmanager
def megatron_session(seed: int) -> Iterator[torch.device]:
    """World size 1, tensor and pipeline parallel 1; yields the device to train on.

    gloo on the CPU (with the ``cpu_compat`` adaptations), NCCL on CUDA. Everything is torn
    down on exit, so sessions can follow each other in one process (tests do).
    """
    if torch.distributed.is_initialized():
        raise RuntimeError("a torch.distributed process group is already initialised")
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(0)
    torch.distributed.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://127.0.0.1:{_free_localhost_port()}",
        rank=0,
        world_size=1,
    )
    try:
        parallel_state.initialize_model_parallel(1, 1)
        cpu_compat.apply()
        seed_everything(seed)
        yield torch.device("cuda", 0) if cuda else torch.device("cpu")
    finally:
        parallel_state.destroy_model_parallel()
        torch.distributed.destroy_process_group()
