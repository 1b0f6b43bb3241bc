"""`make evaluate`: score a checkpoint on the medical benchmarks, MediTron's way, fixed.

    python -m evaluate.harness --config configs/evaluate_sample.yaml [--model PATH]
        [--lakehouse DIR]

For each mode and seed, every scored item gets a prompt (`evaluate.prompts`) with that
seed's shots (`evaluate.items`), the backend answers all prompts of the seed in one call,
and each answer is matched to its item by the item's id (position in the request list,
never by prompt text: two items may share a prompt).

- top_token: the option with the highest log-probability at the answer position,
  computed from the model's distribution (`evaluate.backends`), never read off text; a tie
  goes to the option listed first.
- cot: one greedy chain of thought, its answer read by `evaluate.parsing`.
- sc_cot: N sampled chains; the majority over the parseable answers (unparseable samples do
  not vote); an item is unparseable only when no sample is parseable.

Deterministic modes with zero shots run once (the first seed): their prompts do not depend
on the seed. Writes to `<output_dir>/<run_name>`: predictions.jsonl (one line per item,
mode and seed), results.json (config, counts, timings, scores) and results.md; with a
lakehouse, appends the same rows to eval/scores and eval/predictions.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from corpus.benchmarks import MMLU_MEDICAL, BenchmarkItem
from evaluate.backends import Backend, make_backend
from evaluate.config import ConfigError, EvalConfig, load_config
from evaluate.items import SET_ASIDE, BenchmarkPool, group_of, load_pools
from evaluate.parsing import majority_vote, parse_answer
from evaluate.prompts import build_prompt, continuation, stop_strings
from evaluate.report import COLUMNS, markdown_table, score_rows

__all__ = ["EvalResult", "evaluate", "main", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    """What a run wrote: rows of eval/scores and eval/predictions, and the files."""

    run_id: str
    run_dir: Path
    scores: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    table: str
    missing: list[str]
    timings: dict[str, float]

    def score(
        self, benchmark: str, mode: str, subject: str | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """One score row (seed None: the mean over seeds)."""
        key = (benchmark, mode, subject, seed)
        for row in self.scores:
            if (row["benchmark"], row["mode"], row["subject"], row["seed"]) == key:
                return row
        raise KeyError(key)


@dataclass(frozen=True)
class _Request:
    item: BenchmarkItem
    prompt: str
    shot_ids: tuple[str, ...]


def evaluate(config: EvalConfig, backend: Backend | None = None) -> EvalResult:
    """Run the evaluation `config` describes; `backend` replaces the configured one (tests)."""
    pools, missing = load_pools(
        config.benchmarks_dir,
        config.benchmarks,
        config.mmlu_subjects,
        config.max_items,
        config.subset_seed,
    )
    if not pools:
        raise ValueError(f"no benchmark items under {config.benchmarks_dir} (missing: {missing})")
    run_id = uuid.uuid4().hex
    started = time.perf_counter()
    backend = backend or make_backend(config)
    timings = {"load_model_s": time.perf_counter() - started}
    predictions: list[dict[str, Any]] = []
    for mode in config.modes:
        for seed in _seeds(config, mode):
            requests = _requests(pools, config, mode, seed)
            began = time.perf_counter()
            records = _answer(mode, requests, backend, config, seed)
            elapsed = time.perf_counter() - began
            timings[f"{mode}:{seed}_s"] = elapsed
            log.info(
                "%s seed %d: %d items in %.1f s (%.2f items/s)",
                mode,
                seed,
                len(records),
                elapsed,
                len(records) / elapsed if elapsed else float("inf"),
            )
            predictions.extend(records)
    created = datetime.now(UTC)
    common = {
        "run_id": run_id,
        "model": config.resolved_model_name,
        "model_path": str(config.model),
        "shots": config.shots,
        "backend": backend.name,
        "prompt_format": config.prompt_format,
        "created_at": created,
    }
    run_columns = {k: common[k] for k in ("run_id", "model", "shots", "created_at")}
    predictions = [run_columns | record for record in predictions]
    sources = {b: pool.shot_source(config.shots) for b, pool in pools.items()}
    scores = score_rows(predictions, common, sources)
    notes = _notes(pools, missing, config)
    table = markdown_table(scores, _ran_seeds(config), notes)
    result = EvalResult(run_id, config.run_dir, scores, predictions, table, missing, timings)
    _write(result, config, pools)
    if config.lakehouse:
        from evaluate.lakehouse import write_lakehouse

        write_lakehouse(config.lakehouse, scores, predictions)
    return result


def _seeds(config: EvalConfig, mode: str) -> tuple[int, ...]:
    return config.seeds[:1] if config.shots == 0 and mode != "sc_cot" else config.seeds


def _ran_seeds(config: EvalConfig) -> tuple[int, ...]:
    return tuple(dict.fromkeys(s for m in config.modes for s in _seeds(config, m)))


def _requests(
    pools: Mapping[str, BenchmarkPool], config: EvalConfig, mode: str, seed: int
) -> list[_Request]:
    requests = []
    for pool in pools.values():
        shots, excluded = pool.draw(config.shots, seed)
        for item in pool.items:
            if item.item_id in excluded:
                continue
            item_shots = shots.get(group_of(item), [])
            prompt = build_prompt(item, item_shots, mode != "top_token", config.prompt_format)
            requests.append(_Request(item, prompt, tuple(s.item_id for s in item_shots)))
    return requests


def _answer(
    mode: str, requests: Sequence[_Request], backend: Backend, config: EvalConfig, seed: int
) -> list[dict[str, Any]]:
    """One prediction record per request: the backend's i-th answer belongs to the i-th
    request's item."""
    prompts = [r.prompt for r in requests]
    records = []
    if mode == "top_token":
        labels = [list(r.item.options) for r in requests]
        scores = backend.score_options(prompts, [[continuation(x) for x in ls] for ls in labels])
        _check_length(scores, requests)
        for request, item_labels, item_scores in zip(requests, labels, scores, strict=True):
            logprobs = dict(zip(item_labels, item_scores, strict=True))
            # max() keeps the first of equal scores: ties go to the option listed first.
            answer = max(item_labels, key=logprobs.__getitem__)
            records.append(_record(request, mode, seed, answer, option_logprobs=logprobs))
        return records
    sc = mode == "sc_cot"
    n = config.self_consistency.samples if sc else 1
    outputs = backend.generate(
        prompts,
        n=n,
        temperature=config.self_consistency.temperature if sc else 0.0,
        max_tokens=config.self_consistency.max_tokens if sc else config.cot.max_tokens,
        seed=seed,
        stop=stop_strings(config.prompt_format),
    )
    _check_length(outputs, requests)
    for request, texts in zip(requests, outputs, strict=True):
        parsed = [parse_answer(t, request.item.options) for t in texts]
        votes = {a: parsed.count(a) for a in dict.fromkeys(p for p in parsed if p is not None)}
        records.append(
            _record(
                request,
                mode,
                seed,
                majority_vote(parsed),
                n_samples=len(texts),
                n_parseable_samples=sum(p is not None for p in parsed),
                votes=votes if sc else None,
                outputs=list(texts),
            )
        )
    return records


