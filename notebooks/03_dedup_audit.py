# Databricks notebook source
# MAGIC %md
# MAGIC # Deduplication audit
# MAGIC
# MAGIC Near duplicates are found by MinHash + LSH and grouped into clusters
# MAGIC (`silver/dedup_clusters`); the keep rule keeps one copy per cluster (by source: pmc,
# MAGIC guidelines, pubmed, replay; then the longer text; then the smaller id) and the others
# MAGIC are dropped at stage `near_dedup`. Exact duplicates (same normalised text) and
# MAGIC abstracts whose full text is in PMC are dropped earlier, at `exact_dedup` and
# MAGIC `cross_source`.
# MAGIC
# MAGIC **Parameters**: `lakehouse`; `cluster_id`, the cluster shown side by side (default:
# MAGIC the largest).
# MAGIC
# MAGIC **Locally**: `python -m notebooks.run notebooks/03_dedup_audit.py --param cluster_id=…`

# COMMAND ----------

import matplotlib.pyplot as plt
from pyspark.errors import AnalysisException

# On Databricks `spark`, `display` and `dbutils` exist already; locally the shim gives them.
if "dbutils" not in globals():
    from notebooks._local import dbutils, display, spark

dbutils.widgets.text("lakehouse", "./lakehouse", "Lakehouse root")
LAKEHOUSE = dbutils.widgets.get("lakehouse").rstrip("/")

SOURCES = ["pubmed", "pmc", "guidelines", "replay"]
TABLES = [f"bronze/{s}" for s in SOURCES] + [
    "silver/documents",
    "silver/decisions",
    "silver/dedup_clusters",
]
# Stand-ins for tables a lakehouse may not have yet (the columns used here).
EMPTY = {
    "silver/documents": "doc_id STRING, text STRING, n_chars INT",
    "silver/decisions": "doc_id STRING, source STRING, stage STRING, kept BOOLEAN,"
    " reason STRING, detail STRING",
    "silver/dedup_clusters": "doc_id STRING, cluster_id STRING, representative_id STRING,"
    " jaccard_to_representative DOUBLE, source STRING, cluster_size INT",
}

# Each Delta table becomes a view named <layer>_<table>, e.g. silver_dedup_clusters.
present = []
for table in TABLES:
    view = table.replace("/", "_")
    try:
        spark.read.format("delta").load(f"{LAKEHOUSE}/{table}").createOrReplaceTempView(view)
        present.append(table)
    except AnalysisException:
        print(f"{table}: not in {LAKEHOUSE} (yet)")
        spark.catalog.dropTempView(view)
        if table in EMPTY:
            spark.createDataFrame([], EMPTY[table]).createOrReplaceTempView(view)

# The text of every bronze record, as extracted (before cleaning), by doc_id.
BRONZE_TEXT = {
    "pubmed": "concat_ws('\\n\\n', title, abstract)",
    "pmc": "concat_ws('\\n\\n', title, abstract, body)",
    "guidelines": "concat_ws('\\n\\n', title, raw_text)",
    "replay": "text",
}
spark.sql(
    " UNION ALL ".join(
        f"SELECT doc_id, '{s}' AS source, {text} AS text FROM bronze_{s}"
        for s, text in BRONZE_TEXT.items()
        if f"bronze/{s}" in present
    )
    or "SELECT '' AS doc_id, '' AS source, '' AS text LIMIT 0"
).createOrReplaceTempView("bronze_texts")

# A document's text: the clean one while it is in silver, else the bronze extraction.
texts = spark.sql("""
    SELECT b.doc_id,
           CASE WHEN s.doc_id IS NOT NULL THEN 'silver' ELSE 'bronze' END AS text_from,
           coalesce(s.text, b.text) AS text,
           coalesce(s.n_chars, length(b.text)) AS n_chars
    FROM bronze_texts b LEFT JOIN silver_documents s ON s.doc_id = b.doc_id""")
texts.createOrReplaceTempView("texts")


