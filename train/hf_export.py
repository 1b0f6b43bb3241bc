"""Export a trained megatron-core GPT as a Hugging Face ``LlamaForCausalLM`` checkpoint.

megatron-core fuses weights that Llama keeps apart:

- ``linear_qkv`` holds, for each query group (key/value head) in turn, the rows of that
  group's query heads, then its key head, then its value head: shape
  ``[groups * (heads_per_group + 2) * head_dim, hidden]``.
- ``linear_fc1`` holds the SwiGLU gate rows, then the up rows (megatron-core's GLU applies
  the activation to the first half).

RoPE needs no permutation: megatron-core's non-interleaved rotary embedding rotates
halves, as Hugging Face's ``rotate_half`` does.

The export directory holds ``config.json``, ``model.safetensors`` (fp32), the tokenizer
(``tokenizer.json`` + ``tokenizer_config.json`` when the shards have a ``tokenizer.json``,
with the EOD token as ``eos_token``) and the shards' ``tokenizer_meta.json``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, PreTrainedTokenizerFast

from train.config import ModelConfig
from train.shards import TokenizerMeta

__all__ = ["export_hf", "hf_config", "megatron_to_hf_state_dict"]

log = logging.getLogger(__name__)


def hf_config(model: ModelConfig, vocab_size: int, seq_length: int, eod_id: int) -> LlamaConfig:
    """The ``LlamaConfig`` that computes what the megatron-core model computes."""
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=model.hidden_size,
        intermediate_size=model.ffn_hidden_size,
        num_hidden_layers=model.num_layers,
        num_attention_heads=model.num_attention_heads,
        num_key_value_heads=model.query_groups,
        hidden_act="silu",
        max_position_embeddings=seq_length,
        rms_norm_eps=model.norm_epsilon,
        rope_parameters={"rope_type": "default", "rope_theta": float(model.rotary_base)},
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
        initializer_range=model.init_method_std,
        # The corpus ends documents with EOD and has no BOS.
        bos_token_id=None,
        eos_token_id=eod_id,
        pad_token_id=None,
        dtype="float32",
    )


def megatron_to_hf_state_dict(
    state: Mapping[str, torch.Tensor], model: ModelConfig
) -> dict[str, torch.Tensor]:
    """Rename and split megatron-core ``GPTModel`` weights into HF Llama's."""
    heads, groups = model.num_attention_heads, model.query_groups
    head_dim = model.hidden_size // heads
    per_group = heads // groups
    out = {
        "model.embed_tokens.weight": state["embedding.word_embeddings.weight"],
        "model.norm.weight": state["decoder.final_layernorm.weight"],
        "lm_head.weight": state["output_layer.weight"],
    }
    for layer in range(model.num_layers):
        src, dst = f"decoder.layers.{layer}.", f"model.layers.{layer}."
        qkv = state[src + "self_attention.linear_qkv.weight"]
        qkv = qkv.view(groups, per_group + 2, head_dim, model.hidden_size)
        gate, up = state[src + "mlp.linear_fc1.weight"].chunk(2, dim=0)
        out |= {
            dst + "input_layernorm.weight": state[src + "input_layernorm.weight"],
            dst + "self_attn.q_proj.weight": qkv[:, :per_group].reshape(-1, model.hidden_size),
            dst + "self_attn.k_proj.weight": qkv[:, per_group].reshape(-1, model.hidden_size),
            dst + "self_attn.v_proj.weight": qkv[:, per_group + 1].reshape(-1, model.hidden_size),
            dst + "self_attn.o_proj.weight": state[src + "self_attention.linear_proj.weight"],
            dst + "post_attention_layernorm.weight": state[src + "pre_mlp_layernorm.weight"],
            dst + "mlp.gate_proj.weight": gate,
            dst + "mlp.up_proj.weight": up,
            dst + "mlp.down_proj.weight": state[src + "mlp.linear_fc2.weight"],
        }
    return {
        name: tensor.detach().to("cpu", torch.float32).contiguous() for name, tensor in out.items()
    }


def _save_tokenizer(meta: TokenizerMeta, out_dir: Path) -> None:
    shutil.copy2(meta.directory / "tokenizer_meta.json", out_dir / "tokenizer_meta.json")
    if meta.tokenizer_json is None:
        # A bare SentencePiece model cannot express the ids Megatron's wrapper appends
        # (<CLS> <SEP> <EOD> <MASK> <PAD>): ship it with the meta for the reader to wrap.
        if meta.sentencepiece_model is not None:
            shutil.copy2(meta.sentencepiece_model, out_dir / "tokenizer.model")
        log.warning("%s has no tokenizer.json: the export has no HF tokenizer", meta.directory)
        return
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(meta.tokenizer_json))
    eos = tokenizer.convert_ids_to_tokens(meta.eod_id)
    if eos is None:
        raise ValueError(f"eod_id {meta.eod_id} is not a token of {meta.tokenizer_json}")
    tokenizer.eos_token = eos
    tokenizer.save_pretrained(out_dir)


def export_hf(
    state: Mapping[str, torch.Tensor],
    model: ModelConfig,
    meta: TokenizerMeta,
    seq_length: int,
    out_dir: Path,
) -> Path:
    """Write the HF checkpoint of megatron-core weights ``state`` to ``out_dir``.

    Built beside ``out_dir`` and swapped in at the end, so a reader never sees half of it.
    """
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    hf_config(model, meta.vocab_size, seq_length, meta.eod_id).save_pretrained(tmp)
    save_file(megatron_to_hf_state_dict(state, model), tmp / "model.safetensors", {"format": "pt"})
    _save_tokenizer(meta, tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