def _check_length(answers: Sequence[Any], requests: Sequence[_Request]) -> None:
    if len(answers) != len(requests):
        raise RuntimeError(f"backend answered {len(answers)} of {len(requests)} prompts")


def _record(
    request: _Request, mode: str, seed: int, answer: str | None, **extra: Any
) -> dict[str, Any]:
    item = request.item
    return {
        "benchmark": item.benchmark,
        "subject": item.subject,
        "item_id": item.item_id,
        "mode": mode,
        "seed": seed,
        "prediction": answer,
        "gold": item.answer,
        "correct": answer == item.answer,
        "parseable": answer is not None,
        "option_logprobs": None,
        "n_samples": None,
        "n_parseable_samples": None,
        "votes": None,
        "outputs": None,
        "shot_ids": list(request.shot_ids),
    } | extra


def _notes(pools: Mapping[str, BenchmarkPool], missing: list[str], config: EvalConfig) -> list[str]:
    notes = []
    absent = [COLUMNS.get(m, m) for m in missing]
    if absent:
        notes.append(
            f"Not found under `{config.benchmarks_dir}`: {', '.join(absent)} (– in the table);"
            f" Avg is the mean over the {len(pools)} benchmarks present."
        )
    for benchmark, pool in pools.items():
        name = COLUMNS[benchmark]
        if config.shots and SET_ASIDE in (pool.shot_source(config.shots) or ""):
            per = "seed and subject" if benchmark == MMLU_MEDICAL else "seed"
            notes.append(
                f"{name}: the local copy has no train or dev split: {config.shots} test"
                f" item(s) per {per} were set aside as shots, and not scored where they come"
                " from the scored items."
            )
        if len(pool.items) < pool.available:
            notes.append(
                f"{name}: a seeded subset of {len(pool.items)} of the {pool.available} items"
                f" (max_items {config.max_items}, subset_seed {config.subset_seed})."
            )
    return notes


def _write(result: EvalResult, config: EvalConfig, pools: Mapping[str, BenchmarkPool]) -> None:
    out = result.run_dir
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as f:
        for record in result.predictions:
            f.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
    summary = {
        "run_id": result.run_id,
        "config": config.model_dump(mode="json"),
        "items": {
            b: {
                "subset": len(p.items),
                "available": p.available,
                "shot_source": p.shot_source(config.shots),
            }
            for b, p in pools.items()
        },
        "missing": result.missing,
        "timings": result.timings,
        "scores": result.scores,
    }
    (out / "results.json").write_text(
        json.dumps(summary, default=_json_default, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    (out / "results.md").write_text(result.table, encoding="utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def run(
    config_path: str | Path, model: str | None = None, lakehouse: str | None = None
) -> EvalResult:
    """`gapreplay evaluate`: load the config, apply the command line's overrides, evaluate.
    A `model` override also resets `model_name`, so the tables name the model evaluated."""
    config = load_config(config_path)
    overrides: dict[str, Any] = {}
    if model is not None:
        overrides |= {"model": model, "model_name": None}
    if lakehouse is not None:
        overrides["lakehouse"] = lakehouse
    return evaluate(config.updated(**overrides))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; prints the results table. Exit 2 on a bad config."""
    parser = argparse.ArgumentParser(prog="python -m evaluate.harness", description=__doc__)
    parser.add_argument("--config", required=True, help="evaluation YAML (configs/evaluate_*)")
    parser.add_argument("--model", default=None, help="checkpoint directory (overrides model)")
    parser.add_argument("--lakehouse", default=None, help="append to eval/* tables in DIR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        result = run(args.config, args.model, args.lakehouse)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(result.table)
    print(f"written to {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
