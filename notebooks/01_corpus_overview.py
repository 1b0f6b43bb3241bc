# Databricks notebook source
# MAGIC %md
# MAGIC # Corpus overview
# MAGIC
# MAGIC How many documents of each source entered the lakehouse, how many each stage kept,
# MAGIC and how many documents and tokens ended up in the corpus (`gold/corpus`) and in the
# MAGIC Megatron shards (`gold/shards`); then the length distributions.
# MAGIC
# MAGIC **Parameter**: `lakehouse`, the lakehouse root (a local path, `dbfs:/…`,
# MAGIC `/Volumes/…`, `s3://…`).
# MAGIC
# MAGIC **Locally**: `python -m notebooks.run notebooks/01_corpus_overview.py --lakehouse lakehouse`

# COMMAND ----------

import matplotlib.pyplot as plt
from pyspark.errors import AnalysisException

# On Databricks `spark`, `display` and `dbutils` exist already; locally the shim gives them.
if "dbutils" not in globals():
    from notebooks._local import dbutils, display, spark

dbutils.widgets.text("lakehouse", "./lakehouse", "Lakehouse root")
LAKEHOUSE = dbutils.widgets.get("lakehouse").rstrip("/")

SOURCES = ["pubmed", "pmc", "guidelines", "replay"]
# Decision stages in the order a document meets them (silver/decisions.stage).
STAGES = [
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
]
TABLES = [f"bronze/{s}" for s in SOURCES] + [
    "silver/documents",
    "silver/decisions",
    "gold/corpus",
    "gold/shards",
]

# Each Delta table becomes a view named <layer>_<table>, e.g. silver_documents.
present = []
for table in TABLES:
    view = table.replace("/", "_")
    try:
        spark.read.format("delta").load(f"{LAKEHOUSE}/{table}").createOrReplaceTempView(view)
        present.append(table)
    except AnalysisException:
        spark.catalog.dropTempView(view)
        print(f"{table}: not in {LAKEHOUSE} (yet)")
if not present:
    dbutils.notebook.exit(f"no tables under {LAKEHOUSE}: build the corpus first")
stage_order = spark.createDataFrame(list(enumerate(STAGES)), "stage_rank INT, stage STRING")
stage_order.createOrReplaceTempView("stage_order")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Documents per source per stage
# MAGIC
# MAGIC `bronze`: records ingested. Then, for each decision stage of `silver/decisions`, the
# MAGIC documents it **kept** (blank where a source does not go through the stage). Then the
# MAGIC documents now in `silver/documents`, in `gold/corpus` and in `gold/shards`.
# MAGIC Decontamination and mixing decide at gold, so `silver/documents` still holds the
# MAGIC documents they dropped.

# COMMAND ----------

counts = [
    f"SELECT 0 AS step, 'bronze' AS stage, '{s}' AS source, count(*) AS documents FROM bronze_{s}"
    for s in SOURCES
    if f"bronze/{s}" in present
]
if "silver/decisions" in present:
    counts.append("""
        SELECT 1 + coalesce(o.stage_rank, 50) AS step, d.stage, d.source,
               count_if(d.kept) AS documents
        FROM silver_decisions d LEFT JOIN stage_order o ON d.stage = o.stage
        GROUP BY ALL""")
for step, table, documents in [
    (100, "silver/documents", "count(*)"),
    (101, "gold/corpus", "count(*)"),
    (102, "gold/shards", "sum(n_docs)"),
]:
    if table in present:
        counts.append(f"""
            SELECT {step} AS step, '{table}' AS stage, source, {documents} AS documents
            FROM {table.replace("/", "_")} GROUP BY source""")

spark.sql(" UNION ALL ".join(counts)).createOrReplaceTempView("stage_counts")
per_source = ",\n".join(f"sum(documents) FILTER (WHERE source = '{s}') AS {s}" for s in SOURCES)
documents_per_stage = spark.sql(f"""
    SELECT stage, {per_source}, sum(documents) AS total
    FROM stage_counts
    GROUP BY step, stage
    ORDER BY step""")
display(documents_per_stage)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tokens per source
# MAGIC
# MAGIC `gold/corpus`: documents and tokens of the mix (EOD included), `tokens_x_epochs` the
# MAGIC tokens seen per pass over the mix and its share; `gold/shards`: what the shards hold.

# COMMAND ----------

if "gold/corpus" in present and "gold/shards" in present:
    tokens_per_source = spark.sql("""
        WITH corpus AS (
            SELECT source, count(*) AS documents, sum(n_tokens) AS tokens,
                   sum(n_tokens * epochs) AS tokens_x_epochs
            FROM gold_corpus GROUP BY source),
        shards AS (
            SELECT source, count(*) AS shards, sum(n_docs) AS shard_documents,
                   sum(n_tokens) AS shard_tokens
            FROM gold_shards GROUP BY source)
        SELECT source, c.documents, c.tokens, c.tokens_x_epochs,
               round(c.tokens_x_epochs / sum(c.tokens_x_epochs) OVER (), 4) AS mix_share,
               s.shards, s.shard_documents, s.shard_tokens
        FROM corpus c FULL OUTER JOIN shards s USING (source)
        ORDER BY source""")
    display(tokens_per_source)
    # The same by split (train, valid, test).
    display(
        spark.sql("""
            SELECT source, split, count(*) AS documents, sum(n_tokens) AS tokens
            FROM gold_corpus GROUP BY source, split ORDER BY source, split""")
    )
else:
    print("no gold/corpus or gold/shards yet: run the mix and shards stages")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Length distributions
# MAGIC
# MAGIC Characters of the clean text per source (`silver/documents.n_chars`) and tokens per
# MAGIC document in the corpus (`gold/corpus.n_tokens`): quantiles, then histograms on a log
# MAGIC scale (computed in Spark, so they scale to the full corpus).

# COMMAND ----------


def quantiles(view: str, column: str):
    return spark.sql(f"""
        SELECT source, count(*) AS documents, min({column}) AS min,
               percentile_approx({column}, 0.1) AS p10,
               percentile_approx({column}, 0.5) AS median,
               percentile_approx({column}, 0.9) AS p90,
               max({column}) AS max, round(avg({column}), 1) AS mean, sum({column}) AS total
        FROM {view} GROUP BY source ORDER BY source""")


def log_histogram(view: str, column: str, title: str):
    # Bins a quarter of a decade wide: 10^(k/4) <= value < 10^((k+1)/4).
    bins = spark.sql(f"""
        SELECT source, floor(log10({column}) * 4) / 4 AS log10_low, count(*) AS documents
        FROM {view} WHERE {column} > 0 GROUP BY ALL ORDER BY source, log10_low""").toPandas()
    # One row per bin (empty bins included), one column per source.
    table = bins.pivot(index="log10_low", columns="source", values="documents")
    low, high = table.index.min(), table.index.max()
    table = table.reindex([low + k / 4 for k in range(round((high - low) * 4) + 1)]).fillna(0)
    edges = [10**b for b in [*table.index, table.index[-1] + 0.25]]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for source in table.columns:
        ax.stairs(table[source], edges, label=source, linewidth=2)
    ax.set_xscale("log")
    ax.set_xlabel(column)
    ax.set_ylabel("documents")
    ax.set_title(title)
    ax.legend()
    return fig


if "silver/documents" in present:
    display(quantiles("silver_documents", "n_chars"))
    display(log_histogram("silver_documents", "n_chars", "Characters per document (silver)"))
if "gold/corpus" in present:
    display(quantiles("gold_corpus", "n_tokens"))
    display(log_histogram("gold_corpus", "n_tokens", "Tokens per document (gold)"))
