"""The ingest machinery every source shares.

Files are parsed by the executors (one task per file, Arrow batches out) into one stream of
events: a record, a deletion (PubMed's DeleteCitation) or a quarantined piece. Each key's
latest event (by file name, record version, record index: `supersede_key`) is MERGEd into
the source's bronze table: a newer record replaces an older one, a deletion removes the row
and leaves a tombstone, an equal or older one changes nothing, so re-running any input
leaves the table as it was. Quarantined pieces go to `bronze/quarantine`, and the run to
`_runs`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StringType, StructField, StructType

from corpus.pubmed_xml import Deletion
from corpus.quarantine import Quarantined
from download.files import provenance
from schemas.bronze import QUARANTINE
from schemas.table_spec import TableSpec
from spark_jobs import storage
from spark_jobs.config import IngestConfig
from spark_jobs.runs import StageResult, StageRun
from spark_jobs.tables import (
    check_schema,
    ensure_table,
    execute_merge,
    merge_into,
    read_table,
    source_values,
    table_path,
)

log = logging.getLogger(__name__)

ARROW_BATCH_ROWS = 1000
# Lineage and bookkeeping columns: not part of a record's content hash.
_NOT_CONTENT = {"source_file", "locator", "ingest_run_id", "supersede_key", "record_sha256"}
ParsedItem = dict[str, Any] | Deletion | Quarantined


@dataclass(frozen=True)
class SourceIngest:
    """How one source is ingested. `parse_file` runs on the executors: it must be a
    module-level function (or a functools.partial of one) so that Spark can ship it."""

    source: str
    table: TableSpec
    key: str
    suffixes: tuple[str, ...]
    parse_file: Callable[[str], Iterator[ParsedItem]]
    tombstones: TableSpec | None = None

    @property
    def stage(self) -> str:
        return f"ingest_{self.source}"


def supersede_key(path: str, version: int, record_index: int) -> str:
    """Sortable text: later files, then higher versions, then later records win."""
    return f"{os.path.basename(path)}|{version:06d}|{record_index:09d}"


def record_sha256(row: dict[str, Any]) -> str:
    content = {k: v for k, v in row.items() if k not in _NOT_CONTENT}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def input_files(inputs: list[str], suffixes: tuple[str, ...]) -> list[str]:
    """The files that `inputs` name (files, folders, globs; local or on an object store; see
    storage.expand), in the order they are applied: by file name, then location (PubMed
    updates must follow their baseline). A name that matches nothing raises
    FileNotFoundError: that is a user error, not bad data."""
    found = {f for item in inputs for f in storage.expand(_absolute(item), suffixes)}
    return sorted(found, key=lambda p: (posixpath.basename(p), p))


def _absolute(item: str) -> str:
    path = storage.local_path(item)
    return item if path is None else str(path.resolve())


def file_events(
    path: str, run_id: str, parse_file: Callable[[str], Iterator[ParsedItem]]
) -> Iterator[dict[str, Any]]:
    """Event rows for one file; the record index is the item's position in the file. A file
    on an object store is parsed from a local copy (the parsers seek, untar and hand files to
    a PDF worker), under its own name; rows name the store location."""
    with storage.local_copy(path) as local:
        yield from _events(path, run_id, parse_file(str(local)))


def _events(path: str, run_id: str, items: Iterator[ParsedItem]) -> Iterator[dict[str, Any]]:
    for index, item in enumerate(items):
        base = {"source_file": path, "ingest_run_id": run_id}
        if isinstance(item, Quarantined):
            yield {"event": "quarantine", **base, **item.as_row()}
        elif isinstance(item, Deletion):
            yield {
                "event": "delete",
                "pmid": item.pmid,
                "supersede_key": supersede_key(path, item.version, index),
                "locator": item.locator,
                **base,
            }
        else:
            item["supersede_key"] = supersede_key(path, item.get("version") or 1, index)
            item["record_sha256"] = record_sha256(item)
            yield {"event": "record", **item, **base}


def event_schema(table: TableSpec) -> StructType:
    """The table's columns, all nullable (deletions and quarantine rows fill few of them),
    plus the event kind and the error of a quarantined piece."""
    return StructType(
        [StructField(f.name, f.dataType, True, f.metadata) for f in table.schema.fields]
        + [
            StructField("event", StringType(), False),
            StructField("error_class", StringType(), True),
            StructField("error_message", StringType(), True),
        ]
    )


def _parse_partition(spec: SourceIngest, run_id: str):  # type: ignore[no-untyped-def]
    arrow_schema = to_arrow_schema(event_schema(spec.table))
    names = set(arrow_schema.names)
    parse_file = spec.parse_file

    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        rows: list[dict[str, Any]] = []
        for batch in batches:
            for path in batch.column("path").to_pylist():
                for row in file_events(path, run_id, parse_file):
                    rows.append({k: v for k, v in row.items() if k in names})
                    if len(rows) >= ARROW_BATCH_ROWS:
                        yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)
                        rows = []
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=arrow_schema)

    return parse


def parse_files(
    spark: SparkSession, spec: SourceIngest, files: list[str], run_id: str
) -> DataFrame:
    """Events of all files, parsed on the executors, one task per file."""
    paths = spark.createDataFrame([(p,) for p in files], "path string")
    return paths.repartition(max(1, len(files))).mapInArrow(
        _parse_partition(spec, run_id), event_schema(spec.table)
    )


def run_ingest(spark: SparkSession, config: IngestConfig, spec: SourceIngest) -> StageResult:
    files = input_files(config.inputs, spec.suffixes)
    root = config.lakehouse
    inputs = provenance(config.inputs, files)
    with StageRun(spark, root, spec.stage, config.model_dump(), inputs=inputs) as run:
        log.info("%s: parsing %d file(s) on the executors", spec.stage, len(files))
        events = parse_files(spark, spec, files, run.run_id).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = {r["event"]: r["count"] for r in events.groupBy("event").count().collect()}
            log.info("%s: parsed %s", spec.stage, counts)
            latest = _latest_events(events.filter("event != 'quarantine'"), spec.key)
            tomb_metrics: dict[str, int] = {}
            if spec.tombstones is not None:
                if counts.get("delete", 0):
                    tomb_metrics = _merge_tombstones(spark, root, spec, latest)
                latest = _drop_tombstoned(spark, root, spec, latest)
            merge_metrics = _merge_records(spark, root, spec, latest)
            quarantined = _record_quarantine(spark, root, spec.source, events)
        finally:
            events.unpersist()
        run.rows_in = counts.get("record", 0) + counts.get("delete", 0)
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
        run.rows_out = spark.read.format("delta").load(table_path(root, spec.table)).count()
        log.info("%s: %s rows in %s", spec.stage, run.rows_out, table_path(root, spec.table))
        written = [spec.table, QUARANTINE] + ([spec.tombstones] if spec.tombstones else [])
        return run.finish(spec.table, written)


def _latest_events(events: DataFrame, key: str) -> DataFrame:
    """Each key's last event in this batch: a record or a deletion."""
    order = Window.partitionBy(key).orderBy(F.col("supersede_key").desc())
    return events.withColumn("_rank", F.row_number().over(order)).filter("_rank = 1").drop("_rank")


