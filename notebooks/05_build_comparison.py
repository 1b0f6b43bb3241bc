# Databricks notebook source
# MAGIC %md
# MAGIC # Build comparison
# MAGIC
# MAGIC What changed between two builds of the corpus, read by Delta time travel
# MAGIC (`VERSION AS OF`): documents added, removed (with the reason from
# MAGIC `silver/decisions`, if any) and changed (`text_sha256` differs) in `silver/documents`
# MAGIC and `gold/corpus`, and the document and token deltas per source.
# MAGIC
# MAGIC **Parameters**: `lakehouse`; `table`, the table whose Delta versions `from_version` and
# MAGIC `to_version` are (default `gold/corpus`; defaults: its previous and latest version).
# MAGIC The other table is compared as it was at the same two moments (the versions current
# MAGIC when those commits were made). `DESCRIBE HISTORY` lists the versions.
# MAGIC
# MAGIC **Locally**:
# MAGIC `python -m notebooks.run notebooks/05_build_comparison.py --param from_version=3`

# COMMAND ----------

from pyspark.errors import AnalysisException

# On Databricks `spark`, `display` and `dbutils` exist already; locally the shim gives them.
if "dbutils" not in globals():
    from notebooks._local import dbutils, display, spark

dbutils.widgets.text("lakehouse", "./lakehouse", "Lakehouse root")
LAKEHOUSE = dbutils.widgets.get("lakehouse").rstrip("/")

COMPARED = ["silver/documents", "gold/corpus"]
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


def history(table: str):
    """The table's commits (version, timestamp, operation), oldest first; None if absent."""
    try:
        return (
            spark.sql(f"DESCRIBE HISTORY delta.`{LAKEHOUSE}/{table}`")
            .select("version", "timestamp", "operation")
            .orderBy("version")
            .toPandas()
        )
    except AnalysisException:
        return None


histories = {t: history(t) for t in COMPARED}
if all(h is None for h in histories.values()):
    dbutils.notebook.exit("neither silver/documents nor gold/corpus exists yet: nothing to compare")

# Why documents left: the decisions that dropped them, and PubMed deletions (empty
# stand-ins where the lakehouse has no such table).
EMPTY = {
    "silver/decisions": "doc_id STRING, stage STRING, kept BOOLEAN, reason STRING",
    "bronze/pubmed_deletions": "pmid BIGINT",
}
for table, columns in EMPTY.items():
    view = table.replace("/", "_")
    try:
        spark.read.format("delta").load(f"{LAKEHOUSE}/{table}").createOrReplaceTempView(view)
    except AnalysisException:
        spark.createDataFrame([], columns).createOrReplaceTempView(view)
stage_order = spark.createDataFrame(list(enumerate(STAGES)), "stage_rank INT, stage STRING")
stage_order.createOrReplaceTempView("stage_order")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Versions compared

# COMMAND ----------

default_table = "gold/corpus" if histories["gold/corpus"] is not None else "silver/documents"
dbutils.widgets.dropdown("table", default_table, COMPARED, "Versions of")
TABLE = dbutils.widgets.get("table")
versions = histories[TABLE]
if versions is None:
    dbutils.notebook.exit(f"{TABLE} does not exist yet")
latest = int(versions.version.max())
dbutils.widgets.text("from_version", str(max(latest - 1, 0)), "From version")
dbutils.widgets.text("to_version", str(latest), "To version")
FROM, TO = int(dbutils.widgets.get("from_version")), int(dbutils.widgets.get("to_version"))
if not {FROM, TO} <= set(versions.version):
    dbutils.notebook.exit(f"{TABLE} has versions {sorted(versions.version)}, not {FROM} and {TO}")
moments = {
    "from": versions.timestamp[versions.version == FROM].iloc[0],
    "to": versions.timestamp[versions.version == TO].iloc[0],
}


def version_at(table: str, moment):
    """The table's version current at `moment`; None if it did not exist yet."""
    h = histories[table]
    if h is None or not (h.timestamp <= moment).any():
        return None
    return int(h.version[h.timestamp <= moment].max())


compared = []
for table in COMPARED:
    if histories[table] is None:
        continue
    for end in ["from", "to"]:
        if table == TABLE:
            version = {"from": FROM, "to": TO}[end]
        else:
            version = version_at(table, moments[end])
        # The table as it was then (empty before it existed), as a view: silver_from, …
        path = f"{LAKEHOUSE}/{table}"
        as_of = "WHERE false" if version is None else f"VERSION AS OF {version}"
        snapshot = spark.sql(f"SELECT * FROM delta.`{path}` {as_of}")
        snapshot.createOrReplaceTempView(f"{table.split('/')[0]}_{end}")
        compared.append((table, end, version, str(moments[end])))
