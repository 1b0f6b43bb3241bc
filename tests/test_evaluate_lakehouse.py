"""A run's scores and predictions appended to the lakehouse's eval/* Delta tables, and
compared in SQL (one test: the Spark session is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from evaluate.config import parse_config
from evaluate.harness import evaluate
from evaluate.lakehouse import load_run, write_lakehouse
from schemas.eval import PREDICTIONS, SCORES
from spark_jobs.tables import table_path
from tests.conftest import SAMPLE
from tests.test_evaluate import ScriptedBackend


@pytest.fixture
def small_snapshots(spark: SparkSession) -> Iterator[SparkSession]:
    """Delta rebuilds a table's snapshot in 50 partitions by default: 50 tasks for a table of
    a few rows, tens of seconds on two busy cores. Restored afterwards for the other tests."""
    key = "spark.databricks.delta.snapshotPartitions"
    previous = spark.conf.get(key, None)
    spark.conf.set(key, "2")
    yield spark
    if previous is None:
        spark.conf.unset(key)
    else:
        spark.conf.set(key, previous)


def test_runs_append_and_compare_in_sql(
    small_snapshots: SparkSession, lakehouse: str, tmp_path: Path
) -> None:
    spark = small_snapshots
    settings = {
        "benchmarks_dir": str(SAMPLE / "benchmarks"),
        "benchmarks": ["mmlu_medical", "pubmedqa", "medqa"],
        "modes": ["top_token"],
        "shots": 0,
        "output_dir": str(tmp_path),
    }
    first = evaluate(
        parse_config(
            settings | {"run_name": "a", "model": "checkpoints/a/hf", "lakehouse": lakehouse}
        ),
        ScriptedBackend(lambda prompt, i, labels: labels[0]),
    )
    second = evaluate(
        parse_config(settings | {"run_name": "b", "model": "checkpoints/b/hf"}),
        ScriptedBackend(lambda prompt, i, labels: labels[-1]),
    )
    # A run made without a lakehouse (a GPU machine without Spark) is appended from its files.
    scores, predictions = load_run(second.run_dir)
    assert scores == second.scores and predictions == second.predictions
    write_lakehouse(lakehouse, scores, predictions, spark)

    for spec in (SCORES, PREDICTIONS):
        spark.read.format("delta").load(table_path(lakehouse, spec)).createOrReplaceTempView(
            spec.sql_name
        )
    rows = spark.sql(
        "SELECT model, benchmark, accuracy, n_items FROM eval_scores"
        " WHERE seed IS NULL AND subject IS NULL AND mode = 'top_token'"
    ).collect()
    got = {(r.model, r.benchmark): (r.accuracy, r.n_items) for r in rows}
    for result, model in ((first, "a"), (second, "b")):
        for row in result.scores:
            if row["seed"] is None and row["subject"] is None:
                assert got[(model, row["benchmark"])] == (row["accuracy"], row["n_items"])
    assert len(got) == 2 * 4  # three benchmarks and the average, per model

    # Predictions of the two runs joined by item id: the items where they disagree.
    changed = spark.sql(
        "SELECT a.item_id, a.prediction AS a, b.prediction AS b, a.gold"
        " FROM eval_predictions a JOIN eval_predictions b USING (item_id, mode, seed)"
        " WHERE a.model = 'a' AND b.model = 'b' AND a.prediction <> b.prediction"
    ).collect()
    assert len(changed) == len(first.predictions) == 6
    count = spark.sql("SELECT count(*) AS n FROM eval_predictions").first().n
    assert count == len(first.predictions) + len(second.predictions)
    comments = {
        r.col_name: r.comment
        for r in spark.sql(f"DESCRIBE delta.`{table_path(lakehouse, SCORES)}`").collect()
    }
    assert comments["unparseable_rate"] == "n_unparseable / n_items"
