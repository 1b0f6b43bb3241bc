"""The auditors' questions, answered from the tables: where a token came from (`lineage`),
why a document is or is not in the corpus (`why`), and what changed between two builds
(`diff`, by Delta time travel)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from schemas.bronze import GUIDELINES, PMC, PUBMED, PUBMED_DELETIONS, REPLAY
from schemas.gold import CORPUS, LINEAGE
from schemas.runs import RUNS
from schemas.silver import DECISIONS, DOCUMENTS
from schemas.table_spec import TableSpec
from spark_jobs.tables import read_table, table_exists, table_path

BRONZE_BY_SOURCE = {"pubmed": PUBMED, "pmc": PMC, "guidelines": GUIDELINES, "replay": REPLAY}
# The order stages run in, for listing a document's decisions.
STAGE_ORDER = (
    "clean",
    "pii",
    "language",
    "quality",
    "retraction",
    "cross_source",
    "exact_dedup",
    "near_dedup",
    "decontamination",
    "mix",
)


class NotFoundError(LookupError):
    """An id, sequence or version the lakehouse does not have."""


def _one(frame: DataFrame, what: str) -> dict[str, Any]:
    rows = frame.limit(2).collect()
    if not rows:
        raise NotFoundError(f"no {what}")
    return rows[0].asDict()


def lineage_of_sequence(spark: SparkSession, root: str, prefix: str, seq: int) -> dict[str, Any]:
    """Shard sequence -> document -> bronze record (its source file and locator).

    `prefix` may be the full prefix from gold/shards or its end (e.g. "train/pubmed_00000").
    """
    lineage = read_table(spark, root, LINEAGE)
    matches = lineage.filter((F.col("prefix") == prefix) | F.col("prefix").endswith("/" + prefix))
    row = _one(matches.filter(F.col("seq_index") == seq), f"sequence {seq} in shard {prefix}")
    return {"sequence": row, **lineage_of_document(spark, root, row["doc_id"])}


def lineage_of_document(spark: SparkSession, root: str, doc_id: str) -> dict[str, Any]:
    """Document -> its shard sequences, gold row, silver row and bronze record."""
    silver = _one(
        read_table(spark, root, DOCUMENTS).filter(F.col("doc_id") == doc_id),
        f"document {doc_id} in silver/documents",
    )
    bronze_spec = BRONZE_BY_SOURCE[silver["source"]]
    bronze = _one(
        read_table(spark, root, bronze_spec).filter(F.col("doc_id") == doc_id),
        f"bronze record of {doc_id} in {bronze_spec.path}",
    )
    gold = read_table(spark, root, CORPUS).filter(F.col("doc_id") == doc_id).collect()
    sequences = (
        read_table(spark, root, LINEAGE)
        .filter(F.col("doc_id") == doc_id)
        .orderBy("prefix", "seq_index")
        .collect()
    )
    return {
        "doc_id": doc_id,
        "sequences": [r.asDict() for r in sequences],
        "gold": gold[0].asDict() if gold else None,
        "silver": {k: v for k, v in silver.items() if k != "text"},
        "bronze_table": bronze_spec.path,
        "bronze": bronze,
    }


def why(spark: SparkSession, root: str, doc_id: str) -> list[dict[str, Any]]:
    """Every decision about a document, in stage order; empty when there is none."""
    rows = [
        r.asDict()
        for r in read_table(spark, root, DECISIONS).filter(F.col("doc_id") == doc_id).collect()
    ]
    rank = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["stage"], len(rank)), r["stage"]))


@dataclass(frozen=True)
class BuildPoint:
    """One end of a diff: a moment in the lakehouse's history and what it was given as."""

    label: str
    timestamp: dt.datetime


def resolve_point(spark: SparkSession, root: str, value: str) -> BuildPoint:
    """A Delta version of silver/documents, or a run id (or its first 8+ characters) from
    `_runs`, as the moment after that commit or run."""
    if value.isdigit():
        path = table_path(root, DOCUMENTS)
        history = DeltaTable.forPath(spark, path).history().select("version", "timestamp")
        row = history.filter(F.col("version") == int(value)).first()
        if row is None:
            raise NotFoundError(f"silver/documents has no version {value}")
        return BuildPoint(f"silver/documents v{value}", row["timestamp"])
    runs = read_table(spark, root, RUNS).filter(F.col("run_id").startswith(value)).collect()
    if len(runs) != 1:
        raise NotFoundError(f"{len(runs)} runs match {value!r}: give a version or a longer id")
    return BuildPoint(f"run {runs[0]['run_id'][:8]} ({runs[0]['stage']})", runs[0]["finished_at"])


def _as_of(spark: SparkSession, root: str, spec: TableSpec, point: BuildPoint) -> DataFrame:
    """The table as it was at `point`; empty if it did not exist yet."""
    if not table_exists(spark, root, spec):
        return spark.createDataFrame([], spec.schema)
    path = table_path(root, spec)
    history = DeltaTable.forPath(spark, path).history()
    first, last = history.agg(F.min("timestamp"), F.max("timestamp")).first()
    if point.timestamp < first:
        return spark.createDataFrame([], spec.schema)
    reader = spark.read.format("delta")
    if point.timestamp < last:  # Delta refuses a time after the latest commit
        reader = reader.option("timestampAsOf", point.timestamp.isoformat())
    return reader.load(path)


def diff(spark: SparkSession, root: str, start: str, end: str) -> dict[str, Any]:
    """Documents added, removed (with the reason) and changed between two builds, and the
    token deltas per source of gold/corpus."""
    a, b = resolve_point(spark, root, start), resolve_point(spark, root, end)
    before = _as_of(spark, root, DOCUMENTS, a).select(
        "doc_id", "source", F.col("text_sha256").alias("sha_a")
    )
    after = _as_of(spark, root, DOCUMENTS, b).select(
        "doc_id", "source", F.col("text_sha256").alias("sha_b")
    )
    joined = before.join(after, ["doc_id", "source"], "full_outer")
    added = sorted((r.doc_id, r.source) for r in joined.filter("sha_a IS NULL").collect())
    changed = sorted(
        (r.doc_id, r.source)
        for r in joined.filter(
            "sha_a IS NOT NULL AND sha_b IS NOT NULL AND sha_a != sha_b"
        ).collect()
    )
    gone = [(r.doc_id, r.source) for r in joined.filter("sha_b IS NULL").collect()]
    reasons = {
        r.doc_id: f"{r.stage}: {r.reason}"
        for r in _as_of(spark, root, DECISIONS, b).filter("NOT kept").collect()
    }
    tombstones = {
        f"pubmed:{r.pmid}"
        for r in _as_of(spark, root, PUBMED_DELETIONS, b).select("pmid").collect()
    }
    removed = sorted(
        (
            doc_id,
            source,
            reasons.get(doc_id)
            or ("deleted upstream" if doc_id in tombstones else "gone from bronze"),
        )
        for doc_id, source in gone
    )
    tokens = {}
    for label, point in (("before", a), ("after", b)):
        for r in (
            _as_of(spark, root, CORPUS, point)
            .groupBy("source")
            .agg(F.sum("n_tokens").alias("t"))
            .collect()
        ):
            tokens.setdefault(r.source, {"before": 0, "after": 0})[label] = int(r.t)
    return {
        "from": a.label,
        "to": b.label,
        "added": added,
        "removed": removed,
        "changed": changed,
        "tokens": {s: {**t, "delta": t["after"] - t["before"]} for s, t in sorted(tokens.items())},
    }