display(spark.createDataFrame(compared, "table STRING, end STRING, version INT, as_of STRING"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Documents changed in silver/documents
# MAGIC
# MAGIC `removed` documents carry the first stage (in pipeline order) that now drops them, or
# MAGIC `deleted upstream` for PubMed citations withdrawn by an update file.

# COMMAND ----------

# Why each document was removed: a PubMed deletion, else the first stage (in pipeline
# order) whose decision drops it.
removal_reasons = spark.sql("""
    WITH reasons AS (
        SELECT d.doc_id, concat(d.stage, ': ', d.reason) AS reason,
               coalesce(o.stage_rank, 50) AS rank
        FROM silver_decisions d LEFT JOIN stage_order o ON d.stage = o.stage
        WHERE NOT d.kept
        UNION ALL
        SELECT concat('pubmed:', pmid), 'deleted upstream (PubMed DeleteCitation)', -1
        FROM bronze_pubmed_deletions)
    SELECT doc_id, min_by(reason, rank) AS reason FROM reasons GROUP BY doc_id""")
removal_reasons.createOrReplaceTempView("removal_reasons")


def changes(before: str, after: str, columns: list[str]):
    """Documents added, removed or changed between two views; `columns` shown before/after."""
    shown = ", ".join(f"a.{c} AS {c}_from, b.{c} AS {c}_to" for c in columns)
    differs = " OR ".join(f"NOT (a.{c} <=> b.{c})" for c in ["text_sha256", *columns])
    return spark.sql(f"""
        SELECT CASE WHEN a.doc_id IS NULL THEN 'added'
                    WHEN b.doc_id IS NULL THEN 'removed'
                    ELSE 'changed' END AS change,
               coalesce(b.doc_id, a.doc_id) AS doc_id, coalesce(b.source, a.source) AS source,
               CASE WHEN b.doc_id IS NULL THEN r.reason END AS reason,
               NOT (a.text_sha256 <=> b.text_sha256) AND a.doc_id IS NOT NULL
                   AND b.doc_id IS NOT NULL AS text_changed,
               {shown}
        FROM {before} a FULL OUTER JOIN {after} b ON a.doc_id = b.doc_id
        LEFT JOIN removal_reasons r ON r.doc_id = coalesce(b.doc_id, a.doc_id)
        WHERE a.doc_id IS NULL OR b.doc_id IS NULL OR {differs}
        ORDER BY change, source, doc_id""")


summary = []
if histories["silver/documents"] is not None:
    silver_changes = changes("silver_from", "silver_to", ["n_chars"])
    display(silver_changes)
    summary.append(("silver/documents", silver_changes))
else:
    print("no silver/documents")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Documents changed in gold/corpus
# MAGIC
# MAGIC Besides the text, a change of split, token count or epochs counts as a change.

# COMMAND ----------

if histories["gold/corpus"] is not None:
    gold_changes = changes("gold_from", "gold_to", ["split", "n_tokens", "epochs"])
    display(gold_changes)
    summary.append(("gold/corpus", gold_changes))
else:
    print("no gold/corpus")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Summary and deltas per source
# MAGIC
# MAGIC Documents added, removed and changed per table; then documents and characters of
# MAGIC `silver/documents` and documents and tokens of `gold/corpus` per source, before, after
# MAGIC and the difference.

# COMMAND ----------

for table, frame in summary:
    frame.createOrReplaceTempView("summary_" + table.split("/")[0])
display(
    spark.sql(
        " UNION ALL ".join(
            f"""SELECT '{table}' AS table, count_if(change = 'added') AS added,
                       count_if(change = 'removed') AS removed,
                       count_if(change = 'changed') AS changed
                FROM summary_{table.split("/")[0]}"""
            for table, _ in summary
        )
    )
)


def deltas(before: str, after: str, measure: str):
    """Documents and sum(measure) per source in two views, and the differences."""
    return spark.sql(f"""
        WITH a AS (SELECT source, count(*) AS documents, sum({measure}) AS m
                   FROM {before} GROUP BY source),
             b AS (SELECT source, count(*) AS documents, sum({measure}) AS m
                   FROM {after} GROUP BY source)
        SELECT source,
               coalesce(a.documents, 0) AS documents_from,
               coalesce(b.documents, 0) AS documents_to,
               coalesce(b.documents, 0) - coalesce(a.documents, 0) AS documents_delta,
               coalesce(a.m, 0) AS {measure}_from, coalesce(b.m, 0) AS {measure}_to,
               coalesce(b.m, 0) - coalesce(a.m, 0) AS {measure}_delta
        FROM a FULL OUTER JOIN b USING (source)
        ORDER BY source""")


if histories["silver/documents"] is not None:
    display(deltas("silver_from", "silver_to", "n_chars"))
if histories["gold/corpus"] is not None:
    display(deltas("gold_from", "gold_to", "n_tokens"))
