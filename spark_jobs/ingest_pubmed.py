"""Ingest job: PubMed baseline/update XML files into `bronze/pubmed`, MERGEd by PMID.

Files are applied in name order (an update file follows its baseline); DeleteCitation
PMIDs remove their rows and leave a tombstone in `bronze/pubmed_deletions`.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from corpus.pubmed_xml import parse_pubmed_file
from schemas.bronze import PUBMED, PUBMED_DELETIONS
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_common import SourceIngest, run_ingest
from spark_jobs.runs import StageResult

SUFFIXES = (".xml", ".xml.gz")

PUBMED_INGEST = SourceIngest(
    source="pubmed",
    table=PUBMED,
    key="pmid",
    suffixes=SUFFIXES,
    parse_file=parse_pubmed_file,
    tombstones=PUBMED_DELETIONS,
)


def ingest_pubmed(spark: SparkSession, config: IngestConfig) -> StageResult:
    return run_ingest(spark, config, PUBMED_INGEST)
