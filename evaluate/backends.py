"""The model behind the harness: one small interface, two implementations.

`score_options(prompts, options)` returns, per prompt, the log-probability of each option's
continuation after the prompt; `generate(prompts, n, temperature, max_tokens, seed, stop)`
returns n texts per prompt. Prompts, continuations and answer parsing are the harness's;
a backend only computes. The transformers backend (`evaluate.hf_backend`, CPU or GPU) and
the vllm one (`evaluate.vllm_backend`, GPU, its own environment) share `plan_options`, so
both score exactly the same tokens.

What is scored (the top-token choice): the option's first token after the prompt, taken
from the tokenization of prompt + continuation, so that a tokenizer that merges across the
boundary is handled. Where two options share their first token, tokens are added until
each option differs from every other (its distinguishing prefix), and the option's score
is the sum of their log-probabilities. For the letters and Llama's / byte-level BPE's
" yes", " no", " maybe" that is one token each: the log-probability of the option's first
token at the answer position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from evaluate.config import EvalConfig

__all__ = ["Backend", "OptionPlan", "cut_at_stop", "make_backend", "plan_options"]


class Backend(Protocol):
    """What the harness needs from a model."""

    name: str

    def score_options(
        self, prompts: Sequence[str], options: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Log-probability of each continuation in `options[i]` after `prompts[i]`."""
        ...

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float,
        max_tokens: int,
        seed: int,
        stop: Sequence[str],
    ) -> list[list[str]]:
        """`n` continuations of each prompt (greedy when temperature is 0), each cut before
        the first of `stop`."""
        ...


@dataclass(frozen=True)
class OptionPlan:
    """The tokens that score one option: log p(targets | context) summed."""

    context: tuple[int, ...]
    targets: tuple[int, ...]

    @property
    def sequence(self) -> tuple[int, ...]:
        """The input a forward pass needs: the context and all targets but the last."""
        return self.context + self.targets[:-1]


def plan_options(
    encode: Callable[[str], list[int]], prompt: str, continuations: Sequence[str]
) -> list[OptionPlan]:
    """What to score for each continuation of `prompt` (module doc): `encode` is the
    model's tokenizer, special tokens (a BOS) included."""
    prompt_ids = encode(prompt)
    splits = []
    for text in continuations:
        full = encode(prompt + text)
        shared = _common_prefix(prompt_ids, full)
        if shared == len(full):
            raise ValueError(f"continuation {text!r} adds no token to the prompt")
        if shared == 0:
            # Nothing precedes the first target: a tokenizer without BOS that re-tokenised
            # the whole prompt differently.
            raise ValueError(f"prompt and continuation {text!r} share no leading token")
        splits.append((tuple(full[:shared]), tuple(full[shared:])))
    plans = []
    for i, (context, rest) in enumerate(splits):
        overlap = max(
            (_common_prefix(rest, other) for j, (_, other) in enumerate(splits) if j != i),
            default=0,
        )
        plans.append(OptionPlan(context, rest[: min(len(rest), overlap + 1)]))
    return plans


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first stop string."""
    ends = [i for s in stop if (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text


def make_backend(config: EvalConfig) -> Backend:
    """The backend a config names; each is imported here, so that torch and vllm load only
    when asked for."""
    if config.backend == "vllm":
        from evaluate.vllm_backend import VllmBackend

        return VllmBackend(
            str(config.model),
            dtype=config.dtype,
            tensor_parallel_size=config.vllm.tensor_parallel_size,
            gpu_memory_utilization=config.vllm.gpu_memory_utilization,
            max_model_len=config.vllm.max_model_len,
            prefix_caching=config.vllm.prefix_caching,
        )
    from evaluate.hf_backend import TransformersBackend

    return TransformersBackend(
        str(config.model),
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        num_threads=config.num_threads,
    )


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
