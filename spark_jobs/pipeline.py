"""The corpus pipeline: the stages in order, from bronze towards the shards."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_jobs.config import CorpusConfig, IngestConfig
from spark_jobs.ingest_common import IngestResult
from spark_jobs.ingest_pubmed import ingest_pubmed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[SparkSession, CorpusConfig], IngestResult | None]


def _ingest_pubmed(spark: SparkSession, config: CorpusConfig) -> IngestResult | None:
    inputs = config.sources.pubmed.inputs
    if not inputs:
        log.info("stage ingest_pubmed: no pubmed inputs configured, skipped")
        return None
    return ingest_pubmed(spark, IngestConfig(lakehouse=config.lakehouse, inputs=inputs))


STAGES = (Stage("ingest_pubmed", _ingest_pubmed),)
STAGE_NAMES = tuple(s.name for s in STAGES)


def select_stages(from_stage: str | None, to_stage: str | None) -> list[Stage]:
    """The stages from `from_stage` to `to_stage` inclusive, in pipeline order."""
    for name in (from_stage, to_stage):
        if name is not None and name not in STAGE_NAMES:
            raise ValueError(f"unknown stage {name!r}; stages are: {', '.join(STAGE_NAMES)}")
    start = STAGE_NAMES.index(from_stage) if from_stage else 0
    stop = STAGE_NAMES.index(to_stage) if to_stage else len(STAGES) - 1
    if start > stop:
        raise ValueError(f"--from {from_stage} comes after --to {to_stage}")
    return list(STAGES[start : stop + 1])


def run_corpus(
    spark: SparkSession,
    config: CorpusConfig,
    from_stage: str | None = None,
    to_stage: str | None = None,
) -> list[IngestResult]:
    stages = select_stages(from_stage, to_stage)
    results = []
    for number, stage in enumerate(stages, 1):
        log.info("[%d/%d] stage %s", number, len(stages), stage.name)
        result = stage.run(spark, config)
        if result is not None:
            results.append(result)
    return results
