"""train.cpu_compat: megatron-core's CUDA assumptions replaced on a CPU-only machine."""

from __future__ import annotations

import pytest
import torch
from megatron.core import parallel_state, tensor_parallel
from megatron.core.models.common.embeddings.rotary_pos_embedding import RotaryEmbedding
from megatron.core.utils import GlobalMemoryBuffer

from train import cpu_compat
from train.config import ModelConfig
from train.model import build_model, causal_mask
from train.session import megatron_session

TINY = ModelConfig(
    num_layers=2, hidden_size=32, num_attention_heads=4, num_query_groups=2, ffn_hidden_size=64
)


def test_this_machine_has_no_cuda() -> None:
    # The rest of this module proves the adaptations where they are needed.
    assert not torch.cuda.is_available()


def test_apply_needs_the_parallel_state() -> None:
    with pytest.raises(RuntimeError, match="initialize_model_parallel"):
        cpu_compat.apply()


def test_applied_in_a_session_and_idempotent() -> None:
    with megatron_session(seed=7):
        assert cpu_compat.applied() == dict.fromkeys(cpu_compat.ADAPTATIONS, True)
        buffer = parallel_state.get_global_memory_buffer()
        tracker = tensor_parallel.get_cuda_rng_tracker()
        assert isinstance(buffer, cpu_compat.CpuGlobalMemoryBuffer)
        assert isinstance(tracker, cpu_compat.CpuRNGStatesTracker)
        assert cpu_compat.apply() == []
        assert parallel_state.get_global_memory_buffer() is buffer
        assert tensor_parallel.get_cuda_rng_tracker() is tracker
        assert RotaryEmbedding.get_emb is cpu_compat._rope_embedding_on_host
    # Teardown drops the buffer; the next session installs a fresh CPU one.
    assert parallel_state._GLOBAL_MEMORY_BUFFER is None
    with megatron_session(seed=7):
        assert cpu_compat.applied()["global_memory_buffer"]


def test_nothing_is_applied_when_cuda_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    with megatron_session(seed=7):
        plain = GlobalMemoryBuffer()
        parallel_state._GLOBAL_MEMORY_BUFFER = plain
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert cpu_compat.apply() == []
        assert parallel_state.get_global_memory_buffer() is plain
        monkeypatch.undo()
        assert cpu_compat.apply() == ["global_memory_buffer"]


def test_buffer_allocates_on_the_host_and_reuses_memory() -> None:
    buffer = cpu_compat.CpuGlobalMemoryBuffer()
    big = buffer.get_tensor((4, 8), torch.float32, "mpu")
    small = buffer.get_tensor((2, 3), torch.float32, "mpu")
    assert big.device.type == "cpu" and big.shape == (4, 8)
    assert small.shape == (2, 3)
    assert small.data_ptr() == big.data_ptr()  # reused, not reallocated
    assert buffer.get_tensor((2,), torch.bfloat16, "mpu").dtype == torch.bfloat16


def test_rng_tracker_forks_like_megatron() -> None:
    tracker = cpu_compat.CpuRNGStatesTracker()
    tracker.add("model-parallel-rng", 11)
    with pytest.raises(ValueError, match="seed 11 already exists"):
        tracker.add("other", 11)
    with pytest.raises(ValueError, match="is not added"), tracker.fork("missing"):
        pass
    torch.manual_seed(0)
    outer = torch.get_rng_state()
    with tracker.fork():
        first = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), outer)  # the default stream is untouched
    with tracker.fork():
        second = torch.rand(3)
    assert torch.equal(first, torch.rand(3, generator=torch.Generator().manual_seed(11)))
    assert not torch.equal(first, second)  # the forked stream advanced


def test_forward_and_backward_without_cuda() -> None:
    with megatron_session(seed=3) as device:
        assert device.type == "cpu"
        model = build_model(TINY, vocab_size=50, seq_length=16, device=device)
        tokens = torch.randint(0, 50, (2, 16))
        positions = torch.arange(16).expand(2, 16)
        mask = causal_mask(2, 16, device)
        logits = model(tokens, positions, mask)
        assert logits.shape == (2, 16, 50)
        losses = model(tokens, positions, mask, labels=tokens)
        assert losses.shape == (2, 16)
        losses.mean().backward()
        grads = [param.grad for param in model.parameters()]
        assert all(grad is not None and torch.isfinite(grad).all() for grad in grads)
        # Causal: the first position's logits ignore every later token.
        changed = tokens.clone()
        changed[:, 1:] = (changed[:, 1:] + 1) % 50
        with torch.no_grad():
            assert torch.allclose(model(changed, positions, mask)[:, 0], logits[:, 0].detach())


def test_same_seed_same_initial_weights() -> None:
    states = []
    for _ in range(2):
        with megatron_session(seed=5) as device:
            states.append(build_model(TINY, 50, 16, device).state_dict())
    for name, tensor in states[0].items():
        if isinstance(tensor, torch.Tensor):
            assert torch.equal(tensor, states[1][name]), name
