"""The model backends on a real tiny Llama checkpoint on the CPU: the transformers backend
end to end, its top-token log-probabilities against a direct forward pass, and the vllm
adapter's request/response mapping through a fake `vllm` module (vllm cannot be installed
here: it pins its own torch, and needs a GPU)."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from corpus.benchmarks import load_benchmarks
from corpus.tokenizer import TokenizerConfig, train_bpe
from evaluate.config import parse_config
from evaluate.harness import evaluate
from evaluate.hf_backend import TransformersBackend
from evaluate.prompts import build_prompt, continuation
from tests.conftest import FIXTURES, SAMPLE

BENCHMARKS = SAMPLE / "benchmarks"
LABELS = ["A", "B", "C", "D", "E", "yes", "no", "maybe"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with a byte-level BPE trained on benchmark text, saved as the
    training layer exports it (LlamaForCausalLM + tokenizer.json, EOD as eos)."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny_hf")
    texts = [
        line
        for path in sorted((FIXTURES / "qa_benchmarks" / "medqa_usmle").glob("*.jsonl"))
        for line in path.read_text().splitlines()[:300]
    ]
    # Repeated answer lines make " A" … " maybe" single tokens, as in Llama's vocabulary.
    texts += [" ".join(f"The answer is: {label}" for label in LABELS)] * 300
    tokenizer = train_bpe(texts, TokenizerConfig(kind="bpe", vocab_size=600, markers=False))
    tokenizer.save(out)
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(out / "tokenizer.json"), eos_token=tokenizer.eod_token
    )
    hf_tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=88,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=None,
        eos_token_id=tokenizer.eod_id,
        pad_token_id=None,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> TransformersBackend:
    return TransformersBackend(str(tiny_model), device="cpu", batch_size=3, num_threads=1)


def test_transformers_end_to_end(
    tiny_model: Path, backend: TransformersBackend, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = parse_config(
        {
            "run_name": "tiny-cpu",
            "model": str(tiny_model),
            "benchmarks_dir": str(BENCHMARKS),
            "benchmarks": ["mmlu_medical", "pubmedqa", "medqa"],
            "modes": ["top_token", "cot", "sc_cot"],
            "shots": 1,
            "seeds": [1234, 432],
            "device": "cpu",
            "cot": {"max_tokens": 12},
            "self_consistency": {"samples": 3, "temperature": 0.8, "max_tokens": 12},
            "output_dir": str(tmp_path),
        }
    )
    result = evaluate(config, backend)
    # Two items per benchmark in the sample, no train split: one shot set aside per seed.
    assert len(result.predictions) == 3 * 2 * 3
    top = [p for p in result.predictions if p["mode"] == "top_token"]

    # The same log-probabilities from a direct, unbatched forward pass of the same model.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    items = {i.item_id: i for i in load_benchmarks(BENCHMARKS).items}
    for record in top:
        item = items[record["item_id"]]
        prompt = build_prompt(item, [items[s] for s in record["shot_ids"]])
        prompt_ids = tokenizer(prompt)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([prompt_ids])).logits[0, -1]
        logprobs = torch.log_softmax(logits, dim=-1)
        expected = {}
        for label in item.options:
            ids = tokenizer(prompt + " " + label)["input_ids"]
            assert ids[: len(prompt_ids)] == prompt_ids and len(ids) == len(prompt_ids) + 1
            expected[label] = float(logprobs[ids[-1]])
        assert record["option_logprobs"].keys() == expected.keys()
        for label, value in expected.items():
            assert record["option_logprobs"][label] == pytest.approx(value, abs=1e-4)
        assert record["prediction"] == max(expected, key=expected.__getitem__)
        assert record["correct"] == (record["prediction"] == item.answer)

    for record in result.predictions:
        if record["mode"] != "top_token":
            assert len(record["outputs"]) == (3 if record["mode"] == "sc_cot" else 1)
            assert all(isinstance(t, str) for t in record["outputs"])
    lines = (config.run_dir / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["item_id"] for line in lines] == [
        p["item_id"] for p in result.predictions
    ]


def test_generation_is_seeded(backend: TransformersBackend) -> None:
    prompts = ["Question: Which drug?\nAnswer:", "Context: x\nQuestion: Is it?\nAnswer:"]
    a = backend.generate(prompts, n=2, temperature=0.8, max_tokens=8, seed=5, stop=())
    b = backend.generate(prompts, n=2, temperature=0.8, max_tokens=8, seed=5, stop=())
    c = backend.generate(prompts, n=2, temperature=0.8, max_tokens=8, seed=6, stop=())
    assert a == b and a != c
    assert [len(x) for x in a] == [2, 2]
    greedy = backend.generate(prompts, n=1, temperature=0.0, max_tokens=8, seed=1, stop=())
    assert greedy == backend.generate(prompts, n=1, temperature=0.0, max_tokens=8, seed=2, stop=())


def test_generation_stops(backend: TransformersBackend) -> None:
    """Text after a stop string is cut: found by generating, then asking again with the
    generated text's second character as the stop."""
    prompt = ["Question: Which drug?\nAnswer:"]
    text = backend.generate(prompt, n=1, temperature=0.0, max_tokens=10, seed=1, stop=())[0][0]
    stop = text[1:3]
    assert stop and text.index(stop) >= 1
    cut = backend.generate(prompt, n=1, temperature=0.0, max_tokens=10, seed=1, stop=[stop])
    assert cut[0][0] == text[: text.index(stop)]


