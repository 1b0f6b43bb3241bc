"""Job `gapreplay maintain`: compact the Delta tables after MERGE-heavy runs and vacuum the
files no version within the retention needs.

MERGEs rewrite the files they touch, so after a few runs a table is many small files;
OPTIMIZE compacts them into few (a new version with the same rows). VACUUM then deletes data
files that no version younger than the retention reads. `gapreplay diff` and `why` read
older versions by time travel, so the retention is how far back they can look: the default,
30 days, keeps every build of the last month comparable. Delta refuses a retention under 7
days (readers and writers still at work may need those files); this job refuses one
itself, since `get_spark` turns Delta's own check off.
"""

from __future__ import annotations

import logging

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from spark_jobs import storage
from spark_jobs.runs import StageResult, StageRun
from spark_jobs.tables import discover_tables

log = logging.getLogger(__name__)

STAGE = "maintain"
DEFAULT_RETENTION_HOURS = 30 * 24
MINIMUM_RETENTION_HOURS = 7 * 24  # Delta's own safety floor (concurrent readers and writers)


def _files(location: str) -> int:
    """Data files of a table, on local disk or an object store."""
    fs, path = storage.filesystem(location)
    return sum(1 for p in fs.find(path) if p.endswith(".parquet") and "/_delta_log/" not in p)


def maintain(
    spark: SparkSession, root: str, retention_hours: int = DEFAULT_RETENTION_HOURS
) -> StageResult:
    if retention_hours < MINIMUM_RETENTION_HOURS:
        raise ValueError(
            f"retention {retention_hours} h is under Delta's minimum of "
            f"{MINIMUM_RETENTION_HOURS} h: older versions could lose files still read"
        )
    tables = discover_tables(root)
    settings = {"retention_hours": retention_hours}
    with StageRun(spark, root, STAGE, settings, inputs=sorted(tables)) as run:
        for name, path in sorted(tables.items()):
            table = DeltaTable.forPath(spark, path)
            before = _files(path)
            metrics = table.optimize().executeCompaction().first()["metrics"]
            table.vacuum(float(retention_hours))
            after = _files(path)
            run.metrics[f"files_removed_by_optimize.{name}"] = int(metrics["numFilesRemoved"])
            run.metrics[f"files_added_by_optimize.{name}"] = int(metrics["numFilesAdded"])
            run.metrics[f"files_on_disk_before.{name}"] = before
            run.metrics[f"files_on_disk_after.{name}"] = after
            log.info("maintain: %s compacted, %d -> %d files on disk", name, before, after)
        run.rows_in = run.rows_out = len(tables)
        return StageResult(
            run_id=run.run_id,
            stage=STAGE,
            table="(all)",
            metrics=dict(run.metrics),
            rows_out=len(tables),
        )
