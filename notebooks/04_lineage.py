# Databricks notebook source
# MAGIC %md
# MAGIC # Lineage
# MAGIC
# MAGIC Every token in the Megatron shards can be traced back to its input: a sequence of a
# MAGIC shard (`gold/lineage`: prefix, seq_index) holds one document (`doc_id`), which has a
# MAGIC clean row in `silver/documents` and a record in a bronze table, whose `source_file`
# MAGIC and `locator` say where in which input file it came from. And back: a document's
# MAGIC shards and sequences.
# MAGIC
# MAGIC **Parameters**: `lakehouse`; `prefix` (a shard prefix from `gold/shards`, or its end,
# MAGIC e.g. `train/pubmed_00000`) and `seq` (sequence number from 0); `doc_id` for the reverse
# MAGIC direction. Defaults: the first row of `gold/lineage`.
# MAGIC
# MAGIC **Locally**:
# MAGIC `python -m notebooks.run notebooks/04_lineage.py --param prefix=… --param seq=0`

# COMMAND ----------

import os

from pyspark.errors import AnalysisException

try:  # the gapreplay package (this checkout, or its wheel on the cluster) reads shards
    from corpus.megatron_shards import read_shard
    from corpus.tokenizer import load_tokenizer
except ImportError:
    read_shard = load_tokenizer = None

# On Databricks `spark`, `display` and `dbutils` exist already; locally the shim gives them.
if "dbutils" not in globals():
    from notebooks._local import dbutils, display, spark

dbutils.widgets.text("lakehouse", "./lakehouse", "Lakehouse root")
LAKEHOUSE = dbutils.widgets.get("lakehouse").rstrip("/")

SOURCES = ["pubmed", "pmc", "guidelines", "replay"]
TABLES = [f"bronze/{s}" for s in SOURCES] + [
    "silver/documents",
    "silver/decisions",
    "gold/corpus",
    "gold/shards",
    "gold/lineage",
    "_runs",
]

# Each Delta table becomes a view named <layer>_<table>, e.g. gold_lineage.
present = []
for table in TABLES:
    view = table.replace("/", "_")
    try:
        spark.read.format("delta").load(f"{LAKEHOUSE}/{table}").createOrReplaceTempView(view)
        present.append(table)
    except AnalysisException:
        spark.catalog.dropTempView(view)
        print(f"{table}: not in {LAKEHOUSE} (yet)")
if "gold/lineage" not in present:
    dbutils.notebook.exit("no gold/lineage yet: run the shards stage first")


