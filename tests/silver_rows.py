"""Planting documents straight into silver, for tests of the stages after `clean`."""

from __future__ import annotations

from typing import Any

from corpus.silver_stages import text_hash
from schemas.silver import DECISIONS, DOCUMENTS
from spark_jobs.tables import merge_into


def document_row(
    doc_id: str, source: str, text: str, run_id: str = "test", **columns: Any
) -> dict[str, Any]:
    """A silver/documents row; `columns` sets pmid, license, origin, … (else defaults)."""
    row = {
        "doc_id": doc_id,
        "source": source,
        "title": None,
        "text": text,
        "n_chars": len(text),
        "language": "en",
        "language_prob": 1.0,
        "license": "unknown",
        "pmid": None,
        "pmcid": None,
        "doi": None,
        "origin": None,
        "text_sha256": text_hash(text),
        "source_file": "planted",
        "locator": doc_id,
        "run_id": run_id,
    }
    unknown = set(columns) - set(row)
    if unknown:
        raise KeyError(f"not silver/documents columns: {sorted(unknown)}")
    return {**row, **columns}


def add_documents(spark, root: str, rows: list[dict[str, Any]], run_id: str = "test") -> None:  # type: ignore[no-untyped-def]
    """Merge documents into silver/documents, each with a kept `exact_dedup` decision (what
    `clean` leaves for the stages after it)."""
    decisions = [
        {
            "doc_id": r["doc_id"],
            "source": r["source"],
            "stage": "exact_dedup",
            "kept": True,
            "reason": None,
            "detail": "",
            "run_id": run_id,
        }
        for r in rows
    ]
    merge_into(spark, root, DOCUMENTS, spark.createDataFrame(rows, DOCUMENTS.schema))
    merge_into(spark, root, DECISIONS, spark.createDataFrame(decisions, DECISIONS.schema))
