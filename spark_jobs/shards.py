"""Gold job `gapreplay shards --out DIR`: `gold/corpus` into Megatron-LM `.bin/.idx` shards,
with `gold/shards` (one row per file) and `gold/lineage` (one row per sequence).

The layout of the files is planned before anything is tokenized, from the token counts that
`mix` recorded: within each (split, source), documents are put in a seeded order (the
sampler's priority of doc_id: a shuffle that depends on nothing else) and cut into files of at
most `max_tokens_per_file` tokens by the running sum of their counts. Rows are then
repartitioned by file and each Spark task tokenizes its documents over Arrow batches and
streams each of its files through corpus.megatron_shards.ShardWriter (temporary name, renamed
when complete, SHA-256 computed while writing). So every partition writes its own shards,
and no merge pass is needed: the same inputs and config give byte-identical files whatever
the number of partitions.

A run writes into `<out>/.staging-<run id>/` and moves the split folders into place only when
every task has finished, so a killed run leaves the previous shards as they were; the next run
removes the staging folder a killed one left. Beside the
shards: `tokenizer/`, `blend_<split>.txt` and `blends.json` (weight = tokens × epochs), the
`manifest.json` and a dataset card.

When `out` is a URI (`s3a://`, `abfss://`, `dbfs:/`), where rename is not atomic and readers
need local files anyway, each task writes its files on its local disk and uploads each one
when complete under the run's staging prefix; the driver then copies the split folders into
place. `manifest.json` is the commit point: it is deleted before anything is replaced and
uploaded last, so a reader (or the pipeline's skip check) that finds it finds the complete set
of files it lists, with the SHA-256 of each as `gold/shards` records it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from corpus.megatron_shards import ShardWriter, dtype_for_vocab, write_blends
from corpus.sampler import priority_hex_sql
from corpus.tokenizer import CorpusTokenizer, load_tokenizer
from schemas.gold import CORPUS, LINEAGE, SHARDS, SPLITS
from schemas.silver import DOCUMENTS
from spark_jobs import storage
from spark_jobs.config import ShardsConfig
from spark_jobs.dataset_card import write_dataset_card
from spark_jobs.mix import tokenizer_dir
from spark_jobs.runs import StageResult, StageRun, config_sha256
from spark_jobs.tables import read_table, sync_table

log = logging.getLogger(__name__)

STAGE = "shards"
MANIFEST = "manifest.json"
BATCH_ROWS = 256
# What a task reports: one "seq" row per document written, one "file" row per shard.
_WRITTEN = StructType(
    [
        StructField("kind", StringType(), False),
        StructField("split", StringType(), False),
        StructField("source", StringType(), False),
        StructField("file_index", IntegerType(), False),
        StructField("seq_index", LongType()),
        StructField("doc_id", StringType()),
        StructField("n_tokens", LongType(), False),
        StructField("expected_tokens", LongType()),
        StructField("n_docs", LongType()),
        StructField("bin_sha256", StringType()),
        StructField("idx_sha256", StringType()),
    ]
)
_ARROW_WRITTEN = to_arrow_schema(_WRITTEN)


def shard_name(split: str, source: str, file_index: int) -> str:
    """A shard's path under the output folder, without extension."""
    return f"{split}/{source}_{file_index:05d}"


def plan_files(corpus: DataFrame, config: ShardsConfig) -> DataFrame:
    """gold/corpus rows with their shard file and place in it (`order_key`)."""
    within = Window.partitionBy("split", "source").orderBy("order_key", "doc_id")
    before = F.coalesce(
        F.sum("n_tokens").over(within.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)
    )
    return corpus.withColumn("order_key", F.expr(priority_hex_sql(config.seed))).withColumn(
        "file_index", F.floor(before / F.lit(config.max_tokens_per_file)).cast("int")
    )


