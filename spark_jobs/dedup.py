"""Silver job `gapreplay dedup`: MinHash LSH near-duplicate removal over `silver/documents`.

Signatures are computed over Arrow batches (corpus.minhash, numba kernels) only for documents
without a stored signature of the same text and settings (`silver/minhash_signatures`), so a
new batch is deduplicated against the corpus without recomputing it. Candidates share an LSH
band bucket (bands tuned below the threshold); every candidate pair is verified by its exact
shingle Jaccard; clusters are the connected components of the verified pairs, found by
alternating large-star / small-star in DataFrames. In each cluster the keep rule picks the
representative; the others leave `silver/documents` with a `near_duplicate` decision.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, LongType, StringType, StructField, StructType

from corpus.minhash import MinHashConfig, band_hashes, shingle_hashes, signatures_from_shingles
from corpus.silver_stages import SOURCE_ORDER
from schemas.silver import DECISIONS, DEDUP_CLUSTERS, DOCUMENTS, SIGNATURES
from spark_jobs.runs import StageResult, StageRun, config_sha256
from spark_jobs.tables import (
    differs,
    ensure_table,
    execute_merge,
    read_table,
    source_values,
    sync_table,
)

log = logging.getLogger(__name__)

STAGE = "near_dedup"
SIGNATURE_BATCH = 512
# Buckets bigger than this (boilerplate shared by thousands of documents) pair each document
# with its next MAX_BUCKET_PAIRS neighbours in doc_id order instead of with all members.
MAX_BUCKET_PAIRS = 200
MAX_STAR_ITERATIONS = 50
# Verification joins every candidate pair with both shingle sets: at 1M documents the local
# default of 4 shuffle partitions ran out of an 8 GB heap, tasks of ~10,000 documents fit.
DOCS_PER_SHUFFLE_PARTITION = 10_000
_SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
_SIGNED = StructType(
    [
        StructField("doc_id", StringType()),
        StructField("text_sha256", StringType()),
        StructField("source", StringType()),
        StructField("n_chars", IntegerType()),
        StructField("n_shingles", IntegerType()),
        StructField("signature", ArrayType(LongType())),
        StructField("bands", ArrayType(LongType())),
        StructField("shingles", ArrayType(LongType())),
    ]
)


def _list_array(values: np.ndarray, offsets: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)),
        pa.array(values.view(np.int64)),
        mask=pa.array(~valid),
    )


def _signature_partition(config: MinHashConfig):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for start in range(0, batch.num_rows, SIGNATURE_BATCH):
                part = batch.slice(start, SIGNATURE_BATCH)
                texts = part.column("text").to_pylist()
                values, offsets = shingle_hashes(texts, config)
                sig, has = signatures_from_shingles(values, offsets, config)
                bands = band_hashes(sig, config.bands, config.rows)
                n = len(texts)
                yield pa.RecordBatch.from_arrays(
                    [
                        part.column("doc_id"),
                        part.column("text_sha256"),
                        part.column("source"),
                        part.column("n_chars"),
                        pa.array(np.diff(offsets).astype(np.int32)),
                        _list_array(sig.ravel(), np.arange(n + 1) * config.num_perm, has),
                        _list_array(
                            bands.ravel().view(np.uint64), np.arange(n + 1) * config.bands, has
                        ),
                        _list_array(values, offsets, np.ones(n, dtype=bool)),
                    ],
                    schema=pa.schema(
                        [(f.name, t) for f, t in zip(_SIGNED.fields, _ARROW_TYPES, strict=True)]
                    ),
                )

    return run


_ARROW_TYPES = [pa.string(), pa.string(), pa.string(), pa.int32(), pa.int32()] + [
    pa.list_(pa.int64())
] * 3


def update_signatures(
    spark: SparkSession, root: str, documents: DataFrame, config: MinHashConfig
) -> int:
    """Compute and store signatures of documents that lack one for their text and settings."""
    settings = config_sha256(config.model_dump(mode="json"))
    stored = read_table(spark, root, SIGNATURES).filter(F.col("config_sha256") == settings)
    missing = documents.join(
        stored.select("doc_id", "text_sha256"), ["doc_id", "text_sha256"], "left_anti"
    )
    signed = (
        missing.select("doc_id", "text_sha256", "source", "n_chars", "text")
        .mapInArrow(_signature_partition(config), _SIGNED)
        .withColumn("config_sha256", F.lit(settings))
    )
    table = ensure_table(spark, root, SIGNATURES)
    values = source_values(SIGNATURES.columns)
    return execute_merge(
        table,
        table.alias("t")
        .merge(signed.alias("s"), "t.doc_id = s.doc_id")
        .whenMatchedUpdate(set=values)
        .whenNotMatchedInsert(values=values),
    ).get("numSourceRows", 0)


def candidate_pairs(signatures: DataFrame) -> DataFrame:
    """Pairs (a < b) sharing at least one band bucket; big buckets are bounded."""
    buckets = signatures.filter(F.col("bands").isNotNull()).select(
        "doc_id", F.posexplode("bands").alias("band", "bucket")
    )
    ranked = buckets.withColumn(
        "rank", F.row_number().over(Window.partitionBy("band", "bucket").orderBy("doc_id"))
    )
    a, b = ranked.alias("a"), ranked.alias("b")
    return (
        a.join(
            b,
            (F.col("a.band") == F.col("b.band"))
            & (F.col("a.bucket") == F.col("b.bucket"))
            & (F.col("b.rank") > F.col("a.rank"))
            & (F.col("b.rank") <= F.col("a.rank") + MAX_BUCKET_PAIRS),
        )
        .select(F.col("a.doc_id").alias("a"), F.col("b.doc_id").alias("b"))
        .distinct()
    )


def verify_pairs(pairs: DataFrame, signatures: DataFrame, threshold: float) -> DataFrame:
    """Candidate pairs with their exact shingle Jaccard and a `verified` flag."""
    shingles = signatures.select("doc_id", "shingles")
    joined = pairs.join(
        shingles.withColumnRenamed("doc_id", "a").withColumnRenamed("shingles", "sa"), "a"
    ).join(shingles.withColumnRenamed("doc_id", "b").withColumnRenamed("shingles", "sb"), "b")
    jaccard = F.size(F.array_intersect("sa", "sb")) / F.size(F.array_union("sa", "sb"))
    return joined.select("a", "b", jaccard.alias("jaccard")).withColumn(
        "verified", F.col("jaccard") >= threshold
    )


def connected_components(edges: DataFrame) -> DataFrame:
    """(node, component) for every node of an undirected edge list (a, b), the component
    being its smallest node: alternating large-star and small-star until nothing changes."""
    current = (
        edges.select(F.least("a", "b").alias("u"), F.greatest("a", "b").alias("v"))
        .filter("u != v")
        .distinct()
        .localCheckpoint()
    )
    for iteration in range(MAX_STAR_ITERATIONS):
        updated = _small_star(_large_star(current)).localCheckpoint()
        if updated.exceptAll(current).isEmpty() and current.exceptAll(updated).isEmpty():
            log.info("connected components converged after %d iteration(s)", iteration + 1)
            break
        current = updated
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_STAR_ITERATIONS} rounds")
    # Converged: a star per component, centred on its smallest node.
    centres = current.select(F.col("v").alias("node"), F.col("u").alias("component"))
    roots = current.select(F.col("u").alias("node"), F.col("u").alias("component"))
    return centres.unionByName(roots).distinct()


def _large_star(edges: DataFrame) -> DataFrame:
    both = edges.unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    smallest = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    return (
        both.join(smallest, "u")
        .filter(F.col("v") > F.col("u"))
        .select(F.least("v", "m").alias("u"), F.greatest("v", "m").alias("v"))
        .filter("u != v")
        .distinct()
    )


def _small_star(edges: DataFrame) -> DataFrame:
    # Edges point from the larger node to its smaller neighbours.
    down = edges.select(F.greatest("u", "v").alias("x"), F.least("u", "v").alias("y"))
    smallest = down.groupBy("x").agg(F.min("y").alias("m"))
    linked = down.join(smallest, "x")
    members = linked.select(F.col("y").alias("n"), "m").unionByName(
        linked.select(F.col("x").alias("n"), "m")
    )
    return (
        members.filter("n != m")
        .select(F.least("n", "m").alias("u"), F.greatest("n", "m").alias("v"))
        .distinct()
    )


def dedup(
    spark: SparkSession,
    root: str,
    config: MinHashConfig,
    keep_order: list[str] | None = None,
) -> StageResult:
    keep_order = keep_order or list(SOURCE_ORDER)
    settings = {"minhash": config.model_dump(mode="json"), "keep_order": keep_order}
    with StageRun(spark, root, "dedup", settings) as run:
        documents = read_table(spark, root, DOCUMENTS)
        with shuffle_partitions_for(spark, documents.count()):
            return _dedup(spark, root, config, keep_order, documents, run)


@contextmanager
def shuffle_partitions_for(spark: SparkSession, rows: int) -> Iterator[int]:
    """Shuffle partitions sized from the data (DOCS_PER_SHUFFLE_PARTITION documents each,
    never fewer than the session's setting) while the block runs; the setting is restored
    after, so later stages keep theirs."""
    before = spark.conf.get(_SHUFFLE_PARTITIONS)
    wanted = max(int(before), math.ceil(rows / DOCS_PER_SHUFFLE_PARTITION))
    if wanted != int(before):
        log.info("dedup: %d shuffle partitions for %d documents", wanted, rows)
    spark.conf.set(_SHUFFLE_PARTITIONS, str(wanted))
    try:
        yield wanted
    finally:
        spark.conf.set(_SHUFFLE_PARTITIONS, before)


def _dedup(
    spark: SparkSession,
    root: str,
    config: MinHashConfig,
    keep_order: list[str],
    documents: DataFrame,
    run: StageRun,
) -> StageResult:
    computed = update_signatures(spark, root, documents, config)
    signatures = _universe(spark, root, documents, config).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        checked = verify_pairs(candidate_pairs(signatures), signatures, config.threshold)
        checked = checked.persist(StorageLevel.MEMORY_AND_DISK)
        counts = {r["verified"]: r["count"] for r in checked.groupBy("verified").count().collect()}
        components = connected_components(checked.filter("verified"))
        clusters = _clusters(components, signatures, keep_order, run.run_id)
        clusters = clusters.persist(StorageLevel.MEMORY_AND_DISK)
        removed = _apply(spark, root, clusters, signatures, run.run_id)
        run.rows_in = signatures.count()
    finally:
        signatures.unpersist()
    sizes = (
        clusters.groupBy("source")
        .agg(
            F.count("*").alias("members"),
            F.sum(F.when(F.col("doc_id") != F.col("representative_id"), 1).otherwise(0)).alias(
                "removed"
            ),
        )
        .collect()
    )
    run.metrics = {
        "signatures_computed": computed,
        "candidate_pairs": counts.get(True, 0) + counts.get(False, 0),
        "rejected_by_verification": counts.get(False, 0),
        "verified_pairs": counts.get(True, 0),
        "clusters": clusters.select("cluster_id").distinct().count(),
        "documents_removed": removed,
        **{f"removed.{r['source']}": int(r["removed"]) for r in sizes},
        **{f"in_clusters.{r['source']}": int(r["members"]) for r in sizes},
    }
    clusters.unpersist()
    checked.unpersist()
    run.rows_out = read_table(spark, root, DOCUMENTS).count()
    log.info("dedup: removed %d near-duplicate(s)", removed)
    return run.finish(DOCUMENTS, [DOCUMENTS, DECISIONS, DEDUP_CLUSTERS, SIGNATURES])


def _universe(
    spark: SparkSession, root: str, documents: DataFrame, config: MinHashConfig
) -> DataFrame:
    """Signatures of every document that `clean` kept: those in silver/documents, and those
    an earlier dedup run removed (so that a re-run sees the same clusters)."""
    settings = config_sha256(config.model_dump(mode="json"))
    clean_kept = (
        read_table(spark, root, DECISIONS).filter("stage = 'exact_dedup' AND kept").select("doc_id")
    )
    current = documents.select("doc_id", F.col("text_sha256").alias("current_sha256"))
    return (
        read_table(spark, root, SIGNATURES)
        .filter(F.col("config_sha256") == settings)
        .join(clean_kept, "doc_id")
        .join(current, "doc_id", "left")
        .filter("current_sha256 IS NULL OR current_sha256 = text_sha256")
        .drop("current_sha256")
    )


def _clusters(
    components: DataFrame,
    signatures: DataFrame,
    keep_order: list[str],
    run_id: str,
) -> DataFrame:
    members = components.join(
        signatures.select(F.col("doc_id").alias("node"), "source", "n_chars"), "node"
    )
    rank = F.array_position(F.array(*[F.lit(s) for s in keep_order]), F.col("source"))
    order = Window.partitionBy("component").orderBy(
        F.when(rank == 0, 1 << 30).otherwise(rank), F.col("n_chars").desc(), F.col("node")
    )
    members = members.withColumn("representative_id", F.first("node").over(order)).withColumn(
        "cluster_size", F.count("*").over(Window.partitionBy("component")).cast("int")
    )
    sig = signatures.select("doc_id", "signature")
    with_sigs = members.join(sig.withColumnRenamed("doc_id", "node"), "node").join(
        sig.select(F.col("doc_id").alias("representative_id"), F.col("signature").alias("rep_sig")),
        "representative_id",
    )
    equal = F.aggregate(
        F.zip_with("signature", "rep_sig", lambda x, y: F.when(x == y, 1).otherwise(0)),
        F.lit(0),
        lambda acc, x: acc + x,
    )
    return with_sigs.select(
        F.col("node").alias("doc_id"),
        F.col("component").alias("cluster_id"),
        "representative_id",
        (equal / F.size("signature")).alias("jaccard_to_representative"),
        "source",
        "cluster_size",
        F.lit(run_id).alias("run_id"),
    )


def _apply(
    spark: SparkSession, root: str, clusters: DataFrame, universe: DataFrame, run_id: str
) -> int:
    """Write clusters, drop the non-representatives from silver/documents, record decisions."""
    sync_table(spark, root, DEDUP_CLUSTERS, clusters)
    removed = clusters.filter(F.col("doc_id") != F.col("representative_id"))
    detail = F.concat(
        F.lit('{"kept": "'),
        F.col("representative_id"),
        F.lit('", "jaccard": '),
        F.format_number("jaccard_to_representative", 3),
        F.lit("}"),
    )
    decisions = (
        universe.select("doc_id", "source")
        .join(
            clusters.select("doc_id", "representative_id", "jaccard_to_representative"),
            "doc_id",
            "left",
        )
        .select(
            "doc_id",
            "source",
            F.lit(STAGE).alias("stage"),
            (
                F.col("representative_id").isNull()
                | (F.col("representative_id") == F.col("doc_id"))
            ).alias("kept"),
            F.when(
                F.col("representative_id").isNotNull()
                & (F.col("representative_id") != F.col("doc_id")),
                F.lit("near_duplicate"),
            ).alias("reason"),
            F.when(F.col("representative_id").isNotNull(), detail)
            .otherwise(F.lit(""))
            .alias("detail"),
            F.lit(run_id).alias("run_id"),
        )
    )
    table = ensure_table(spark, root, DECISIONS)
    dvalues = source_values(DECISIONS.columns)
    dchanged = differs(("kept", "reason", "detail"))
    (
        table.alias("t")
        .merge(decisions.alias("s"), "t.doc_id = s.doc_id AND t.stage = s.stage")
        .whenMatchedUpdate(condition=dchanged, set=dvalues)
        .whenNotMatchedInsert(values=dvalues)
        .execute()
    )
    count = removed.count()
    if count:  # those still in silver/documents leave it
        docs = ensure_table(spark, root, DOCUMENTS)
        (
            docs.alias("t")
            .merge(removed.select("doc_id").alias("s"), "t.doc_id = s.doc_id")
            .whenMatchedDelete()
            .execute()
        )
    return count