def literal(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def local_path(path: str) -> str:
    """Where a file of the lakehouse is on this machine (DBFS is mounted at /dbfs)."""
    if path.startswith("dbfs:/"):
        return "/dbfs/" + path.removeprefix("dbfs:/")
    return path.removeprefix("file:")


def one_row(query: str) -> dict | None:
    rows = spark.sql(query).limit(1).collect()
    return rows[0].asDict() if rows else None


def fields(layer: str, row: dict | None, columns: list[str]) -> list[tuple[str, str, str]]:
    """(layer, column, value) rows for a vertical table."""
    if row is None:
        return [(layer, "(no row)", "")]
    return [(layer, c, str(row.get(c))) for c in columns if c in row]


# COMMAND ----------

# MAGIC %md
# MAGIC ## From a shard sequence to the input file
# MAGIC
# MAGIC Set `prefix` and `seq`. The table reads top to bottom: the sequence, the shard, the
# MAGIC document in the corpus, its clean text in silver, its bronze record, the ingest run
# MAGIC that read it and whether the input file is on this machine.

# COMMAND ----------

first = one_row("SELECT prefix, seq_index, doc_id FROM gold_lineage ORDER BY prefix, seq_index")
dbutils.widgets.text("prefix", first["prefix"] if first else "", "Shard prefix")
dbutils.widgets.text("seq", str(first["seq_index"]) if first else "0", "Sequence number")
PREFIX = dbutils.widgets.get("prefix").strip()
SEQ = int(dbutils.widgets.get("seq"))

# The prefix as gold/shards names it, or its end (train/pubmed_00000).
sequence = one_row(f"""
    SELECT l.prefix, l.seq_index, l.doc_id, l.n_tokens, l.run_id AS shards_run_id,
           s.split, s.source, s.n_docs AS shard_sequences, s.tokenizer, s.dtype,
           s.bin_sha256
    FROM gold_lineage l LEFT JOIN gold_shards s ON s.prefix = l.prefix
    WHERE (l.prefix = {literal(PREFIX)} OR endswith(l.prefix, {literal("/" + PREFIX)}))
      AND l.seq_index = {SEQ}""")
if sequence is None:
    dbutils.notebook.exit(f"no sequence {SEQ} in a shard {PREFIX!r} (gold/lineage)")
DOC = sequence["doc_id"]

gold = one_row(f"SELECT * FROM gold_corpus WHERE doc_id = {literal(DOC)}")
silver = one_row(f"SELECT * EXCEPT (text) FROM silver_documents WHERE doc_id = {literal(DOC)}")
source = (silver or gold or sequence)["source"]
bronze = one_row(f"SELECT * FROM bronze_{source} WHERE doc_id = {literal(DOC)}")
ingest = bronze and one_row(
    f"SELECT * FROM _runs WHERE run_id = {literal(bronze['ingest_run_id'])}"
)
file_on_disk = bool(bronze) and os.path.exists(local_path(bronze["source_file"]))

lineage = [
    *fields("gold/lineage", sequence, ["prefix", "seq_index", "doc_id", "n_tokens"]),
    *fields("gold/shards", sequence, ["split", "source", "shard_sequences", "tokenizer"]),
    *fields("gold/corpus", gold, ["split", "n_tokens", "epochs", "license", "text_sha256"]),
    *fields(
        "silver/documents",
        silver,
        ["source", "title", "n_chars", "language", "text_sha256", "source_file", "locator"],
    ),
    *fields(
        f"bronze/{source}",
        bronze,
        ["doc_id", "source_file", "locator", "supersede_key", "record_sha256", "ingest_run_id"],
    ),
    *fields("_runs", ingest, ["stage", "status", "started_at", "code_version"]),
    ("input file", "exists on this machine", str(file_on_disk)),
]
display(spark.createDataFrame(lineage, "layer STRING, field STRING, value STRING"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Check: the sequence's tokens are the document's text
# MAGIC
# MAGIC Reads the sequence from the shard's `.bin`/`.idx` files and compares it with the
# MAGIC document's clean text tokenized by the tokenizer shipped beside the shards, plus the
# MAGIC end-of-document token. Needs the gapreplay package and the shard files.

# COMMAND ----------

shard_dir = os.path.dirname(os.path.dirname(local_path(sequence["prefix"])))
if read_shard is None:
    print("the gapreplay package is not installed here: skipped")
elif not os.path.exists(local_path(sequence["prefix"]) + ".bin"):
    print(f"{sequence['prefix']}.bin is not on this machine: skipped")
else:
    tokenizer_dir = os.path.join(shard_dir, "tokenizer")
    if not os.path.isdir(tokenizer_dir):
        tokenizer_dir = local_path(f"{LAKEHOUSE}/gold/tokenizer")
    tokenizer = load_tokenizer(tokenizer_dir)
    with read_shard(local_path(sequence["prefix"])) as shard:
        tokens = [int(t) for t in shard[SEQ]]
    text = spark.sql(f"SELECT text FROM silver_documents WHERE doc_id = {literal(DOC)}").first()
    expected = [*tokenizer.encode_batch([text["text"]])[0], tokenizer.eod_id] if text else []
    display(
        spark.createDataFrame(
            [
                (
                    sequence["prefix"],
                    SEQ,
                    DOC,
                    len(tokens),
                    tokens == expected,
                    tokenizer.decode(tokens[:80]),
                )
            ],
            "prefix STRING, seq_index LONG, doc_id STRING, tokens INT,"
            " matches_silver_text BOOLEAN, decoded_head STRING",
        )
    )

# COMMAND ----------

# MAGIC %md
# MAGIC ## From a document to its shards and sequences
# MAGIC
# MAGIC Set `doc_id` (default: the document above). A document in the corpus has one
# MAGIC sequence; one that is not says why (its decisions in `silver/decisions`).

# COMMAND ----------

dbutils.widgets.text("doc_id", DOC, "Document id")
DOC_ID = dbutils.widgets.get("doc_id").strip()

sequences = spark.sql(f"""
    SELECT l.doc_id, l.prefix, l.seq_index, l.n_tokens, s.split, s.source
    FROM gold_lineage l LEFT JOIN gold_shards s ON s.prefix = l.prefix
    WHERE l.doc_id = {literal(DOC_ID)}
    ORDER BY l.prefix, l.seq_index""")
display(sequences)
if sequences.isEmpty():
    print(f"{DOC_ID} is in no shard.")
    if "silver/decisions" in present:
        display(
            spark.sql(f"""
                SELECT stage, kept, reason, detail FROM silver_decisions
                WHERE doc_id = {literal(DOC_ID)} AND NOT kept""")
        )