def _write_partition(staging: str, shipped: object):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tokenizer = CorpusTokenizer.from_bytes(shipped.value)  # type: ignore[attr-defined]
        dtype = dtype_for_vocab(tokenizer.vocab_size)
        eod = np.array([tokenizer.eod_id], dtype)
        current: tuple[str, str, int] | None = None
        writer: ShardWriter | None = None
        seq_rows: list[dict] = []
        with tempfile.TemporaryDirectory(prefix="gapreplay-shards-") as tmp:
            # Under a URI the files are made in this task's local folder, then uploaded.
            folder = storage.local_path(staging) or Path(tmp)
            try:
                for batch in batches:
                    for start in range(0, batch.num_rows, BATCH_ROWS):
                        rows = batch.slice(start, BATCH_ROWS).to_pylist()
                        encoded = tokenizer.encode_batch([r["text"] for r in rows])
                        for row, ids in zip(rows, encoded, strict=True):
                            key = (row["split"], row["source"], row["file_index"])
                            if key != current:
                                if writer is not None:
                                    yield _finish(writer, current, seq_rows, folder, staging)
                                current, seq_rows = key, []
                                prefix = folder / shard_name(*key)
                                prefix.parent.mkdir(parents=True, exist_ok=True)
                                writer = ShardWriter(prefix, dtype)
                            tokens = np.concatenate((np.asarray(ids, dtype), eod))
                            index = writer.add(tokens)
                            seq_rows.append(
                                _seq(key, index, row["doc_id"], len(tokens), row["n_tokens"])
                            )
                if writer is not None:
                    yield _finish(writer, current, seq_rows, folder, staging)
                    writer = None
            finally:
                if writer is not None:  # a failed task leaves no partial shard
                    writer.abort()

    return run


def _seq(key: tuple, index: int, doc_id: str, n_tokens: int, expected: int) -> dict:
    split, source, file_index = key
    return {
        "kind": "seq",
        "split": split,
        "source": source,
        "file_index": file_index,
        "seq_index": index,
        "doc_id": doc_id,
        "n_tokens": n_tokens,
        "expected_tokens": expected,
    }


def _finish(
    writer: ShardWriter, key: tuple | None, seq_rows: list[dict], folder: Path, staging: str
) -> pa.RecordBatch:
    assert key is not None
    info = writer.close()
    if storage.local_path(staging) is None:
        name = shard_name(*key)
        for suffix in (".bin", ".idx"):  # .idx last, as ShardWriter renames them
            storage.upload(folder / f"{name}{suffix}", storage.join(staging, f"{name}{suffix}"))
            (folder / f"{name}{suffix}").unlink()
    split, source, file_index = key
    shard = {
        "kind": "file",
        "split": split,
        "source": source,
        "file_index": file_index,
        "n_tokens": info.n_tokens,
        "n_docs": info.n_docs,
        "bin_sha256": info.bin_sha256,
        "idx_sha256": info.idx_sha256,
    }
    return pa.RecordBatch.from_pylist([*seq_rows, shard], schema=_ARROW_WRITTEN)


