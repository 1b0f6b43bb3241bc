"""A table whose creation was cut short by a killed driver is created again by the next run."""

from __future__ import annotations

from pathlib import Path

from schemas.silver import DEDUP_CLUSTERS
from spark_jobs.tables import read_table, sync_table, table_path


def test_a_log_with_only_temporary_files_does_not_block_the_table(spark, lakehouse):
    log_dir = Path(table_path(lakehouse, DEDUP_CLUSTERS)) / "_delta_log"
    (log_dir / "_staged_commits").mkdir(parents=True)
    (log_dir / ".00000000000000000000.json.2107db7d.tmp").write_text('{"commitInfo":')
    assert read_table(spark, lakehouse, DEDUP_CLUSTERS).count() == 0

    rows = spark.createDataFrame([("a", "a", "a", 1.0, "pubmed", 1, "r")], DEDUP_CLUSTERS.schema)
    sync_table(spark, lakehouse, DEDUP_CLUSTERS, rows)
    assert [r.doc_id for r in read_table(spark, lakehouse, DEDUP_CLUSTERS).collect()] == ["a"]
    assert (log_dir / "00000000000000000000.json").is_file()
