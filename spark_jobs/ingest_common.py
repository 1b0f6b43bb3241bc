"""What every ingest job shares: quarantine writes and the run summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from schemas.bronze import QUARANTINE
from schemas.table_spec import TableSpec
from spark_jobs.runs import StageRun
from spark_jobs.tables import merge_into, table_version


@dataclass
class IngestResult:
    run_id: str
    stage: str
    table: str
    metrics: dict[str, int]
    rows_out: int
    table_versions: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return self.metrics.get("quarantined", 0)


def quarantine_rows(events: DataFrame, source: str) -> DataFrame:
    return events.select(
        F.lit(source).alias("source"),
        "error_class",
        "error_message",
        "source_file",
        "locator",
        "ingest_run_id",
    )


def record_quarantine(spark: SparkSession, root: str, rows: DataFrame) -> int:
    """MERGE quarantined pieces (a re-run keeps the first sighting); returns this run's count."""
    count = rows.count()
    if count:
        merge_into(spark, root, QUARANTINE, rows, update_condition=None)
    return count


def write_summary(
    spark: SparkSession, run: StageRun, specs: list[TableSpec], table: str
) -> IngestResult:
    """Record the tables' versions on the run and describe the result."""
    for spec in specs:
        version = table_version(spark, run.lakehouse, spec)
        if version is not None:
            run.table_versions[spec.path] = version
    return IngestResult(
        run_id=run.run_id,
        stage=run.stage,
        table=table,
        metrics=dict(run.metrics),
        rows_out=run.rows_out,
        table_versions=dict(run.table_versions),
    )
