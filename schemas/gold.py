"""Gold: the mixed corpus with its splits, the Megatron shards, and each sequence's lineage."""

from __future__ import annotations

from pyspark.sql.types import DoubleType, IntegerType, LongType, StringType, StructType

from schemas.silver import SOURCES
from schemas.table_spec import TableSpec, col

SPLITS = ("train", "valid", "test")
_SOURCE_CHECK = "source IN ({})".format(", ".join(f"'{s}'" for s in SOURCES))
_SPLIT_CHECK = "split IN ({})".format(", ".join(f"'{s}'" for s in SPLITS))

CORPUS = TableSpec(
    path="gold/corpus",
    comment="Documents in the final mix: their split, token count and epochs (GAP-Replay recipe)",
    keys=("doc_id",),
    schema=StructType(
        [
            col("doc_id", StringType(), "document id, as in silver/documents", nullable=False),
            col("source", StringType(), "pubmed, pmc, guidelines or replay", nullable=False),
            col("origin", StringType(), "guideline publisher key or replay subset"),
            col("license", StringType(), "normalised licence", nullable=False),
            col("split", StringType(), "train, valid or test (seeded hash of doc_id)", False),
            col(
                "n_tokens", LongType(), "tokens with the configured tokenizer, EOD included", False
            ),
            col(
                "epochs",
                DoubleType(),
                "times the document is seen per pass over the mix (the blend weight's factor)",
                nullable=False,
            ),
            col("text_sha256", StringType(), "silver's hash of the normalised text", False),
            col("run_id", StringType(), "the run that last changed this row", nullable=False),
        ]
    ),
    constraints={
        "source_known": _SOURCE_CHECK,
        "split_known": _SPLIT_CHECK,
        "tokens_positive": "n_tokens > 0",
        "epochs_positive": "epochs > 0",
    },
)

SHARDS = TableSpec(
    path="gold/shards",
    comment="Megatron-LM .bin/.idx shards of the last shards run: one row per shard",
    keys=("prefix",),
    schema=StructType(
        [
            col(
                "prefix", StringType(), "shard path without .bin/.idx, as the blend names it", False
            ),
            col("split", StringType(), "train, valid or test", nullable=False),
            col("source", StringType(), "the one source whose documents the shard holds", False),
            col("file_index", IntegerType(), "number of the shard within (split, source)", False),
            col("n_docs", LongType(), "sequences (one per document)", nullable=False),
            col("n_tokens", LongType(), "tokens, EOD included", nullable=False),
            col("dtype", StringType(), "token dtype: uint16 or int32", nullable=False),
            col("tokenizer", StringType(), "tokenizer name and fingerprint", nullable=False),
            col("bin_sha256", StringType(), "SHA-256 of the .bin file", nullable=False),
            col("idx_sha256", StringType(), "SHA-256 of the .idx file", nullable=False),
            col("run_id", StringType(), "the shards run that wrote it", nullable=False),
        ]
    ),
    constraints={"split_known": _SPLIT_CHECK, "source_known": _SOURCE_CHECK},
)

LINEAGE = TableSpec(
    path="gold/lineage",
    comment="Every sequence of every shard and the document it holds",
    keys=("prefix", "seq_index"),
    schema=StructType(
        [
            col("prefix", StringType(), "shard path without extension (gold/shards)", False),
            col("seq_index", LongType(), "sequence number within the shard, from 0", False),
            col("doc_id", StringType(), "document id (silver/documents, gold/corpus)", False),
            col("n_tokens", LongType(), "tokens of the sequence, EOD included", nullable=False),
            col("run_id", StringType(), "the shards run that wrote it", nullable=False),
        ]
    ),
    constraints={"tokens_positive": "n_tokens > 0"},
)
