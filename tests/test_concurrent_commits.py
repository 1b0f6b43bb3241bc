"""Where no stage lock applies (object-store lakehouses), Delta's optimistic concurrency is the
guard: a stage whose MERGE loses to a concurrent one fails with ConcurrentRunError, is
recorded as failed in `_runs`, and the table holds the other run's rows, not a mixture."""

from __future__ import annotations

import threading
import time

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from schemas.runs import RUNS
from schemas.silver import DEDUP_CLUSTERS
from spark_jobs.runs import ConcurrentRunError, StageRun
from spark_jobs.tables import read_table, sync_table


def _rows(spark, ids: list[str], run_id: str):  # type: ignore[no-untyped-def]
    return spark.createDataFrame(
        [(d, d, d, 1.0, "pubmed", 1, run_id) for d in ids], DEDUP_CLUSTERS.schema
    )


@F.udf(StringType())
def _slowly(value):  # type: ignore[no-untyped-def]  # hints would make it a pandas UDF
    time.sleep(4)  # the MERGE computes while the other run commits
    return value


def test_a_merge_that_loses_to_a_concurrent_one_fails_clearly(spark, lakehouse):
    sync_table(spark, lakehouse, DEDUP_CLUSTERS, _rows(spark, ["a", "b"], "r0"))
    slow = _rows(spark, ["a", "b", "d"], "mine").coalesce(1)  # leaves a task slot free
    slow = slow.withColumn("cluster_id", _slowly("cluster_id"))

    def other_run() -> None:
        time.sleep(1)
        sync_table(spark, lakehouse, DEDUP_CLUSTERS, _rows(spark, ["a", "c"], "theirs"))

    other = threading.Thread(target=other_run)
    stage = StageRun(spark, lakehouse, "dedup", {})
    with pytest.raises(ConcurrentRunError, match="another run committed") as failed, stage:
        other.start()
        try:
            sync_table(spark, lakehouse, DEDUP_CLUSTERS, slow)
        finally:
            other.join()
    assert f"run {stage.run_id}" in str(failed.value)

    rows = read_table(spark, lakehouse, DEDUP_CLUSTERS).collect()
    assert sorted((r.doc_id, r.run_id) for r in rows) == [("a", "r0"), ("c", "theirs")]
    recorded = read_table(spark, lakehouse, RUNS).filter(F.col("run_id") == stage.run_id).collect()
    assert [r.status for r in recorded] == ["failed"]
    assert "Concurrent" in recorded[0].error
