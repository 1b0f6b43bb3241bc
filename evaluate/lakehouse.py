"""Appending a run's scores and predictions to the lakehouse tables eval/scores and
eval/predictions (schemas.eval), so that runs compare in SQL (`gapreplay sql`).

Spark is imported here only: the harness runs without it when no lakehouse is asked for
(a vllm environment need not have pyspark). A run made without a lakehouse, or on a GPU
machine whose environment has no Spark, is appended later from its files:

    python -m evaluate.lakehouse eval_results/<run_name> --lakehouse lakehouse
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["load_run", "main", "write_lakehouse"]


def write_lakehouse(
    root: str,
    scores: Sequence[Mapping[str, Any]],
    predictions: Sequence[Mapping[str, Any]],
    spark: SparkSession | None = None,
) -> None:
    """Append the rows to `<root>/eval/scores` and `<root>/eval/predictions` (created with
    their comments and constraints when missing)."""
    from schemas.eval import PREDICTIONS, SCORES
    from spark_jobs.session import get_spark
    from spark_jobs.tables import append

    spark = spark or get_spark(app_name="gapreplay-evaluate")
    for spec, rows in ((SCORES, scores), (PREDICTIONS, predictions)):
        values = [tuple(row[c] for c in spec.columns) for row in rows]
        append(spark, root, spec, spark.createDataFrame(values, spec.schema))


def load_run(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The score and prediction rows of a run from its results.json and predictions.jsonl."""
    summary = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    with open(run_dir / "predictions.jsonl", encoding="utf-8") as f:
        predictions = [json.loads(line) for line in f if line.strip()]
    for row in [*summary["scores"], *predictions]:
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    return summary["scores"], predictions


def main(argv: Sequence[str] | None = None) -> int:
    """Append a finished run's files to the lakehouse."""
    parser = argparse.ArgumentParser(prog="python -m evaluate.lakehouse", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="eval_results/<run_name>")
    parser.add_argument("--lakehouse", required=True, help="lakehouse root")
    args = parser.parse_args(argv)
    scores, predictions = load_run(args.run_dir)
    write_lakehouse(args.lakehouse, scores, predictions)
    print(f"appended {len(scores)} scores and {len(predictions)} predictions to {args.lakehouse}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