def literal(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# COMMAND ----------

# MAGIC %md
# MAGIC ## Cluster-size distribution
# MAGIC
# MAGIC Clusters of each size, the documents in them and how many of those were removed (all
# MAGIC but the kept representative).

# COMMAND ----------

cluster_sizes = spark.sql("""
    SELECT cluster_size, count(DISTINCT cluster_id) AS clusters, count(*) AS documents,
           count_if(doc_id != representative_id) AS removed
    FROM silver_dedup_clusters
    GROUP BY cluster_size ORDER BY cluster_size""")
display(cluster_sizes)

sizes = cluster_sizes.toPandas()
if len(sizes):
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(sizes.cluster_size.astype(str), sizes.clusters)
    ax.set_xlabel("documents in the cluster")
    ax.set_ylabel("clusters")
    ax.set_title("Near-duplicate clusters by size")
    display(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Removed near duplicates by source and similarity
# MAGIC
# MAGIC Which source's copy was removed in favour of which source's copy, and the estimated
# MAGIC Jaccard similarity (MinHash) of the removed copies to the kept one.

# COMMAND ----------

display(
    spark.sql("""
        SELECT r.source AS removed_source, k.source AS kept_source, count(*) AS removed,
               round(min(r.jaccard_to_representative), 3) AS min_jaccard,
               round(avg(r.jaccard_to_representative), 3) AS mean_jaccard
        FROM silver_dedup_clusters r
        JOIN silver_dedup_clusters k ON k.doc_id = r.representative_id
        WHERE r.doc_id != r.representative_id
        GROUP BY ALL ORDER BY removed DESC, removed_source, kept_source""")
)
display(
    spark.sql("""
        SELECT floor(jaccard_to_representative * 20) / 20 AS jaccard_from, count(*) AS removed
        FROM silver_dedup_clusters WHERE doc_id != representative_id
        GROUP BY 1 ORDER BY 1""")
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## One cluster side by side
# MAGIC
# MAGIC Set the `cluster_id` widget (a cluster's id is its smallest `doc_id`). One column per
# MAGIC document: the kept representative first, then the removed copies, most similar first
# MAGIC (at most 5 shown).

# COMMAND ----------

largest = spark.sql("""
    SELECT cluster_id FROM silver_dedup_clusters
    ORDER BY cluster_size DESC, cluster_id LIMIT 1""").collect()
dbutils.widgets.text("cluster_id", largest[0]["cluster_id"] if largest else "", "Cluster id")
CLUSTER_ID = dbutils.widgets.get("cluster_id").strip()

cluster = spark.sql(f"""
    SELECT c.doc_id,
           CASE WHEN c.doc_id = c.representative_id THEN 'kept' ELSE 'removed' END AS role,
           c.source, c.cluster_size, round(c.jaccard_to_representative, 3) AS jaccard,
           d.reason AS near_dedup_reason, t.n_chars, t.text_from,
           left(t.text, 1500) AS text_head
    FROM silver_dedup_clusters c
    LEFT JOIN silver_decisions d ON d.doc_id = c.doc_id AND d.stage = 'near_dedup'
    LEFT JOIN texts t ON t.doc_id = c.doc_id
    WHERE c.cluster_id = {literal(CLUSTER_ID)}
    ORDER BY role, jaccard DESC, c.doc_id""").toPandas()
if cluster.empty:
    print(f"no cluster {CLUSTER_ID!r} in silver/dedup_clusters")
else:
    print(f"cluster {CLUSTER_ID}: {len(cluster)} documents")
    display(cluster.head(6).set_index("doc_id").T.reset_index(names="field"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Exact duplicates and abstracts of PMC papers
# MAGIC
# MAGIC Documents dropped at `exact_dedup` (same normalised text as the kept twin) and at
# MAGIC `cross_source` (a PubMed abstract whose paper's full text is in PMC), with the copy
# MAGIC that was kept (`detail`).

# COMMAND ----------

display(
    spark.sql("""
        SELECT d.stage, d.doc_id, d.source, d.detail AS kept_copy,
               left(t.text, 200) AS text_head, left(k.text, 200) AS kept_text_head
        FROM silver_decisions d
        LEFT JOIN texts t ON t.doc_id = d.doc_id
        LEFT JOIN texts k ON k.doc_id = d.detail
        WHERE d.stage IN ('exact_dedup', 'cross_source') AND NOT d.kept
        ORDER BY d.stage, d.doc_id""")
)
