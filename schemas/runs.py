"""The `_runs` table: one row per stage run, for audit and for skipping unchanged stages."""

from __future__ import annotations

from pyspark.sql.types import LongType, MapType, StringType, StructType, TimestampType

from schemas.table_spec import TableSpec, col

RUNS = TableSpec(
    path="_runs",
    comment="Every stage run: what it read and wrote, with which config and code",
    keys=("run_id",),
    schema=StructType(
        [
            col("run_id", StringType(), "unique id of the run", nullable=False),
            col("stage", StringType(), "stage name, e.g. ingest_pubmed", nullable=False),
            col("status", StringType(), "succeeded or failed", nullable=False),
            col("started_at", TimestampType(), "start time (UTC)", nullable=False),
            col("finished_at", TimestampType(), "end time (UTC)"),
            col("config_sha256", StringType(), "hash of the stage's inputs and settings"),
            col("code_version", StringType(), "gapreplay version and git commit"),
            col("rows_in", LongType(), "rows (records) the stage read"),
            col("rows_out", LongType(), "rows the stage's main table holds afterwards"),
            col(
                "table_versions",
                MapType(StringType(), LongType()),
                "Delta version of each table the stage wrote, after it committed",
            ),
            col(
                "metrics",
                MapType(StringType(), LongType()),
                "counts: inserted, updated, deletions, superseded versions, quarantined, …",
            ),
            col("inputs", StringType(), "the input files or tables, JSON"),
            col("error", StringType(), "why the run failed"),
            col(
                "pipeline_key",
                StringType(),
                "`gapreplay corpus`: hash of the stage's config, input files and the upstream"
                " runs; a later pipeline run with the same key skips the stage",
            ),
        ]
    ),
    schema_version=2,
    constraints={"status_known": "status IN ('succeeded', 'failed')"},
)
