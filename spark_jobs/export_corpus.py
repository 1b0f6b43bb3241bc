"""Gold job `gapreplay export --out DIR`: the gold corpus as Parquet and JSON Lines, one folder
per split, rows `{"id", "text", "source", "split", "license"}` sorted by id, for users outside
Megatron: `datasets.load_dataset("parquet", data_files={"train": "DIR/parquet/train/*.parquet"})`
(or "json" over `DIR/jsonl/<split>/*.json`) reads them."""

from __future__ import annotations

import logging
import posixpath

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from schemas.gold import CORPUS, SPLITS
from schemas.silver import DOCUMENTS
from spark_jobs import storage
from spark_jobs.runs import StageResult, StageRun
from spark_jobs.tables import read_table

log = logging.getLogger(__name__)

STAGE = "export"
FORMATS = {"parquet": "parquet", "jsonl": "json"}


def export_corpus(
    spark: SparkSession, root: str, out: str, rows_per_file: int = 100_000
) -> StageResult:
    out_dir = storage.resolve(out)
    parent, base = posixpath.split(out_dir)
    settings = {"out": out_dir, "rows_per_file": rows_per_file}
    with StageRun(spark, root, STAGE, settings) as run:
        rows = (
            read_table(spark, root, CORPUS)
            .join(read_table(spark, root, DOCUMENTS).select("doc_id", "text"), "doc_id")
            .select(F.col("doc_id").alias("id"), "text", "source", "split", "license")
        )
        for leftover in storage.remove_leftovers(parent, f"{base}.staging-*"):
            log.info("export: removed %s, left by a run that did not finish", leftover)
        counts = {r["split"]: r["count"] for r in rows.groupBy("split").count().collect()}
        staging = f"{out_dir}.staging-{run.run_id}"
        for name, spark_format in FORMATS.items():
            for split, count in counts.items():
                files = max(1, -(-count // rows_per_file))
                (
                    rows.filter(F.col("split") == split)
                    .repartitionByRange(files, "id")
                    .sortWithinPartitions("id")
                    .write.format(spark_format)
                    .option("compression", "none" if name == "jsonl" else "snappy")
                    .save(storage.join(staging, name, split))
                )
        # Spark wrote under the staging name; on an object store this move is a copy, and the
        # run's `_runs` row, written after it, is what marks the export complete.
        storage.replace(staging, out_dir)
        run.rows_in = run.rows_out = sum(counts.values())
        run.metrics = {f"docs.{s}": counts.get(s, 0) for s in SPLITS}
        log.info("export: %d documents written to %s", run.rows_out, out_dir)
        return run.finish(CORPUS, [])
