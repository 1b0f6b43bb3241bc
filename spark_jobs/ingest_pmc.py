"""Ingest job: PubMed Central open-access JATS (single articles, <pmc-articleset> files and
.tar.gz bulk packages) into `bronze/pmc`, MERGEd by PMCID."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from pyspark.sql import SparkSession

from corpus.jats import parse_pmc_file
from corpus.quarantine import Quarantined
from schemas.bronze import PMC
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_common import SourceIngest, run_ingest
from spark_jobs.runs import StageResult

SUFFIXES = (".nxml", ".xml", ".xml.gz", ".nxml.gz", ".tar.gz", ".tgz")


def parse_pmc_rows(path: str, markers: bool) -> Iterator[dict[str, Any] | Quarantined]:
    for item in parse_pmc_file(path, markers=markers):
        if isinstance(item, dict):
            item["markers"] = markers
        yield item


def ingest_pmc(spark: SparkSession, config: IngestConfig) -> StageResult:
    spec = SourceIngest(
        source="pmc",
        table=PMC,
        key="doc_id",
        suffixes=SUFFIXES,
        parse_file=functools.partial(parse_pmc_rows, markers=config.markers),
    )
    return run_ingest(spark, config, spec)