def test_padding_does_not_change_scores(backend: TransformersBackend) -> None:
    prompts = ["Q: a?\nThe answer is:", "Question: a much longer question, yes?\nThe answer is:"]
    options = [[continuation(x) for x in "ABCD"], [continuation(x) for x in ("yes", "no")]]
    together = backend.score_options(prompts, options)
    alone = [backend.score_options([p], [o])[0] for p, o in zip(prompts, options, strict=True)]
    for x, y in zip(together, alone, strict=True):
        assert x == pytest.approx(y, abs=1e-5)


# --- vllm, faked ------------------------------------------------------------------------------


@dataclass
class _Logprob:
    logprob: float


@dataclass
class _Completion:
    text: str


@dataclass
class _RequestOutput:
    prompt_logprobs: list[dict[int, _Logprob] | None] | None
    outputs: list[_Completion]


class _SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def fake_vllm(model_path: Path) -> types.ModuleType:
    """A `vllm` module whose LLM answers prompt-logprob requests from the real tiny model
    (as vllm would: position 0 None, then each prompt token's log-probability) and
    generation requests with text naming the request."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    module = types.ModuleType("vllm")

    class LLM:
        instances: ClassVar[list[LLM]] = []

        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs
            self.requests: list[tuple[list[Any], _SamplingParams]] = []
            LLM.instances.append(self)

        def get_tokenizer(self) -> Any:
            return AutoTokenizer.from_pretrained(self.kwargs["tokenizer"])

        def generate(
            self, prompts: Sequence[Any], params: _SamplingParams, use_tqdm: bool = True
        ) -> list[_RequestOutput]:
            self.requests.append((list(prompts), params))
            if params.kwargs.get("prompt_logprobs") is not None:
                return [self._prompt_logprobs(p["prompt_token_ids"]) for p in prompts]
            n = params.kwargs["n"]
            return [
                _RequestOutput(None, [_Completion(f"{p[-12:]}|{k}") for k in range(n)])
                for p in prompts
            ]

        @staticmethod
        def _prompt_logprobs(ids: list[int]) -> _RequestOutput:
            with torch.no_grad():
                logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
            per_token = [None] + [
                {ids[i]: _Logprob(float(logprobs[i - 1, ids[i]]))} for i in range(1, len(ids))
            ]
            return _RequestOutput(per_token, [_Completion("")])

    module.LLM = LLM  # type: ignore[attr-defined]
    module.SamplingParams = _SamplingParams  # type: ignore[attr-defined]
    return module


def test_vllm_adapter_mapping(
    tiny_model: Path, backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    vllm = fake_vllm(tiny_model)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    from evaluate.vllm_backend import VllmBackend

    adapter = VllmBackend(str(tiny_model), dtype="bfloat16", tensor_parallel_size=2)
    llm = vllm.LLM.instances[-1]
    assert llm.kwargs["model"] == str(tiny_model) and llm.kwargs["tensor_parallel_size"] == 2
    assert llm.kwargs["enable_prefix_caching"] is False and llm.kwargs["dtype"] == "bfloat16"

    # Scores: the same numbers as the transformers backend, from token-id requests.
    prompts = ["Q: a?\nThe answer is:", "Question: longer one, yes?\nThe answer is:"]
    options = [[continuation(x) for x in "ABCD"], [continuation(x) for x in ("yes", "no")]]
    scores = adapter.score_options(prompts, options)
    for got, want in zip(scores, backend.score_options(prompts, options), strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    sent, params = llm.requests[-1]
    assert params.kwargs == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
    # One request per distinct sequence (single-token options: prompt + option).
    assert len(sent) == 6 and len({tuple(r["prompt_token_ids"]) for r in sent}) == 6
    encoded = adapter.encode(prompts[0])
    assert sent[0]["prompt_token_ids"][: len(encoded)] == encoded

    # Generation: per-prompt texts in request order, with the sampling settings passed on.
    texts = adapter.generate(prompts, n=3, temperature=0.8, max_tokens=7, seed=432, stop=["\nQ:"])
    assert texts == [[f"{p[-12:]}|{k}" for k in range(3)] for p in prompts]
    sent, params = llm.requests[-1]
    assert sent == prompts
    assert params.kwargs == {
        "n": 3,
        "temperature": 0.8,
        "top_p": 1.0,
        "top_k": -1,
        "max_tokens": 7,
        "seed": 432,
        "stop": ["\nQ:"],
    }
