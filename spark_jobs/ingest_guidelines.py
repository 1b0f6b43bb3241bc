"""Ingest job: clinical guideline PDFs and HTML pages (and MediTron's released guidelines
JSONL) into `bronze/guidelines`. PDFs and pages are extracted in a worker subprocess with
page and time limits, so a hang or crash inside MuPDF quarantines one document, not the task.
"""

from __future__ import annotations

import functools

from pyspark.sql import SparkSession

from corpus.guideline_sources import SourceRegistry
from corpus.guidelines import parse_guideline_file
from schemas.bronze import GUIDELINES
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_common import SourceIngest, run_ingest
from spark_jobs.runs import StageResult

SUFFIXES = (".pdf", ".html", ".htm", ".jsonl", ".jsonl.gz")


def ingest_guidelines(spark: SparkSession, config: IngestConfig) -> StageResult:
    spec = SourceIngest(
        source="guidelines",
        table=GUIDELINES,
        key="doc_id",
        suffixes=SUFFIXES,
        parse_file=functools.partial(
            parse_guideline_file,
            source_hint=config.source,
            max_pages=config.max_pages,
            timeout_s=config.timeout_s,
            registry=SourceRegistry.from_config(config.extra_sources),
            path_overrides=config.path_sources,
        ),
    )
    return run_ingest(spark, config, spec)
