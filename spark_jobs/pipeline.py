"""The corpus pipeline: the stages in order, from bronze towards the shards."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_jobs.clean import clean
from spark_jobs.config import CorpusConfig, IngestConfig
from spark_jobs.dedup import dedup
from spark_jobs.ingest_guidelines import ingest_guidelines
from spark_jobs.ingest_pmc import ingest_pmc
from spark_jobs.ingest_pubmed import ingest_pubmed
from spark_jobs.ingest_replay import ingest_replay
from spark_jobs.runs import StageResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[SparkSession, CorpusConfig], StageResult | None]


INGEST_JOBS = {
    "pubmed": ingest_pubmed,
    "pmc": ingest_pmc,
    "guidelines": ingest_guidelines,
    "replay": ingest_replay,
}


def _ingest(source: str) -> Callable[[SparkSession, CorpusConfig], StageResult | None]:
    def run(spark: SparkSession, config: CorpusConfig) -> StageResult | None:
        settings = getattr(config.sources, source)
        if not settings.inputs:
            log.info("stage ingest_%s: no %s inputs configured, skipped", source, source)
            return None
        options = settings.model_dump()
        return INGEST_JOBS[source](spark, IngestConfig(lakehouse=config.lakehouse, **options))

    return run


def _clean(spark: SparkSession, config: CorpusConfig) -> StageResult:
    return clean(spark, config.lakehouse, config.silver)


def _dedup(spark: SparkSession, config: CorpusConfig) -> StageResult:
    return dedup(spark, config.lakehouse, config.dedup, config.silver.keep_order)


STAGES = (
    *(Stage(f"ingest_{source}", _ingest(source)) for source in INGEST_JOBS),
    Stage("clean", _clean),
    Stage("dedup", _dedup),
)
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
) -> list[StageResult]:
    stages = select_stages(from_stage, to_stage)
    results = []
    for number, stage in enumerate(stages, 1):
        log.info("[%d/%d] stage %s", number, len(stages), stage.name)
        result = stage.run(spark, config)
        if result is not None:
            results.append(result)
    return results