def _merge_tombstones(
    spark: SparkSession, root: str, spec: SourceIngest, latest: DataFrame
) -> dict[str, int]:
    assert spec.tombstones is not None
    deletions = check_schema(latest.filter("event = 'delete'"), spec.tombstones, extra_ok=True)
    table = ensure_table(spark, root, spec.tombstones)
    return execute_merge(
        table,
        table.alias("t")
        .merge(deletions.alias("s"), f"t.{spec.key} = s.{spec.key}")
        .whenMatchedUpdateAll(condition="s.supersede_key > t.supersede_key")
        .whenNotMatchedInsertAll(),
    )


def _drop_tombstoned(
    spark: SparkSession, root: str, spec: SourceIngest, latest: DataFrame
) -> DataFrame:
    """Records older than a deletion on file (e.g. a baseline re-run after its updates)."""
    assert spec.tombstones is not None
    tombs = read_table(spark, root, spec.tombstones).select(
        spec.key, F.col("supersede_key").alias("_deleted_at")
    )
    return (
        latest.join(tombs, spec.key, "left")
        .filter("event = 'delete' OR _deleted_at IS NULL OR supersede_key > _deleted_at")
        .drop("_deleted_at")
    )


def _merge_records(
    spark: SparkSession, root: str, spec: SourceIngest, latest: DataFrame
) -> dict[str, int]:
    check_schema(latest.filter("event = 'record'"), spec.table, extra_ok=True)
    table = ensure_table(spark, root, spec.table)
    values = source_values(spec.table.columns)
    return execute_merge(
        table,
        table.alias("t")
        .merge(latest.alias("s"), f"t.{spec.key} = s.{spec.key}")
        .whenMatchedDelete(condition="s.event = 'delete' AND s.supersede_key > t.supersede_key")
        .whenMatchedUpdate(
            condition="s.event = 'record' AND s.supersede_key > t.supersede_key", set=values
        )
        .whenNotMatchedInsert(condition="s.event = 'record'", values=values),
    )


def _record_quarantine(spark: SparkSession, root: str, source: str, events: DataFrame) -> int:
    """MERGE quarantined pieces (a re-run keeps the first sighting); returns this run's count."""
    rows = events.filter("event = 'quarantine'").select(
        F.lit(source).alias("source"),
        "error_class",
        "error_message",
        "source_file",
        "locator",
        "ingest_run_id",
    )
    count = rows.count()
    if count:
        merge_into(spark, root, QUARANTINE, rows, update_condition=None)
    return count
