"""What megatron-core 0.16.1 needs to train on a machine without CUDA, in one place.

megatron-core assumes a CUDA device in three spots that a CPU run of the local
(non-Transformer-Engine) GPT layer reaches, even with dropout 0:

1. ``GlobalMemoryBuffer.get_tensor`` allocates its scratch buffer (attention scores, in
   ``DotProductAttention``) with ``device=torch.cuda.current_device()``.
2. The RNG tracker (``CudaRNGStatesTracker``) stores and forks CUDA generator states; the
   attention and weight initialisation fork it whatever the dropout.
3. ``RotaryEmbedding.get_emb`` moves ``inv_freq`` to ``torch.cuda.current_device()`` on its
   first call.

``apply()`` replaces each with a CPU equivalent and does nothing when CUDA is available,
so a GPU run uses megatron-core untouched. It is idempotent and must run after
``parallel_state.initialize_model_parallel`` (which creates the buffer);
``megatron_session`` in ``train.session`` calls it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from megatron.core import parallel_state
from megatron.core.models.common.embeddings.rotary_pos_embedding import RotaryEmbedding
from megatron.core.tensor_parallel import random as mcore_random
from megatron.core.utils import GlobalMemoryBuffer

__all__ = [
    "ADAPTATIONS",
    "CpuGlobalMemoryBuffer",
    "CpuRNGStatesTracker",
    "applied",
    "apply",
    "seed_cpu_rng_tracker",
]

ADAPTATIONS = ("global_memory_buffer", "rng_tracker", "rope_embedding")


class CpuGlobalMemoryBuffer(GlobalMemoryBuffer):
    """``GlobalMemoryBuffer`` whose buffers live in host memory."""

    def get_tensor(
        self,
        tensor_shape: Sequence[int],
        dtype: torch.dtype,
        name: str,
        mem_alloc_context: object = None,
    ) -> torch.Tensor:
        """A view of at least ``prod(tensor_shape)`` elements, reused per (name, dtype)."""
        required = math.prod(tensor_shape)
        buffer = self.buffer.get((name, dtype))
        if buffer is None or buffer.numel() < required:
            buffer = torch.empty(required, dtype=dtype, requires_grad=False)
            self.buffer[(name, dtype)] = buffer
        return buffer[:required].view(*tensor_shape)


class CpuRNGStatesTracker(mcore_random.CudaRNGStatesTracker):
    """The RNG tracker over CPU generator states: same names, seeds and fork semantics."""

    def add(self, name: str, seed: int) -> None:
        """Track a new named state seeded with ``seed``."""
        # The same guards as upstream: two names on one seed would draw identical streams.
        if seed in self.seeds_:
            raise ValueError(f"seed {seed} already exists")
        if name in self.states_:
            raise ValueError(f"rng state {name} already exists")
        self._is_initialized = True
        self.seeds_.add(seed)
        self.states_[name] = torch.Generator().manual_seed(seed).get_state()

    @contextlib.contextmanager
    def fork(self, name: str = mcore_random._MODEL_PARALLEL_RNG_TRACKER_NAME) -> Iterator[None]:
        """Run the block on the named state, then restore the default CPU state."""
        if name not in self.states_:
            raise ValueError(f"rng state {name} is not added")
        outer = torch.get_rng_state()
        torch.set_rng_state(self.states_[name])
        try:
            yield
        finally:
            self.states_[name] = torch.get_rng_state()
            torch.set_rng_state(outer)


def _rope_embedding_on_host(
    self: RotaryEmbedding, max_seq_len: int, offset: int = 0
) -> torch.Tensor:
    """``RotaryEmbedding.get_emb`` without moving ``inv_freq`` to a CUDA device."""
    freqs = self.get_freqs_non_repeated(max_seq_len, offset)
    if self.rotary_interleaved:
        emb = torch.stack((freqs.view(-1, 1), freqs.view(-1, 1)), dim=-1)
        emb = emb.view(freqs.shape[0], -1)
    else:
        emb = torch.cat((freqs, freqs), dim=-1)
    # [seq, 1, 1, dim], as upstream.
    return emb[:, None, None, :]


def applied() -> dict[str, bool]:
    """Which adaptations are in place now."""
    return {
        "global_memory_buffer": isinstance(
            parallel_state._GLOBAL_MEMORY_BUFFER, CpuGlobalMemoryBuffer
        ),
        "rng_tracker": isinstance(mcore_random._CUDA_RNG_STATE_TRACKER, CpuRNGStatesTracker),
        "rope_embedding": RotaryEmbedding.get_emb is _rope_embedding_on_host,
    }


def apply() -> list[str]:
    """Install the adaptations not in place yet and return their names.

    Does nothing (returns ``[]``) when CUDA is available. Raises ``RuntimeError`` when
    megatron-core's model parallel state is not initialised.
    """
    if torch.cuda.is_available():
        return []
    if not parallel_state.model_parallel_is_initialized():
        raise RuntimeError("initialize_model_parallel must run before cpu_compat.apply()")
    state = applied()
    if not state["global_memory_buffer"]:
        parallel_state._GLOBAL_MEMORY_BUFFER = CpuGlobalMemoryBuffer()
    if not state["rng_tracker"]:
        # Marking the tracker initialised stops get_cuda_rng_tracker() from replacing it.
        mcore_random._CUDA_RNG_STATE_TRACKER = CpuRNGStatesTracker()
        mcore_random._CUDA_RNG_STATE_TRACKER_INITIALIZED = True
    if not state["rope_embedding"]:
        RotaryEmbedding.get_emb = _rope_embedding_on_host
    return [name for name in ADAPTATIONS if not state[name]]


def seed_cpu_rng_tracker(seed: int) -> None:
    """The CPU counterpart of ``model_parallel_cuda_manual_seed`` at tensor rank 0."""
    tracker = mcore_random._CUDA_RNG_STATE_TRACKER
    if not isinstance(tracker, CpuRNGStatesTracker):
        raise RuntimeError("cpu_compat.apply() must run before seed_cpu_rng_tracker()")
    tracker.reset()
    # The offsets megatron-core uses, so a CPU and a GPU run draw from the same seeds.
    tracker.add(mcore_random._DATA_PARALLEL_RNG_TRACKER_NAME, seed)
    tracker.add(mcore_random._MODEL_PARALLEL_RNG_TRACKER_NAME, seed + 2718)
    tracker.add(mcore_random._EXPERT_PARALLEL_RNG_TRACKER_NAME, seed + 1024)
