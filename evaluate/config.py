"""The evaluation run configuration: YAML validated by pydantic.

Every section rejects unknown keys, and errors name the offending key by its dotted path
(``self_consistency.samples: ...``), as in ``train.config``. Relative paths are taken
relative to the working directory, as ``make evaluate`` runs from the repository root; the
default model is what ``make pretrain`` exports (``configs/pretrain_tiny.yaml``: run
``tiny``, ``checkpoints/tiny/hf``).

Outputs go to ``<output_dir>/<run_name>``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from corpus.benchmarks import (
    MEDMCQA,
    MEDQA,
    MEDQA_4OPTIONS,
    MMLU_MEDICAL,
    MMLU_MEDICAL_SUBJECTS,
    PUBMEDQA,
)
from corpus.yaml_config import ConfigError, load_model, parse_model

__all__ = [
    "DEFAULT_BENCHMARKS",
    "MEDITRON_SEEDS",
    "ConfigError",
    "EvalConfig",
    "GenerationConfig",
    "SelfConsistencyConfig",
    "VllmConfig",
    "load_config",
    "parse_config",
]

# MediTron's table order: MMLU-Med / PubMedQA / MedMCQA / MedQA / MedQA-4.
DEFAULT_BENCHMARKS = (MMLU_MEDICAL, PUBMEDQA, MEDMCQA, MEDQA, MEDQA_4OPTIONS)
MEDITRON_SEEDS = (1234, 432, 32)

# The same modes as schemas.eval.MODES (a test checks): not imported from there, because
# schemas import pyspark, which a vllm environment need not have.
Mode = Literal["top_token", "cot", "sc_cot"]
Benchmark = Literal["mmlu_medical", "pubmedqa", "medmcqa", "medqa", "medqa_4options"]
Subject = Literal[MMLU_MEDICAL_SUBJECTS]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerationConfig(_Strict):
    """Greedy chain-of-thought generation."""

    max_tokens: PositiveInt = 512


class SelfConsistencyConfig(_Strict):
    """Self-consistency CoT: N sampled chains, majority vote over the parseable answers.
    MediTron: 5 samples at T=0.8."""

    samples: PositiveInt = 5
    temperature: PositiveFloat = 0.8
    max_tokens: PositiveInt = 512


class VllmConfig(_Strict):
    """Settings passed to ``vllm.LLM`` (GPU only, its own environment)."""

    tensor_parallel_size: PositiveInt = 1
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    # None: the model's own context length.
    max_model_len: PositiveInt | None = None
    # Speeds up CoT generation over prompts that share their shots; off by default, as
    # cached prefixes have returned stale prompt logprobs (evaluate/vllm_backend.py).
    prefix_caching: bool = False


class EvalConfig(_Strict):
    """A whole evaluation run."""

    run_name: str = Field("tiny", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: Path = Path("checkpoints/tiny/hf")
    # The name in the tables; None: the training run's name (``checkpoints/<run>/hf`` ->
    # ``<run>``), else the directory's name.
    model_name: str | None = None
    benchmarks_dir: Path = Path("sample/benchmarks")
    benchmarks: tuple[Benchmark, ...] = DEFAULT_BENCHMARKS
    mmlu_subjects: tuple[Subject, ...] = MMLU_MEDICAL_SUBJECTS
    # Items scored per benchmark, a seeded random subset (None: all), so that a CPU run
    # finishes in minutes; the subset is the same for every mode, seed and model.
    max_items: PositiveInt | None = None
    subset_seed: int = 0
    modes: tuple[Mode, ...] = ("top_token",)
    shots: NonNegativeInt = 3
    seeds: tuple[int, ...] = MEDITRON_SEEDS
    # chatml: the prompt wrapped in ChatML turns, for fine-tuned (chat) models.
    prompt_format: Literal["plain", "chatml"] = "plain"
    backend: Literal["transformers", "vllm"] = "transformers"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: bf16 on a CUDA device that supports it, fp32 otherwise (the CPU).
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: PositiveInt = 8
    # CPU threads for torch (None: torch's default).
    num_threads: PositiveInt | None = None
    cot: GenerationConfig = GenerationConfig()
    self_consistency: SelfConsistencyConfig = SelfConsistencyConfig()
    vllm: VllmConfig = VllmConfig()
    output_dir: Path = Path("eval_results")
    # Lakehouse root for eval/scores and eval/predictions; None: no lakehouse write.
    lakehouse: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in ("benchmarks", "mmlu_subjects", "modes", "seeds"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"{name} must not be empty")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values")
        if self.backend == "vllm" and self.device == "cpu":
            raise ValueError("backend vllm runs on a GPU only: use device auto or cuda")
        return self

    def updated(self, **changes: Any) -> EvalConfig:
        """A validated copy with `changes` applied (command-line overrides)."""
        return EvalConfig.model_validate(self.model_dump() | changes)

    @property
    def run_dir(self) -> Path:
        """``<output_dir>/<run_name>``: predictions, results JSON and table."""
        return self.output_dir / self.run_name

    @property
    def resolved_model_name(self) -> str:
        """``model_name``, or the training run's name read off the checkpoint path."""
        if self.model_name:
            return self.model_name
        path = Path(os.path.normpath(self.model))
        return path.parent.name if path.name == "hf" and path.parent.name else path.name


def parse_config(raw: Any, source: str = "<config>") -> EvalConfig:
    """Validate an already-parsed mapping; ``source`` names it in error messages."""
    return parse_model(EvalConfig, raw, source)


def load_config(path: str | os.PathLike[str]) -> EvalConfig:
    """Read and validate a YAML evaluation configuration."""
    return load_model(EvalConfig, path)
