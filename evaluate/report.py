"""Scores from predictions, and the markdown table in MediTron's layout.

Accuracy is correct / scored items, an unparseable answer counting as wrong. Per seed,
MMLU-Medical pools the items of its subjects (micro-average, as MediTron's concatenated
subsets); the seed-null rows average the per-seed accuracies (MediTron's mean over seeds
1234, 432, 32) and sum the counts; the 'average' rows are the mean of the benchmarks'
accuracies (MediTron's avg column), over the benchmarks present.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from corpus.benchmarks import MEDMCQA, MEDQA, MEDQA_4OPTIONS, MMLU_MEDICAL, PUBMEDQA

__all__ = ["AVERAGE", "COLUMNS", "markdown_table", "score_rows"]

AVERAGE = "average"
# MediTron's table: MMLU-Med / PubMedQA / MedMCQA / MedQA / MedQA-4 / avg.
COLUMNS = {
    MMLU_MEDICAL: "MMLU-Med",
    PUBMEDQA: "PubMedQA",
    MEDMCQA: "MedMCQA",
    MEDQA: "MedQA",
    MEDQA_4OPTIONS: "MedQA-4",
}
_MODE_NAMES = {"top_token": "top-token", "cot": "CoT", "sc_cot": "SC-CoT"}


def score_rows(
    predictions: Iterable[Mapping[str, Any]],
    common: Mapping[str, Any],
    shot_sources: Mapping[str, str | None],
) -> list[dict[str, Any]]:
    """Rows of `schemas.eval.SCORES`: per seed, mean over seeds, and the benchmark average.
    `common` holds the run's columns (run_id, model, …); `shot_sources` maps a benchmark
    to where its shots came from."""
    groups: dict[tuple[str, str | None, str, int], list[Mapping[str, Any]]] = {}
    for p in predictions:
        keys = [(p["benchmark"], None)]
        if p["benchmark"] == MMLU_MEDICAL:
            keys.append((p["benchmark"], p["subject"]))
        for benchmark, subject in keys:
            groups.setdefault((benchmark, subject, p["mode"], p["seed"]), []).append(p)
    per_seed = []
    for (benchmark, subject, mode, seed), preds in sorted(groups.items(), key=_order):
        n = len(preds)
        correct = sum(p["correct"] for p in preds)
        unparseable = sum(not p["parseable"] for p in preds)
        per_seed.append(
            _row(
                common,
                (benchmark, subject, mode, seed),
                accuracies=[correct / n],
                counts=(n, correct, unparseable),
                shot_source=shot_sources.get(benchmark),
            )
        )
    means = _means(per_seed, common)
    return per_seed + means + _averages(means, common)


def _means(per_seed: list[dict[str, Any]], common: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {}
    for row in per_seed:
        by_key.setdefault((row["benchmark"], row["subject"], row["mode"]), []).append(row)
    rows = []
    for (benchmark, subject, mode), seeds in by_key.items():
        rows.append(
            _row(
                common,
                (benchmark, subject, mode, None),
                accuracies=[r["accuracy"] for r in seeds],
                counts=_sums(seeds),
                shot_source=seeds[0]["shot_source"],
            )
        )
    return rows


def _averages(means: list[dict[str, Any]], common: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for mode in dict.fromkeys(r["mode"] for r in means):
        present = [r for r in means if r["mode"] == mode and r["subject"] is None]
        # The mean of the benchmarks' means; its std over seeds is not defined.
        row = _row(
            common,
            (AVERAGE, None, mode, None),
            accuracies=[r["accuracy"] for r in present],
            counts=_sums(present),
            shot_source=None,
        )
        rows.append(row | {"n_seeds": max(r["n_seeds"] for r in present), "accuracy_std": None})
    return rows


def _sums(rows: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    return (
        sum(r["n_items"] for r in rows),
        sum(r["n_correct"] for r in rows),
        sum(r["n_unparseable"] for r in rows),
    )


def _row(
    common: Mapping[str, Any],
    key: tuple[str, str | None, str, int | None],
    accuracies: Sequence[float],
    counts: tuple[int, int, int],
    shot_source: str | None,
) -> dict[str, Any]:
    """A score row over `accuracies` (one per seed) and the summed (items, correct,
    unparseable) `counts`."""
    benchmark, subject, mode, seed = key
    n_items, n_correct, n_unparseable = counts
    return {
        "run_id": common["run_id"],
        "model": common["model"],
        "model_path": common["model_path"],
        "benchmark": benchmark,
        "subject": subject,
        "mode": mode,
        "shots": common["shots"],
        "shot_source": shot_source,
        "seed": seed,
        "n_seeds": len(accuracies),
        "accuracy": statistics.fmean(accuracies),
        "accuracy_std": statistics.pstdev(accuracies) if seed is None else None,
        "n_items": n_items,
        "n_correct": n_correct,
        "n_unparseable": n_unparseable,
        "unparseable_rate": n_unparseable / n_items,
        "backend": common["backend"],
        "prompt_format": common["prompt_format"],
        "created_at": common["created_at"],
    }


def _order(entry: tuple[tuple[str, str | None, str, int], Any]) -> tuple[Any, ...]:
    benchmark, subject, mode, seed = entry[0]
    return (list(_MODE_NAMES).index(mode), list(COLUMNS).index(benchmark), subject or "", seed)


def markdown_table(
    scores: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    notes: Sequence[str],
) -> str:
    """The results as markdown: MediTron's table (accuracy %, mean over seeds), then each
    benchmark's items per seed, spread over seeds and unparseable rate, MMLU subjects,
    and `notes` (missing benchmarks, shots set aside, subsets)."""
    means = [r for r in scores if r["seed"] is None]
    first = means[0]
    created: datetime = first["created_at"]
    modes = list(dict.fromkeys(r["mode"] for r in means))
    lines = [
        f"# {first['model']}: medical benchmarks",
        "",
        f"Run `{first['run_id']}`, {created:%Y-%m-%d %H:%M} UTC; checkpoint "
        f"`{first['model_path']}`; backend {first['backend']}; prompt {first['prompt_format']};"
        f" {first['shots']}-shot; accuracy (%) averaged over seeds"
        f" {', '.join(str(s) for s in seeds)}.",
        "",
        "| Mode | " + " | ".join(COLUMNS.values()) + " | Avg |",
        "|---|" + "---:|" * (len(COLUMNS) + 1),
    ]
    for mode in modes:
        cells = {r["benchmark"]: r for r in means if r["mode"] == mode and r["subject"] is None}
        row = [_pct(cells[b]["accuracy"]) if b in cells else "–" for b in [*COLUMNS, AVERAGE]]
        lines.append(f"| {_MODE_NAMES[mode]} | " + " | ".join(row) + " |")
    lines += [
        "",
        "| Benchmark | Mode | Accuracy (%) | Std over seeds | Items per seed | Seeds"
        " | Unparseable | Shots from |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    details = [r for r in means if r["benchmark"] != AVERAGE and r["subject"] is None]
    details.sort(key=lambda r: (list(COLUMNS).index(r["benchmark"]), modes.index(r["mode"])))
    lines += [_detail(r, COLUMNS[r["benchmark"]]) for r in details]
    subjects = [r for r in means if r["subject"] is not None]
    if subjects:
        lines += [
            "",
            "MMLU-Medical by subject:",
            "",
            "| Subject | Mode | Accuracy (%) | Std over seeds | Items per seed | Seeds"
            " | Unparseable | Shots from |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        subjects.sort(key=lambda r: (r["subject"], modes.index(r["mode"])))
        lines += [_detail(r, r["subject"]) for r in subjects]
    if notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def _detail(row: Mapping[str, Any], name: str) -> str:
    cells = [
        name,
        _MODE_NAMES[row["mode"]],
        _pct(row["accuracy"]),
        _pct(row["accuracy_std"]),
        str(row["n_items"] // row["n_seeds"]),
        str(row["n_seeds"]),
        f"{100 * row['unparseable_rate']:.1f}%",
        row["shot_source"] or "–",
    ]
    return "| " + " | ".join(cells) + " |"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"
