"""Gold job `gapreplay mix`: the GAP-Replay recipe over `silver/documents` into `gold/corpus`.

What goes in: every silver document that decontamination did not exclude, that the licence
filter allows, and, of replay, a token-budget sample (corpus.sampler: a seeded priority per
doc_id, so the sample does not depend on order or partitioning). Each document gets

- its split by a seeded hash of doc_id and its source's held-out share (corpus.splits), so a
  document's split never changes when others come or go;
- its token count with the configured tokenizer, EOD included (tokenized on the executors
  over Arrow batches; a tokenizer of kind "bpe" is first trained here on the train split);
- its epochs (the source's, on train; 1 on valid and test), which the shards stage turns
  into blend weights, as Megatron-LM upsamples: by weight, not by copying documents.

Documents the mix leaves out get a `mix` decision in `silver/decisions` with the reason
(`license_excluded`, `replay_not_sampled`); every document that reaches gold gets a kept one.
The tokenizer is saved under `<lakehouse>/gold/tokenizer`, where `shards` takes it from.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from corpus.licenses import COMMERCIAL_OK
from corpus.sampler import priority_hex_sql, subset_budgets
from corpus.splits import split_sql, unit_hash_sql
from corpus.tokenizer import (
    CorpusTokenizer,
    TokenizerConfig,
    build_tokenizer,
    load_tokenizer,
    train_bpe,
)
from schemas.gold import CORPUS
from schemas.silver import DECISIONS, DOCUMENTS
from spark_jobs import storage
from spark_jobs.config import MixConfig
from spark_jobs.decisions import merge_decisions
from spark_jobs.runs import StageResult, StageRun
from spark_jobs.tables import (
    read_table,
    sync_table,
)

log = logging.getLogger(__name__)

STAGE = "mix"
TOKENIZER_DIR = "gold/tokenizer"
BATCH_ROWS = 512
_COUNTED = StructType(
    [StructField("doc_id", StringType(), False), StructField("n_tokens", LongType(), False)]
)


def tokenizer_dir(root: str) -> str:
    return storage.join(root, TOKENIZER_DIR)


def _count_partition(shipped: object):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tokenizer = CorpusTokenizer.from_bytes(shipped.value)  # type: ignore[attr-defined]
        for batch in batches:
            for start in range(0, batch.num_rows, BATCH_ROWS):
                part = batch.slice(start, BATCH_ROWS)
                encoded = tokenizer.encode_batch(part.column("text").to_pylist())
                counts = pa.array([len(ids) + 1 for ids in encoded], pa.int64())  # + EOD
                yield pa.RecordBatch.from_arrays(
                    [part.column("doc_id"), counts], ["doc_id", "n_tokens"]
                )

    return run


def count_tokens(
    spark: SparkSession, documents: DataFrame, tokenizer: CorpusTokenizer
) -> DataFrame:
    """(doc_id, n_tokens) with the tokenizer, EOD included."""
    shipped = spark.sparkContext.broadcast(tokenizer.to_bytes())
    return documents.select("doc_id", "text").mapInArrow(_count_partition(shipped), _COUNTED)


def _sources_map(config: MixConfig, field: str) -> Column:
    pairs = []
    for source, settings in sorted(config.sources.items()):
        pairs += [F.lit(source), F.lit(float(getattr(settings, field)))]
    return F.create_map(*pairs)


def with_splits(documents: DataFrame, config: MixConfig) -> DataFrame:
    """The split column, by seeded hash of doc_id and the source's held-out share."""
    heldout = F.coalesce(_sources_map(config, "heldout")[F.col("source")], F.lit(0.0))
    epochs = F.coalesce(_sources_map(config, "epochs")[F.col("source")], F.lit(1.0))
    return (
        documents.withColumn("_heldout", heldout)
        .withColumn("split", F.expr(split_sql(config.seed, "_heldout", config.test_fraction)))
        .withColumn("epochs", F.when(F.col("split") == "train", epochs).otherwise(F.lit(1.0)))
        .drop("_heldout")
    )


