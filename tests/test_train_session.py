"""train.session: a world-size-1 megatron-core session that always tears down."""

from __future__ import annotations

import pytest
import torch
from megatron.core import parallel_state

from train.session import megatron_session


def test_session_sets_up_and_tears_down() -> None:
    with megatron_session(seed=1) as device:
        assert device == torch.device("cpu")
        assert torch.distributed.get_backend() == "gloo"
        assert torch.distributed.get_world_size() == 1
        assert parallel_state.get_tensor_model_parallel_world_size() == 1
        assert parallel_state.get_pipeline_model_parallel_world_size() == 1
        first = torch.rand(2)
    assert not torch.distributed.is_initialized()
    assert not parallel_state.model_parallel_is_initialized()
    with megatron_session(seed=1):
        assert torch.equal(torch.rand(2), first)  # seeded the same way again


def test_session_tears_down_after_an_error() -> None:
    with pytest.raises(KeyError), megatron_session(seed=1):
        raise KeyError("boom")
    assert not torch.distributed.is_initialized()


def test_sessions_do_not_nest() -> None:
    with megatron_session(seed=1):
        with pytest.raises(RuntimeError, match="already initialised"), megatron_session(seed=2):
            pass
        assert torch.distributed.is_initialized()
    assert not torch.distributed.is_initialized()