def shards(spark: SparkSession, root: str, out: str, config: ShardsConfig) -> StageResult:
    out_dir = storage.resolve(out)
    settings = {"shards": config.model_dump(mode="json"), "out": out_dir}
    with StageRun(spark, root, STAGE, settings) as run:
        with storage.local_copy(tokenizer_dir(root)) as folder:
            tokenizer = load_tokenizer(folder)
        corpus = read_table(spark, root, CORPUS)
        texts = read_table(spark, root, DOCUMENTS).select("doc_id", "text")
        planned = plan_files(corpus.join(texts, "doc_id"), config)
        missing = corpus.join(texts, "doc_id", "left_anti").count()
        if missing:
            raise RuntimeError(
                f"{missing} gold/corpus document(s) are not in silver/documents: run mix again"
            )
        for leftover in storage.remove_leftovers(out_dir, ".staging-*", "*.tmp"):
            log.info("shards: removed %s, left by a run that did not finish", leftover)
        staging = storage.join(out_dir, f".staging-{run.run_id}")
        shipped = spark.sparkContext.broadcast(tokenizer.to_bytes())
        ordered = planned.repartition("split", "source", "file_index").sortWithinPartitions(
            "split", "source", "file_index", "order_key", "doc_id"
        )
        written = ordered.select(
            "doc_id", "split", "source", "file_index", "n_tokens", "text"
        ).mapInArrow(_write_partition(staging, shipped), _WRITTEN)
        written = written.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            written.count()  # every task has written its files
            files = [r.asDict() for r in written.filter("kind = 'file'").collect()]
            bad = written.filter("kind = 'seq' AND n_tokens != expected_tokens").count()
            if bad:
                raise RuntimeError(
                    f"{bad} document(s) tokenize to another length than gold/corpus records:"
                    " the tokenizer changed since mix; run mix again"
                )
            epochs = {
                (r["split"], r["source"]): r["epochs"]
                for r in corpus.select("split", "source", "epochs").distinct().collect()
            }
            _publish(staging, out_dir, tokenizer)
            tokenizer_name = f"{tokenizer.name}@{tokenizer.fingerprint[:12]}"
            shard_rows = [
                {
                    "prefix": storage.join(
                        out_dir, shard_name(f["split"], f["source"], f["file_index"])
                    ),
                    "split": f["split"],
                    "source": f["source"],
                    "file_index": f["file_index"],
                    "n_docs": f["n_docs"],
                    "n_tokens": f["n_tokens"],
                    "dtype": np.dtype(dtype_for_vocab(tokenizer.vocab_size)).name,
                    "tokenizer": tokenizer_name,
                    "bin_sha256": f["bin_sha256"],
                    "idx_sha256": f["idx_sha256"],
                    "run_id": run.run_id,
                }
                for f in sorted(files, key=lambda f: (f["split"], f["source"], f["file_index"]))
            ]
            lineage = written.filter("kind = 'seq'").select(
                F.concat(
                    F.lit(storage.join(out_dir, "")),
                    F.col("split"),
                    F.lit("/"),
                    F.col("source"),
                    F.lit("_"),
                    F.lpad(F.col("file_index").cast("string"), 5, "0"),
                ).alias("prefix"),
                "seq_index",
                "doc_id",
                "n_tokens",
                F.lit(run.run_id).alias("run_id"),
            )
            sync_table(spark, root, LINEAGE, lineage)
            sync_table(spark, root, SHARDS, spark.createDataFrame(shard_rows, SHARDS.schema))
        finally:
            written.unpersist()
            storage.remove(staging)
        blends = _blends(shard_rows, epochs)
        run.rows_in = sum(r["n_docs"] for r in shard_rows)
        run.rows_out = len(shard_rows)
        run.metrics = _metrics(shard_rows)
        result = run.finish(SHARDS, [SHARDS, LINEAGE])
        manifest = {
            "run_id": run.run_id,
            "config_sha256": config_sha256(settings),
            "tokenizer": {
                "name": tokenizer.name,
                "fingerprint": tokenizer.fingerprint,
                "vocab_size": tokenizer.vocab_size,
                "eod_id": tokenizer.eod_id,
                "dtype": shard_rows[0]["dtype"] if shard_rows else None,
            },
            "blends": {s: [[w, p] for w, p in entries] for s, entries in blends.items()},
            "shards": shard_rows,
        }
        with storage.local_folder(out_dir, last=(MANIFEST,)) as folder:
            write_blends(folder, blends)
            _write_json(folder / MANIFEST, manifest)
            write_dataset_card(spark, root, folder / "dataset_card.md", manifest)
        log.info(
            "shards: %d file(s), %d documents, %d tokens written to %s",
            len(shard_rows),
            run.rows_in,
            sum(r["n_tokens"] for r in shard_rows),
            out_dir,
        )
        return result


def _blends(
    shard_rows: list[dict], epochs: dict[tuple[str, str], float]
) -> dict[str, list[tuple[float, str]]]:
    """Per split, Megatron-LM's (weight, prefix) pairs: weight = tokens × the source's epochs,
    so that a source is sampled `epochs` times as often as its size alone would make it."""
    blends: dict[str, list[tuple[float, str]]] = {}
    for row in shard_rows:
        weight = float(row["n_tokens"] * epochs[(row["split"], row["source"])])
        blends.setdefault(row["split"], []).append((weight, row["prefix"]))
    return {split: blends[split] for split in SPLITS if split in blends}


def _publish(staging: str, out_dir: str, tokenizer: CorpusTokenizer) -> None:
    """Move the new split folders and tokenizer into place, replacing the previous ones.
    The old manifest goes first: until the new one is written, no set of shards is current."""
    storage.remove(storage.join(out_dir, MANIFEST))
    for split in SPLITS:
        old, new = storage.join(out_dir, split), storage.join(staging, split)
        if storage.exists(new):
            storage.replace(new, old)
        else:
            storage.remove(old)
    for name in ("blends.json", *(f"blend_{s}.txt" for s in SPLITS)):
        storage.remove(storage.join(out_dir, name))
    tokenizer_out = storage.join(out_dir, "tokenizer")
    storage.remove(tokenizer_out)
    with storage.local_folder(tokenizer_out) as folder:
        tokenizer.save(folder)


def _metrics(shard_rows: list[dict]) -> dict[str, int]:
    metrics: dict[str, int] = {"files": len(shard_rows)}
    for row in shard_rows:
        for measure in ("n_docs", "n_tokens"):
            key = f"{measure[2:]}.{row['source']}.{row['split']}"
            metrics[key] = metrics.get(key, 0) + row[measure]
    return metrics


def _write_json(path: Path, data: dict) -> None:
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    staging.replace(path)
