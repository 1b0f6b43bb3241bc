"""The transformers backend: any Hugging Face causal LM (the training layer's
LlamaForCausalLM export), on the CPU or a CUDA GPU.

Batches are left-padded with explicit position ids, so that every row's last token sits at
the same index and one `logits_to_keep` slice holds the positions that are scored: the
full [batch, length, vocabulary] logits are never materialised (2 GB for a batch of eight
2,048-token Llama-2 prompts in fp32).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from evaluate.backends import OptionPlan, cut_at_stop, plan_options

__all__ = ["TransformersBackend", "resolve_device", "resolve_dtype"]

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """auto: CUDA when there is a GPU, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """auto: bf16 on a CUDA device that supports it, fp32 otherwise (the CPU)."""
    if dtype == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else torch.float32
    return getattr(torch, dtype)


class TransformersBackend:
    """`evaluate.backends.Backend` on a transformers model."""

    name = "transformers"

    def __init__(
        self,
        model_path: str,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        num_threads: int | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=self.dtype)
        self.model = model.to(self.device).eval()
        # Pads are masked out: any id will do where the tokenizer defines none.
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)
        self.context_length: int | None = getattr(model.config, "max_position_embeddings", None)
        self._warned_long = False

    def encode(self, text: str) -> list[int]:
        """Token ids as the model was trained on them: the tokenizer's BOS, if it adds one."""
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def score_options(
        self, prompts: Sequence[str], options: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """Summed log-probabilities of each option's distinguishing tokens (backends doc)."""
        plans = [plan_options(self.encode, p, o) for p, o in zip(prompts, options, strict=True)]
        # One forward pass per distinct input sequence: with single-token options, every
        # option of an item shares the prompt's.
        wanted: dict[tuple[int, ...], set[tuple[int, int]]] = {}
        for plan in (p for item in plans for p in item):
            wanted.setdefault(plan.sequence, set()).update(_targets(plan))
        self._warn_long([len(s) for s in wanted], 0)
        found = self._logprobs(wanted)
        return [
            [sum(found[plan.sequence][t] for t in _targets(plan)) for plan in item]
            for item in plans
        ]

    def generate(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float,
        max_tokens: int,
        seed: int,
        stop: Sequence[str],
    ) -> list[list[str]]:
        """Sampled (temperature > 0) or greedy continuations. Reproducible for the same
        prompts, seed and batch size: the seed is set once, before the first batch."""
        encoded = [self.encode(p) for p in prompts]
        self._warn_long([len(e) for e in encoded], max_tokens)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
            if temperature > 0
            else {"do_sample": False}
        )
        torch.manual_seed(seed)
        texts: dict[int, list[str]] = {}
        for batch in self._batches({i: tuple(e) for i, e in enumerate(encoded)}):
            ids, mask, _ = self._pad([encoded[i] for i in batch])
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_tokens,
                    num_return_sequences=n,
                    pad_token_id=self.pad_id,
                    stop_strings=list(stop) or None,
                    tokenizer=self.tokenizer,
                    **sampling,
                )
            new = out[:, ids.shape[1] :].tolist()
            for row, i in enumerate(batch):
                texts[i] = [
                    cut_at_stop(self.tokenizer.decode(seq, skip_special_tokens=True), stop)
                    for seq in new[row * n : (row + 1) * n]
                ]
        return [texts[i] for i in range(len(prompts))]

    def _logprobs(
        self, wanted: dict[tuple[int, ...], set[tuple[int, int]]]
    ) -> dict[tuple[int, ...], dict[tuple[int, int], float]]:
        """For each sequence, log p(token) at the positions asked for, as (offset from the
        last position, token id) -> log-probability."""
        found: dict[tuple[int, ...], dict[tuple[int, int], float]] = {}
        keys = dict(enumerate(wanted))
        for batch in self._batches(keys):
            seqs = [keys[i] for i in batch]
            ids, mask, positions = self._pad(seqs)
            keep = 1 + max(offset for s in seqs for offset, _ in wanted[s])
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    logits_to_keep=keep,
                ).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, seq in enumerate(seqs):
                found[seq] = {
                    (offset, token): float(logprobs[row, keep - 1 - offset, token])
                    for offset, token in wanted[seq]
                }
        return found

    def _batches(self, seqs: dict[int, tuple[int, ...]]) -> Iterator[list[int]]:
        """Keys in batches of similar length, longest first (an out-of-memory shows at once)."""
        order = sorted(seqs, key=lambda i: -len(seqs[i]))
        for start in range(0, len(order), self.batch_size):
            yield order[start : start + self.batch_size]

    def _pad(
        self, seqs: Sequence[Sequence[int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left-padded ids, attention mask and position ids (counted from each row's first
        real token, so padding does not shift the rotary positions)."""
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def _warn_long(self, lengths: Sequence[int], new_tokens: int) -> None:
        """Once per backend: a prompt longer than the model's context is not truncated (that
        would cut the instruction or the shots), so the reader should know."""
        if self.context_length is None or self._warned_long:
            return
        over = sum(1 for n in lengths if n + new_tokens > self.context_length)
        if over:
            self._warned_long = True
            log.warning(
                "%d of %d prompts (+%d new tokens) exceed the model's %d-token context;"
                " they are not truncated (warned once)",
                over,
                len(lengths),
                new_tokens,
                self.context_length,
            )


def _targets(plan: OptionPlan) -> Iterator[tuple[int, int]]:
    """(offset from the sequence's last position, token) of each scored token: target j is
    predicted at position len(context) + j - 1 of `plan.sequence`."""
    last = len(plan.targets) - 1
    return ((last - j, token) for j, token in enumerate(plan.targets))
