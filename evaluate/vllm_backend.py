"""The vllm backend: a thin adapter over `vllm.LLM` for GPU runs.

vllm pins its own torch, numpy and transformers (STACK.md: vllm 0.33 wants torch 2.14,
numpy < 2.4, transformers < 5.21), so it lives in its own environment and is imported
inside this adapter only, never at a module's top level: the rest of the package, and the
transformers backend, import without it.

Option scores use the plans of `evaluate.backends.plan_options`, as the transformers
backend does: each distinct (context + targets) token sequence is sent as a token prompt
with `prompt_logprobs=0`, which returns the log-probability of every prompt token given
the ones before it (exact, unlike the top-k `logprobs` of generated tokens, which need not
include every option). Prefix caching is off by default: vllm recomputes prompt logprobs
rather than reading them from the cache, and cached prefixes have returned stale prompt
logprobs (vllm-project/vllm#42019, fix in PR #42245, open at the time of writing).
Generation sends every prompt with the same seeded `SamplingParams`: vllm seeds each request
on its own, so samples do not depend on batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluate.backends import OptionPlan, plan_options

__all__ = ["VllmBackend"]


class VllmBackend:
    """`evaluate.backends.Backend` on `vllm.LLM`."""

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        prefix_caching: bool = False,
    ) -> None:
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model_path,
            tokenizer=model_path,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=prefix_caching,
        )
        self.tokenizer = self.llm.get_tokenizer()

    def encode(self, text: str) -> list[int]:
        """Token ids as vllm itself tokenises a text prompt (special tokens included)."""
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def score_options(
        self, prompts: Sequence[str], options: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Summed log-probabilities of each option's distinguishing tokens (backends doc)."""
        plans = [plan_options(self.encode, p, o) for p, o in zip(prompts, options, strict=True)]
        sequences = list(dict.fromkeys(p.context + p.targets for item in plans for p in item))
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(s)} for s in sequences], params, use_tqdm=False
        )
        logprobs = {s: out.prompt_logprobs for s, out in zip(sequences, outputs, strict=True)}
        return [[_score(p, logprobs[p.context + p.targets]) for p in item] for item in plans]

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float,
        max_tokens: int,
        seed: int,
        stop: Sequence[str],
    ) -> list[list[str]]:
        """`n` samples per prompt; vllm cuts each at the first stop string."""
        params = self._vllm.SamplingParams(
            n=n,
            temperature=temperature,
            top_p=1.0,
            top_k=-1,
            max_tokens=max_tokens,
            seed=seed,
            stop=list(stop),
        )
        outputs = self.llm.generate(list(prompts), params, use_tqdm=False)
        return [[c.text for c in out.outputs] for out in outputs]


def _score(plan: OptionPlan, prompt_logprobs: Sequence[dict[int, Any] | None]) -> float:
    """Sum of the targets' log-probabilities: `prompt_logprobs[i]` maps the token at
    position i (and, with k > 0, the top k) to a `Logprob` given the tokens before it."""
    start = len(plan.context)
    return sum(prompt_logprobs[start + j][token].logprob for j, token in enumerate(plan.targets))
