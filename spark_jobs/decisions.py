"""Writing a stage's decisions into `silver/decisions`, the one table every stage shares."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession

from schemas.silver import DECISIONS
from spark_jobs.tables import differs, ensure_table, execute_merge, source_values


def merge_decisions(
    spark: SparkSession, root: str, decisions: DataFrame, owned_stages: Sequence[str]
) -> dict[str, int]:
    """MERGE (doc_id, stage) rows: changed ones updated, new ones inserted, and a decision of
    one of `owned_stages` that this run no longer makes (its document gone, or now dropped
    by an earlier stage) deleted; other stages' decisions are theirs to keep."""
    table = ensure_table(spark, root, DECISIONS)
    values = source_values(DECISIONS.columns)
    owned = ", ".join(f"'{s}'" for s in owned_stages)
    return execute_merge(
        table,
        table.alias("t")
        .merge(decisions.alias("s"), "t.doc_id = s.doc_id AND t.stage = s.stage")
        .whenMatchedUpdate(condition=differs(("kept", "reason", "detail", "source")), set=values)
        .whenNotMatchedInsert(values=values)
        .whenNotMatchedBySourceDelete(condition=f"t.stage IN ({owned})"),
    )
