"""Documents (and tokens, once counted) per source after each stage, for the summary that
`gapreplay corpus` prints and the auditors' overview."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from schemas.bronze import GUIDELINES, PMC, PUBMED, REPLAY
from schemas.gold import CORPUS, SHARDS
from schemas.silver import DECISIONS
from spark_jobs.tables import read_table, table_exists

BRONZE = {"pubmed": PUBMED, "pmc": PMC, "guidelines": GUIDELINES, "replay": REPLAY}
# The last decision stage of each job: a document kept there is what the job hands on.
DECISION_STAGES = (
    ("clean", "exact_dedup"),
    ("dedup", "near_dedup"),
    ("decontaminate", "decontamination"),
)


def stage_counts(spark: SparkSession, root: str) -> list[dict[str, Any]]:
    """Rows (stage, source, documents, tokens); tokens is None before the mix counts them."""
    rows: list[dict[str, Any]] = []
    for source, spec in BRONZE.items():
        if table_exists(spark, root, spec):
            n = read_table(spark, root, spec).count()
            rows.append({"stage": "ingest", "source": source, "documents": n, "tokens": None})
    decisions = read_table(spark, root, DECISIONS)
    kept = decisions.filter("kept").groupBy("stage", "source").count().collect()
    counts = {(r["stage"], r["source"]): r["count"] for r in kept}
    for job, stage in DECISION_STAGES:
        for source in BRONZE:
            if (stage, source) in counts:
                rows.append(
                    {
                        "stage": job,
                        "source": source,
                        "documents": counts[(stage, source)],
                        "tokens": None,
                    }
                )
    for stage, spec, docs in (("mix", CORPUS, F.count("*")), ("shards", SHARDS, F.sum("n_docs"))):
        for r in (
            read_table(spark, root, spec)
            .groupBy("source")
            .agg(docs.alias("documents"), F.sum("n_tokens").alias("tokens"))
            .orderBy("source")
            .collect()
        ):
            rows.append({"stage": stage, **r.asDict()})
    return rows