def resolve_tokenizer(
    spark: SparkSession,
    root: str,
    train_docs: DataFrame,
    config: TokenizerConfig,
    max_chars: int,
    seed: int,
) -> CorpusTokenizer:
    """The configured tokenizer, saved under `<lakehouse>/gold/tokenizer`; a "bpe" one is
    trained on the train split, read in a seeded order up to `max_chars` characters."""
    if config.kind == "bpe":
        ordered = train_docs.select("text", F.expr(unit_hash_sql(seed)).alias("u")).orderBy(
            "u", "text"
        )
        tokenizer = train_bpe(_capped(ordered.select("text").toLocalIterator(), max_chars), config)
    else:
        tokenizer = build_tokenizer(config)
    target = tokenizer_dir(root)
    local = storage.local_path(target)
    if local is None:
        storage.remove(target)
        with storage.local_folder(target) as folder:
            tokenizer.save(folder)
    else:
        staging = local.with_name(local.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        tokenizer.save(staging)
        shutil.rmtree(local, ignore_errors=True)
        staging.rename(local)
    with storage.local_copy(target) as folder:
        return load_tokenizer(folder)


def _capped(rows: Iterator, max_chars: int) -> Iterator[str]:  # type: ignore[type-arg]
    seen = 0
    for row in rows:
        if seen >= max_chars:
            return
        seen += len(row.text)
        yield row.text


def replay_selection(
    replay: DataFrame, config: MixConfig, domain_train_tokens: float
) -> tuple[DataFrame, dict[str, int]]:
    """The replay documents in the token budget (corpus.sampler's rule), and the budgets."""
    if config.replay.budget_tokens is not None:
        budget = config.replay.budget_tokens
    elif config.replay.share is not None:
        # replay / (domain + replay) = share
        budget = int(domain_train_tokens * config.replay.share / (1 - config.replay.share))
    else:
        budget = None
    subset = F.coalesce(F.col("origin"), F.lit("unknown"))
    replay = replay.withColumn("subset", subset)
    if budget is None:
        return replay.withColumn("sampled", F.lit(True)), {}
    tokens = {
        r["subset"]: int(r["t"])
        for r in replay.groupBy("subset").agg(F.sum("n_tokens").alias("t")).collect()
    }
    budgets = subset_budgets(tokens, budget, config.replay.subset_shares)
    order = Window.partitionBy("subset").orderBy(F.expr(priority_hex_sql(config.seed)), "doc_id")
    before = F.coalesce(
        F.sum("n_tokens").over(order.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)
    )
    pairs = [x for s, b in sorted(budgets.items()) for x in (F.lit(s), F.lit(b))]
    limit = F.coalesce(F.create_map(*pairs)[F.col("subset")], F.lit(0)) if pairs else F.lit(0)
    return replay.withColumn("sampled", before < limit), budgets


def mix(
    spark: SparkSession, root: str, config: MixConfig, tokenizer_config: TokenizerConfig
) -> StageResult:
    settings = {
        "mix": config.model_dump(mode="json"),
        "tokenizer": tokenizer_config.model_dump(mode="json"),
    }
    with StageRun(spark, root, STAGE, settings) as run:
        documents = read_table(spark, root, DOCUMENTS)
        excluded = (
            read_table(spark, root, DECISIONS)
            .filter("stage = 'decontamination' AND NOT kept")
            .select("doc_id")
        )
        candidates = with_splits(documents.join(excluded, "doc_id", "left_anti"), config)
        allowed = license_allowed(config)
        candidates = candidates.withColumn("license_ok", allowed)
        usable = candidates.filter("license_ok")
        tokenizer = resolve_tokenizer(
            spark,
            root,
            usable.filter("split = 'train'"),
            tokenizer_config,
            config.tokenizer_training_chars,
            config.seed,
        )
        counted = usable.join(count_tokens(spark, usable, tokenizer), "doc_id").persist(
            StorageLevel.MEMORY_AND_DISK
        )
        try:
            domain = counted.filter("source != 'replay'")
            domain_train = (
                domain.filter("split = 'train'")
                .agg(F.sum(F.col("n_tokens") * F.col("epochs")).alias("t"))
                .first()["t"]
                or 0
            )
            replay, budgets = replay_selection(
                counted.filter("source = 'replay'"), config, domain_train
            )
            mixed = domain.withColumn("sampled", F.lit(True)).unionByName(
                replay.drop("subset"), allowMissingColumns=False
            )
            rows = mixed.filter("sampled").select(
                *[F.lit(run.run_id).alias(c) if c == "run_id" else F.col(c) for c in CORPUS.columns]
            )
            written = sync_table(spark, root, CORPUS, rows)
            decisions = _decisions(candidates, mixed, run.run_id)
            merge_decisions(spark, root, decisions, [STAGE])
            per_source = (
                rows.groupBy("source", "split")
                .agg(F.count("*").alias("docs"), F.sum("n_tokens").alias("tokens"))
                .collect()
            )
            dropped = decisions.filter("NOT kept").groupBy("reason", "source").count().collect()
        finally:
            counted.unpersist()
        run.rows_in = documents.count()
        run.rows_out = sum(r["docs"] for r in per_source)
        run.metrics = {
            **{f"docs.{r['source']}.{r['split']}": r["docs"] for r in per_source},
            **{f"tokens.{r['source']}.{r['split']}": int(r["tokens"]) for r in per_source},
            **{f"dropped.{r['reason']}.{r['source']}": r["count"] for r in dropped},
            **{f"replay_budget.{s}": b for s, b in budgets.items()},
            "tokenizer_vocab_size": tokenizer.vocab_size,
            **{f"gold_{k}": v for k, v in written.items() if k.startswith("numTarget")},
        }
        log.info(
            "mix: %d documents in gold/corpus, tokenizer %s saved to %s",
            run.rows_out,
            tokenizer.name,
            tokenizer_dir(root),
        )
        return run.finish(CORPUS, [CORPUS, DECISIONS])


def license_allowed(config: MixConfig) -> Column:
    """True for a document whose licence the mix may use (`licenses`, `commercial_only`)."""
    allowed = F.lit(True)
    if config.licenses is not None:
        allowed = allowed & F.col("license").isin(list(config.licenses))
    if config.commercial_only:
        allowed = allowed & F.col("license").isin(sorted(COMMERCIAL_OK))
    return allowed


def _decisions(candidates: DataFrame, mixed: DataFrame, run_id: str) -> DataFrame:
    sampled = mixed.select("doc_id", "sampled")
    joined = candidates.select("doc_id", "source", "license", "license_ok").join(
        sampled, "doc_id", "left"
    )
    reason = F.when(~F.col("license_ok"), F.lit("license_excluded")).when(
        ~F.col("sampled"), F.lit("replay_not_sampled")
    )
    detail = F.when(
        ~F.col("license_ok"), F.concat(F.lit('{"license": "'), F.col("license"), F.lit('"}'))
    )
    return joined.select(
        "doc_id",
        "source",
        F.lit(STAGE).alias("stage"),
        reason.isNull().alias("kept"),
        reason.alias("reason"),
        F.coalesce(detail, F.lit("")).alias("detail"),
        F.lit(run_id).alias("run_id"),
    )
