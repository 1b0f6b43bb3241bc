# Databricks notebook source
# MAGIC %md
# MAGIC # Filter audit
# MAGIC
# MAGIC Every document that reached a stage has a row in `silver/decisions`: kept, or dropped
# MAGIC with a `reason` and a `detail` (measurements, the kept twin, the matching benchmark
# MAGIC item). This notebook counts the drops per stage and reason, shows a few dropped
# MAGIC documents of each, and follows one document through every stage.
# MAGIC
# MAGIC **Parameters**: `lakehouse` (the lakehouse root); `doc_id`, the document to follow
# MAGIC (default: the first document dropped); `samples`, dropped documents shown per reason.
# MAGIC
# MAGIC **Locally**: `python -m notebooks.run notebooks/02_filter_audit.py --param doc_id=…`

# COMMAND ----------

from pyspark.errors import AnalysisException

# On Databricks `spark`, `display` and `dbutils` exist already; locally the shim gives them.
if "dbutils" not in globals():
    from notebooks._local import dbutils, display, spark

dbutils.widgets.text("lakehouse", "./lakehouse", "Lakehouse root")
dbutils.widgets.text("samples", "3", "Dropped documents shown per reason")
LAKEHOUSE = dbutils.widgets.get("lakehouse").rstrip("/")
SAMPLES = int(dbutils.widgets.get("samples"))

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
    "gold/lineage",
]

# Stand-ins for tables a lakehouse may not have yet (the columns used here).
EMPTY = {
    "silver/documents": "doc_id STRING, text STRING",
    "gold/corpus": "doc_id STRING",
    "gold/lineage": "doc_id STRING",
}

# Each Delta table becomes a view named <layer>_<table>, e.g. silver_decisions.
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
if "silver/decisions" not in present:
    dbutils.notebook.exit("no silver/decisions yet: run the clean stage first")

stage_order = spark.createDataFrame(list(enumerate(STAGES)), "stage_rank INT, stage STRING")
stage_order.createOrReplaceTempView("stage_order")

# The text of every bronze record, as extracted (before cleaning), by doc_id.
BRONZE_TEXT = {
    "pubmed": "concat_ws('\\n\\n', title, abstract)",
    "pmc": "concat_ws('\\n\\n', title, abstract, body)",
    "guidelines": "concat_ws('\\n\\n', title, raw_text)",
    "replay": "text",
}
spark.sql(
    " UNION ALL ".join(
        f"SELECT doc_id, '{s}' AS source, {text} AS text, source_file, locator FROM bronze_{s}"
        for s, text in BRONZE_TEXT.items()
        if f"bronze/{s}" in present
    )
    or "SELECT '' AS doc_id, '' AS source, '' AS text, '' AS source_file, '' AS locator LIMIT 0"
).createOrReplaceTempView("bronze_texts")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Documents reaching, kept and dropped by each stage

# COMMAND ----------

display(
    spark.sql("""
        SELECT d.stage, count(*) AS reached, count_if(d.kept) AS kept,
               count_if(NOT d.kept) AS dropped
        FROM silver_decisions d LEFT JOIN stage_order o ON d.stage = o.stage
        GROUP BY coalesce(o.stage_rank, 50), d.stage
        ORDER BY coalesce(o.stage_rank, 50), d.stage""")
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Dropped documents per stage and reason

# COMMAND ----------

per_source = ",\n".join(f"count_if(d.source = '{s}') AS {s}" for s in SOURCES)
dropped_per_reason = spark.sql(f"""
    SELECT d.stage, d.reason, count(*) AS dropped, {per_source}
    FROM silver_decisions d LEFT JOIN stage_order o ON d.stage = o.stage
    WHERE NOT d.kept
    GROUP BY coalesce(o.stage_rank, 50), d.stage, d.reason
    ORDER BY coalesce(o.stage_rank, 50), d.stage, dropped DESC, d.reason""")
display(dropped_per_reason)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Sample dropped documents
# MAGIC
# MAGIC The first `samples` documents (by id) of each stage and reason, with the head of their
# MAGIC text: the clean text from `silver/documents` where the document is still there
# MAGIC (decontamination and mixing drop at gold), else the extracted text from bronze.

# COMMAND ----------

samples = spark.sql(f"""
    WITH dropped AS (
        SELECT d.*, coalesce(o.stage_rank, 50) AS stage_rank,
               row_number() OVER (PARTITION BY d.stage, d.reason ORDER BY d.doc_id) AS n
        FROM silver_decisions d LEFT JOIN stage_order o ON d.stage = o.stage
        WHERE NOT d.kept)
    SELECT d.stage, d.reason, d.doc_id, d.source, d.detail,
           CASE WHEN s.doc_id IS NOT NULL THEN 'silver' ELSE 'bronze' END AS text_from,
           left(coalesce(s.text, b.text), 300) AS text_head
    FROM dropped d
    LEFT JOIN silver_documents s ON s.doc_id = d.doc_id
    LEFT JOIN bronze_texts b ON b.doc_id = d.doc_id
    WHERE d.n <= {SAMPLES}
    ORDER BY d.stage_rank, d.stage, d.reason, d.doc_id""")
display(samples)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Drill-down: every decision about one document
# MAGIC
# MAGIC Set the `doc_id` widget. The decisions come in stage order; a document has a row for
# MAGIC each stage it reached, so its last row is where it stopped if it was dropped.

# COMMAND ----------

first_dropped = spark.sql("""
    SELECT d.doc_id FROM silver_decisions d LEFT JOIN stage_order o ON d.stage = o.stage
    WHERE NOT d.kept ORDER BY coalesce(o.stage_rank, 50), d.doc_id LIMIT 1""").collect()
any_document = spark.sql("SELECT min(doc_id) AS doc_id FROM silver_decisions").collect()
default_doc = (first_dropped or any_document)[0]["doc_id"] or ""
dbutils.widgets.text("doc_id", default_doc, "Document id")
DOC_ID = dbutils.widgets.get("doc_id").strip()


def literal(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


doc = literal(DOC_ID)
decisions = spark.sql(f"""
    SELECT d.stage, d.kept, d.reason, d.detail, d.source, d.run_id
    FROM silver_decisions d LEFT JOIN stage_order o ON d.stage = o.stage
    WHERE d.doc_id = {doc}
    ORDER BY coalesce(o.stage_rank, 50), d.stage""")
print(f"Decisions about {DOC_ID}:")
display(decisions)

# Where the document is now, layer by layer, and the head of its text.
display(
    spark.sql(f"""
        SELECT {doc} AS doc_id,
               (SELECT count(*) FROM bronze_texts WHERE doc_id = {doc}) > 0 AS in_bronze,
               (SELECT count(*) FROM silver_documents WHERE doc_id = {doc}) > 0 AS in_silver,
               (SELECT count(*) FROM gold_corpus WHERE doc_id = {doc}) > 0 AS in_gold,
               (SELECT count(*) FROM gold_lineage WHERE doc_id = {doc}) AS shard_sequences,
               coalesce(
                   (SELECT first(left(text, 500)) FROM silver_documents WHERE doc_id = {doc}),
                   (SELECT first(left(text, 500)) FROM bronze_texts WHERE doc_id = {doc})
               ) AS text_head""")
)
