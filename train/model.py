"""The Llama-style megatron-core ``GPTModel`` the training layer trains and exports."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from megatron.core.models.gpt import GPTModel
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
from megatron.core.transformer.transformer_config import TransformerConfig

from train.config import ModelConfig

__all__ = ["build_model", "causal_mask", "transformer_config"]


def transformer_config(model: ModelConfig, device: torch.device) -> TransformerConfig:
    """Llama-2's choices: RMSNorm, SwiGLU, no biases, no dropout; fp32 parameters.

    Parameters stay fp32 on every device: bf16 comes from autocast in the training loop,
    so the optimizer updates fp32 weights (the role of Megatron's fp32 main params).
    """
    return TransformerConfig(
        num_layers=model.num_layers,
        hidden_size=model.hidden_size,
        num_attention_heads=model.num_attention_heads,
        num_query_groups=model.query_groups,
        ffn_hidden_size=model.ffn_hidden_size,
        normalization="RMSNorm",
        layernorm_epsilon=model.norm_epsilon,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=model.init_method_std,
        # Without it megatron-core allocates parameters on torch.cuda.current_device().
        use_cpu_initialization=device.type == "cpu",
    )


def build_model(
    model: ModelConfig, vocab_size: int, seq_length: int, device: torch.device
) -> GPTModel:
    """A ``GPTModel`` with the local (non-Transformer-Engine) layer spec and RoPE.

    Embeddings and output layer are untied, as in Llama-2; the HF export maps both.
    Needs a ``megatron_session``.
    """
    gpt = GPTModel(
        config=transformer_config(model, device),
        transformer_layer_spec=get_gpt_layer_local_spec(normalization="RMSNorm"),
        vocab_size=vocab_size,
        max_sequence_length=seq_length,
        share_embeddings_and_output_weights=False,
        position_embedding_type="rope",
        rotary_base=model.rotary_base,
    )
    return gpt.to(device)


def causal_mask(batch: int, seq_length: int, device: torch.device) -> torch.Tensor:
    """megatron-core's attention mask, ``True`` where a position must not attend.

    Passed explicitly: without a mask megatron-core builds its default causal mask on CUDA.
    """
    mask = torch.ones(seq_length, seq_length, dtype=torch.bool, device=device).triu(1)
    return mask.expand(batch, 1, seq_length, seq_length)
