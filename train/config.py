"""The pretraining run configuration: YAML validated by pydantic.

Every section rejects unknown keys, and errors name the offending key by its dotted path
(``model.hidden_size: ...``), so a typo in a config file fails loudly instead of silently
falling back to a default.

Relative paths (``shards``, ``out_dir``) are taken relative to the working directory, as
``make pretrain`` runs from the repository root. The run directory is
``<out_dir>/<run_name>``; the Hugging Face export is always ``<run_dir>/hf``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from corpus.yaml_config import ConfigError, load_model, parse_model

__all__ = [
    "ConfigError",
    "ModelConfig",
    "OptimizerConfig",
    "ParallelConfig",
    "PretrainConfig",
    "TrainingConfig",
    "load_config",
    "parse_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """A Llama-style decoder: RoPE, RMSNorm, SwiGLU, no biases, untied embeddings.

    The vocabulary size is not here: it comes from the shards' tokenizer meta.
    """

    num_layers: PositiveInt
    hidden_size: PositiveInt
    num_attention_heads: PositiveInt
    # None means one key/value head per query head (Llama-2 7B); fewer is GQA (70B).
    num_query_groups: PositiveInt | None = None
    ffn_hidden_size: PositiveInt
    rotary_base: PositiveFloat = 10000.0
    norm_epsilon: PositiveFloat = 1e-5
    init_method_std: PositiveFloat = 0.02

    @model_validator(mode="after")
    def _heads_divide(self) -> Self:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.query_groups:
            raise ValueError("num_attention_heads must be a multiple of num_query_groups")
        return self

    @property
    def query_groups(self) -> int:
        """The number of key/value heads."""
        return self.num_query_groups or self.num_attention_heads


class TrainingConfig(_Strict):
    """Batching, schedule lengths and precision."""

    seq_length: PositiveInt
    micro_batch_size: PositiveInt
    global_batch_size: PositiveInt
    train_iters: PositiveInt
    # Validation every eval_interval iterations (and at step 0 and at the end) on a fixed
    # set of eval_iters global batches of the valid split, so the points are comparable.
    eval_interval: PositiveInt
    eval_iters: PositiveInt = 1
    save_interval: PositiveInt
    log_interval: PositiveInt = 10
    # auto: bf16 on a CUDA device that supports it, fp32 otherwise (the CPU).
    precision: Literal["auto", "bf16", "fp32"] = "auto"


class OptimizerConfig(_Strict):
    """AdamW and its learning-rate schedule; the defaults are MediTron's."""

    lr: PositiveFloat
    min_lr: NonNegativeFloat = 0.0
    warmup_iters: NonNegativeInt = 2000
    decay_style: Literal["cosine", "linear", "constant"] = "cosine"
    # None: decay over the whole run (train_iters).
    decay_iters: PositiveInt | None = None
    weight_decay: NonNegativeFloat = 0.1
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0)
    adam_beta2: float = Field(0.95, ge=0.0, lt=1.0)
    adam_eps: PositiveFloat = 1e-5
    clip_grad: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _min_below_peak(self) -> Self:
        if self.min_lr > self.lr:
            raise ValueError("min_lr must not exceed lr")
        return self


class ParallelConfig(_Strict):
    """Parallelism of a real Megatron-LM run; the CPU trainer runs only 1/1/1."""

    tensor: PositiveInt = 1
    pipeline: PositiveInt = 1
    data: PositiveInt = 1
    gpus_per_node: PositiveInt = 8
    sequence_parallel: bool = False
    distributed_optimizer: bool = False

    @property
    def world_size(self) -> int:
        """GPUs in the whole job."""
        return self.tensor * self.pipeline * self.data


class LaunchConfig(_Strict):
    """Where Megatron-LM lives on the cluster, for ``train.launch``."""

    megatron_lm_dir: str = "Megatron-LM"
    master_port: int = Field(6000, ge=1, le=65535)
    # A Megatron checkpoint of the starting weights (Llama-2, converted); Megatron-LM
    # loads it with finetune semantics only while the run's own --load has no checkpoint.
    pretrained_checkpoint: str | None = None


class PretrainConfig(_Strict):
    """A whole pretraining run."""

    run_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    shards: Path
    out_dir: Path = Path("checkpoints")
    seed: int = 1234
    model: ModelConfig
    training: TrainingConfig
    optimizer: OptimizerConfig
    parallel: ParallelConfig = ParallelConfig()
    launch: LaunchConfig = LaunchConfig()

    @model_validator(mode="after")
    def _batches_and_schedule(self) -> Self:
        per_step = self.training.micro_batch_size * self.parallel.data
        if self.training.global_batch_size % per_step:
            raise ValueError(
                "training.global_batch_size must be a multiple of "
                "training.micro_batch_size * parallel.data"
            )
        decay_iters = self.optimizer.decay_iters or self.training.train_iters
        if self.optimizer.warmup_iters >= decay_iters:
            raise ValueError("optimizer.warmup_iters must be below the decay iterations")
        return self

    @property
    def run_dir(self) -> Path:
        """``<out_dir>/<run_name>``: checkpoints, loss log, plot."""
        return self.out_dir / self.run_name

    @property
    def hf_dir(self) -> Path:
        """The Hugging Face export that the evaluation layer reads."""
        return self.run_dir / "hf"

    @property
    def micro_batches_per_step(self) -> int:
        """Gradient accumulation steps per iteration (per data-parallel rank)."""
        return self.training.global_batch_size // (
            self.training.micro_batch_size * self.parallel.data
        )

    @property
    def decay_iters(self) -> int:
        """Iterations over which the learning rate decays."""
        return self.optimizer.decay_iters or self.training.train_iters


def parse_config(raw: Any, source: str = "<config>") -> PretrainConfig:
    """Validate an already-parsed mapping; ``source`` names it in error messages."""
    return parse_model(PretrainConfig, raw, source)


def load_config(path: str | os.PathLike[str]) -> PretrainConfig:
    """Read and validate a YAML run configuration."""
    return load_model(PretrainConfig, path)
