"""Silver: one clean text per kept document, all sources in one schema, and every decision."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
)

from schemas.table_spec import TableSpec, col

SOURCES = ("pubmed", "pmc", "guidelines", "replay")
_SOURCE_CHECK = "source IN ('pubmed', 'pmc', 'guidelines', 'replay')"

DOCUMENTS = TableSpec(
    path="silver/documents",
    comment="Documents kept by every silver stage run so far (clean, then dedup), clean text",
    keys=("doc_id",),
    schema=StructType(
        [
            col("doc_id", StringType(), "document id, as in bronze", nullable=False),
            col("source", StringType(), "pubmed, pmc, guidelines or replay", nullable=False),
            col("title", StringType(), "title (abstracts, papers, guidelines)"),
            col("text", StringType(), "cleaned text, the training text", nullable=False),
            col("n_chars", IntegerType(), "characters of text", nullable=False),
            col("language", StringType(), "detected language (ISO 639-1)", nullable=False),
            col("language_prob", DoubleType(), "probability of the detected language"),
            col("license", StringType(), "normalised licence, carried from bronze", nullable=False),
            col("pmid", LongType(), "PubMed id (abstracts, papers that have one)"),
            col("pmcid", StringType(), "PMC id (papers, abstracts of papers in PMC)"),
            col("doi", StringType(), "DOI, lower-cased"),
            col("origin", StringType(), "guideline publisher key or replay subset"),
            col(
                "text_sha256",
                StringType(),
                "hash of the normalised text (exact duplicates)",
                nullable=False,
            ),
            col("source_file", StringType(), "the bronze record's input file", nullable=False),
            col(
                "locator", StringType(), "where in source_file the bronze record is", nullable=False
            ),
            col("run_id", StringType(), "the run that last changed this row", nullable=False),
        ]
    ),
    constraints={"source_known": _SOURCE_CHECK, "n_chars_positive": "n_chars > 0"},
)

DECISIONS = TableSpec(
    path="silver/decisions",
    comment="One row per document and silver stage it reached: kept or dropped, and why",
    keys=("doc_id", "stage"),
    schema=StructType(
        [
            col("doc_id", StringType(), "document id", nullable=False),
            col("source", StringType(), "pubmed, pmc, guidelines or replay", nullable=False),
            col(
                "stage",
                StringType(),
                "clean, pii, language, quality, retraction, cross_source, exact_dedup,"
                " near_dedup, decontamination",
                nullable=False,
            ),
            col("kept", BooleanType(), "whether the document passed this stage", nullable=False),
            col("reason", StringType(), "why it was dropped (null when kept)"),
            col("detail", StringType(), "measurements, the kept twin, the matching item, …"),
            col("run_id", StringType(), "the run that last changed this row", nullable=False),
        ]
    ),
    constraints={"source_known": _SOURCE_CHECK, "reason_iff_dropped": "kept = (reason IS NULL)"},
)

SIGNATURES = TableSpec(
    path="silver/minhash_signatures",
    comment="MinHash signatures and shingle sets of silver documents, kept so that a later"
    " batch is deduplicated against the corpus without recomputing it",
    keys=("doc_id",),
    schema=StructType(
        [
            col("doc_id", StringType(), "document id", nullable=False),
            col(
                "text_sha256",
                StringType(),
                "hash of the text the signature was computed on",
                nullable=False,
            ),
            col("config_sha256", StringType(), "hash of the MinHash settings", nullable=False),
            col("source", StringType(), "pubmed, pmc, guidelines or replay", nullable=False),
            col("n_chars", IntegerType(), "characters of the text (keep rule)", nullable=False),
            col("n_shingles", IntegerType(), "distinct word n-gram shingles", nullable=False),
            col(
                "signature",
                ArrayType(LongType()),
                "min over shingles of (a_i*x+b_i) mod 2^61-1; null when too few shingles",
            ),
            col("bands", ArrayType(LongType()), "LSH band hashes of the signature"),
            col("shingles", ArrayType(LongType()), "sorted distinct shingle hashes (verification)"),
        ]
    ),
)

DEDUP_CLUSTERS = TableSpec(
    path="silver/dedup_clusters",
    comment="Documents in a near-duplicate cluster, with the copy the keep rule kept",
    keys=("doc_id",),
    schema=StructType(
        [
            col("doc_id", StringType(), "document id", nullable=False),
            col("cluster_id", StringType(), "smallest doc_id of the cluster", nullable=False),
            col("representative_id", StringType(), "the kept copy (keep rule)", nullable=False),
            col(
                "jaccard_to_representative",
                DoubleType(),
                "estimated Jaccard (MinHash) to the representative",
                nullable=False,
            ),
            col("source", StringType(), "pubmed, pmc, guidelines or replay", nullable=False),
            col("cluster_size", IntegerType(), "documents in the cluster", nullable=False),
            col("run_id", StringType(), "the run that last changed this row", nullable=False),
        ]
    ),
)
