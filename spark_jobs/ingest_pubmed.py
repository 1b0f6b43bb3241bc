"""Ingest job: PubMed baseline/update XML files into `bronze/pubmed`.

Files are parsed by the executors (one task per file) into one stream of events: a record,
a deletion or a quarantined piece. Each PMID's latest event (by file name, Version, record
index) is then MERGEd: newer records replace older ones, deletions remove rows and leave a
tombstone, and re-running any file changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructField, StructType

from corpus.inputs import expand_inputs
from corpus.pubmed_xml import Deletion, parse_pubmed_file
from corpus.quarantine import Quarantined
from schemas.bronze import PUBMED, PUBMED_DELETIONS, QUARANTINE
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_common import IngestResult, quarantine_rows, record_quarantine, write_summary
from spark_jobs.runs import StageRun
from spark_jobs.tables import (
    check_schema,
    ensure_table,
    last_operation_metrics,
    read_table,
    table_path,
)

log = logging.getLogger(__name__)

SUFFIXES = (".xml", ".xml.gz")
ARROW_BATCH_ROWS = 2000
EVENT_SCHEMA = StructType(
    [StructField(f.name, f.dataType, True, f.metadata) for f in PUBMED.schema.fields]
    + [
        StructField("event", StringType(), False),
        StructField("error_class", StringType(), True),
        StructField("error_message", StringType(), True),
    ]
)
_LINEAGE = {
    "source_file",
    "locator",
    "ingest_run_id",
    "supersede_key",
    "record_sha256",
    "record_index",
}


def supersede_key(path: str, version: int, record_index: int) -> str:
    """Sortable text: later files, then higher Versions, then later records win."""
    return f"{os.path.basename(path)}|{version:06d}|{record_index:09d}"


def record_sha256(row: dict[str, Any]) -> str:
    content = {k: v for k, v in row.items() if k not in _LINEAGE}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def file_events(path: str, run_id: str) -> Iterator[dict[str, Any]]:
    """Event rows (EVENT_SCHEMA) for one file."""
    for item in parse_pubmed_file(path):
        if isinstance(item, Quarantined):
            yield {
                "event": "quarantine",
                "source_file": path,
                "ingest_run_id": run_id,
                **item.as_row(),
            }
        elif isinstance(item, Deletion):
            yield {
                "event": "delete",
                "pmid": item.pmid,
                "supersede_key": supersede_key(path, item.version, item.record_index),
                "source_file": path,
                "locator": item.locator,
                "ingest_run_id": run_id,
            }
        else:
            item["supersede_key"] = supersede_key(path, item["version"], item.pop("record_index"))
            item["record_sha256"] = record_sha256(item)
            item.update(event="record", source_file=path, ingest_run_id=run_id)
            yield item


def _parse_partition(run_id: str):  # type: ignore[no-untyped-def]
    arrow_schema = to_arrow_schema(EVENT_SCHEMA)

    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows: list[dict[str, Any]] = []
        for batch in batches:
            for path in batch.column("path").to_pylist():
                for row in file_events(path, run_id):
                    rows.append(row)
                    if len(rows) >= ARROW_BATCH_ROWS:
                        yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)
                        rows = []
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)

    return parse


def parse_files(spark: SparkSession, files: list[str], run_id: str) -> DataFrame:
    """Events of all files, parsed on the executors, one task per file."""
    paths = spark.createDataFrame([(p,) for p in files], "path string")
    return paths.repartition(max(1, len(files))).mapInArrow(_parse_partition(run_id), EVENT_SCHEMA)


def ingest_pubmed(spark: SparkSession, config: IngestConfig) -> IngestResult:
    files = expand_inputs(config.inputs, SUFFIXES)
    root = config.lakehouse
    with StageRun(spark, root, "ingest_pubmed", config.model_dump(), inputs=files) as run:
        log.info("ingest pubmed: parsing %d file(s) on the executors", len(files))
        events = parse_files(spark, files, run.run_id).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = {r["event"]: r["count"] for r in events.groupBy("event").count().collect()}
            run.rows_in = counts.get("record", 0) + counts.get("delete", 0)
            latest = _latest_events(events.filter("event != 'quarantine'"))
            tomb_metrics = _merge_tombstones(spark, root, latest) if counts.get("delete", 0) else {}
            latest = _drop_tombstoned(spark, root, latest)
            merge_metrics = _merge_records(spark, root, latest)
            quarantined = record_quarantine(
                spark, root, quarantine_rows(events.filter("event = 'quarantine'"), "pubmed")
            )
        finally:
            events.unpersist()
        run.metrics = {
            "files": len(files),
            "records_parsed": counts.get("record", 0),
            "deletions_in_input": counts.get("delete", 0),
            "superseded_in_batch": run.rows_in - merge_metrics.get("numSourceRows", 0),
            "inserted": merge_metrics.get("numTargetRowsInserted", 0),
            "revised": merge_metrics.get("numTargetRowsUpdated", 0),
            "deletions": merge_metrics.get("numTargetRowsDeleted", 0),
            "tombstones_written": tomb_metrics.get("numTargetRowsInserted", 0)
            + tomb_metrics.get("numTargetRowsUpdated", 0),
            "quarantined": quarantined,
        }
        run.rows_out = spark.read.format("delta").load(table_path(root, PUBMED)).count()
        return write_summary(spark, run, [PUBMED, PUBMED_DELETIONS, QUARANTINE], "bronze/pubmed")


def _latest_events(events: DataFrame) -> DataFrame:
    """Each PMID's last event in this batch: a record or a deletion."""
    order = Window.partitionBy("pmid").orderBy(F.col("supersede_key").desc())
    return events.withColumn("_rank", F.row_number().over(order)).filter("_rank = 1").drop("_rank")


def _merge_tombstones(spark: SparkSession, root: str, latest: DataFrame) -> dict[str, int]:
    deletions = check_schema(latest.filter("event = 'delete'"), PUBMED_DELETIONS, extra_ok=True)
    table = ensure_table(spark, root, PUBMED_DELETIONS)
    (
        table.alias("t")
        .merge(deletions.alias("s"), "t.pmid = s.pmid")
        .whenMatchedUpdateAll(condition="s.supersede_key > t.supersede_key")
        .whenNotMatchedInsertAll()
        .execute()
    )
    return last_operation_metrics(table)


def _drop_tombstoned(spark: SparkSession, root: str, latest: DataFrame) -> DataFrame:
    """Records older than a deletion already on file (e.g. a baseline re-run after updates)."""
    tombs = read_table(spark, root, PUBMED_DELETIONS).select(
        "pmid", F.col("supersede_key").alias("_deleted_at")
    )
    return (
        latest.join(tombs, "pmid", "left")
        .filter("event = 'delete' OR _deleted_at IS NULL OR supersede_key > _deleted_at")
        .drop("_deleted_at")
    )


def _merge_records(spark: SparkSession, root: str, latest: DataFrame) -> dict[str, int]:
    check_schema(latest.filter("event = 'record'"), PUBMED, extra_ok=True)
    table = ensure_table(spark, root, PUBMED)
    values = {c: f"s.{c}" for c in PUBMED.columns}
    (
        table.alias("t")
        .merge(latest.alias("s"), "t.pmid = s.pmid")
        .whenMatchedDelete(condition="s.event = 'delete' AND s.supersede_key > t.supersede_key")
        .whenMatchedUpdate(
            condition="s.event = 'record' AND s.supersede_key > t.supersede_key", set=values
        )
        .whenNotMatchedInsert(condition="s.event = 'record'", values=values)
        .execute()
    )
    return last_operation_metrics(table)
