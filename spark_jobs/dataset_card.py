"""The dataset card: a markdown page beside the shards saying what the corpus holds and how
it was made (sources, licences, documents and tokens, every filter with its counts, the Delta
versions of the tables it was built from, and the config hash)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from schemas.gold import CORPUS, LINEAGE, SHARDS
from schemas.silver import DECISIONS, DOCUMENTS
from spark_jobs.tables import read_table, table_version


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def write_dataset_card(
    spark: SparkSession, root: str, path: Path, manifest: dict[str, Any]
) -> Path:
    corpus = read_table(spark, root, CORPUS)
    by_source = (
        corpus.groupBy("source", "split")
        .agg(F.count("*").alias("docs"), F.sum("n_tokens").alias("tokens"), F.max("epochs"))
        .orderBy("source", "split")
        .collect()
    )
    licences = corpus.groupBy("source", "license").count().orderBy("source", "license").collect()
    filters = (
        read_table(spark, root, DECISIONS)
        .filter("NOT kept")
        .groupBy("stage", "reason", "source")
        .count()
        .orderBy("stage", "reason", "source")
        .collect()
    )
    tokenizer = manifest["tokenizer"]
    lines = [
        "# Dataset card",
        "",
        "A GAP-Replay style medical pretraining corpus built by gapreplay.",
        "",
        f"- shards run: `{manifest['run_id']}`",
        f"- config sha256: `{manifest['config_sha256']}`",
        f"- tokenizer: {tokenizer['name']} (vocabulary {tokenizer['vocab_size']}, EOD id "
        f"{tokenizer['eod_id']}, fingerprint `{tokenizer['fingerprint'][:16]}`), "
        f"tokens stored as {tokenizer['dtype']}",
        "",
        "## Documents and tokens per source and split",
        "",
        *_table(
            ["source", "split", "documents", "tokens", "epochs"],
            [[r["source"], r["split"], r["docs"], r["tokens"], r[4]] for r in by_source],
        ),
        "## Licences",
        "",
        *_table(
            ["source", "licence", "documents"],
            [[r["source"], r["license"], r["count"]] for r in licences],
        ),
        "## Filters applied (documents dropped, by stage and reason)",
        "",
        *_table(
            ["stage", "reason", "source", "documents"],
            [[r["stage"], r["reason"], r["source"], r["count"]] for r in filters],
        ),
        "## Delta versions of the tables this build read and wrote",
        "",
        *_table(
            ["table", "version"],
            [
                [spec.path, table_version(spark, root, spec)]
                for spec in (DOCUMENTS, DECISIONS, CORPUS, SHARDS, LINEAGE)
            ],
        ),
        "## Shards",
        "",
        *_table(
            ["prefix", "split", "source", "documents", "tokens", "bin sha256"],
            [
                [
                    # `<split>/<source>_<n>`: the prefix below the shard folder.
                    "/".join(s["prefix"].rsplit("/", 2)[-2:]),
                    s["split"],
                    s["source"],
                    s["n_docs"],
                    s["n_tokens"],
                    s["bin_sha256"][:16],
                ]
                for s in manifest["shards"]
            ],
        ),
    ]
    staging = path.with_name(path.name + ".tmp")
    staging.write_text("\n".join(lines))
    staging.replace(path)
    return path
