"""The corpus pipeline: the stages in order, from bronze to the shards.

A stage is skipped when nothing it depends on changed since its last successful run. Its
key is a hash of its part of the config, the code version, its input files (path, size,
modification time) and the last successful runs of the stages it reads from (their keys and
the Delta versions they left). The key is recorded in the run's `_runs` row; the stage is
skipped when the latest successful run of the stage has the same key and what it wrote is
still there. Running a stage by hand (`gapreplay clean`) records no key, so the next
pipeline run redoes it and what follows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from schemas.runs import RUNS
from spark_jobs import ingest_guidelines, ingest_pmc, ingest_pubmed, ingest_replay, storage
from spark_jobs.clean import clean
from spark_jobs.config import CorpusConfig, IngestConfig
from spark_jobs.decontaminate import decontaminate
from spark_jobs.dedup import dedup
from spark_jobs.export_corpus import export_corpus
from spark_jobs.ingest_common import input_files
from spark_jobs.mix import mix
from spark_jobs.runs import StageResult, code_version, pipeline_key
from spark_jobs.shards import shards
from spark_jobs.tables import read_table

log = logging.getLogger(__name__)

StageFunction = Callable[[SparkSession, CorpusConfig], StageResult | None]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFunction
    settings: Callable[[CorpusConfig], Any]
    after: tuple[str, ...] = ()
    input_files: Callable[[CorpusConfig], list[str]] = field(default=lambda c: [])
    outputs: Callable[[CorpusConfig], list[str]] = field(default=lambda c: [])


_INGEST_MODULES = {
    "pubmed": ingest_pubmed,
    "pmc": ingest_pmc,
    "guidelines": ingest_guidelines,
    "replay": ingest_replay,
}
INGEST_JOBS = {source: getattr(m, f"ingest_{source}") for source, m in _INGEST_MODULES.items()}


def _ingest(source: str) -> Stage:
    def run(spark: SparkSession, config: CorpusConfig) -> StageResult | None:
        settings = getattr(config.sources, source)
        if not settings.inputs:
            log.info("stage ingest_%s: no %s inputs configured, skipped", source, source)
            return None
        options = settings.model_dump()
        return INGEST_JOBS[source](spark, IngestConfig(lakehouse=config.lakehouse, **options))

    def files(config: CorpusConfig) -> list[str]:
        inputs = getattr(config.sources, source).inputs
        return input_files(inputs, _INGEST_MODULES[source].SUFFIXES) if inputs else []

    return Stage(
        f"ingest_{source}",
        run,
        settings=lambda c: getattr(c.sources, source).model_dump(mode="json"),
        input_files=files,
    )


INGEST_STAGES = tuple(_ingest(source) for source in INGEST_JOBS)
STAGES = (
    *INGEST_STAGES,
    Stage(
        "clean",
        lambda spark, c: clean(spark, c.lakehouse, c.silver),
        settings=lambda c: c.silver.model_dump(mode="json"),
        after=tuple(s.name for s in INGEST_STAGES),
    ),
    Stage(
        "dedup",
        lambda spark, c: dedup(spark, c.lakehouse, c.dedup, c.silver.keep_order),
        settings=lambda c: [c.dedup.model_dump(mode="json"), c.silver.keep_order],
        after=("clean",),
    ),
    Stage(
        "decontaminate",
        lambda spark, c: decontaminate(spark, c.lakehouse, c.decontamination),
        settings=lambda c: c.decontamination.model_dump(mode="json"),
        after=("dedup",),
        input_files=lambda c: _tree(c.decontamination.benchmarks_dir),
    ),
    Stage(
        "mix",
        lambda spark, c: mix(spark, c.lakehouse, c.mix, c.tokenizer),
        settings=lambda c: [c.mix.model_dump(mode="json"), c.tokenizer.model_dump(mode="json")],
        after=("decontaminate",),
        input_files=lambda c: [c.tokenizer.path] if c.tokenizer.path else [],
    ),
    Stage(
        "shards",
        lambda spark, c: shards(spark, c.lakehouse, c.out, c.shards),
        settings=lambda c: [c.shards.model_dump(mode="json"), storage.resolve(c.out)],
        after=("mix",),
        outputs=lambda c: [storage.join(c.out, "manifest.json")],
    ),
    Stage(
        "export",
        lambda spark, c: export_corpus(spark, c.lakehouse, storage.join(c.out, "export")),
        settings=lambda c: storage.resolve(storage.join(c.out, "export")),
        after=("shards",),
        outputs=lambda c: [storage.join(c.out, "export")],
    ),
)
STAGE_NAMES = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}


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


def _tree(folder: str | None) -> list[str]:
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file())


def _last_runs(spark: SparkSession, root: str) -> dict[str, dict[str, Any]]:
    """The latest successful `_runs` row of each stage."""
    rows = (
        read_table(spark, root, RUNS)
        .filter("status = 'succeeded'")
        .select("stage", "run_id", "finished_at", "pipeline_key", "table_versions")
        .collect()
    )
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r["finished_at"], r["run_id"])):
        latest[row["stage"]] = row.asDict()
    return latest


def _outcome(run: dict[str, Any] | None) -> Any:
    """What downstream keys see of an upstream stage's last run."""
    if run is None:
        return None
    return [run["pipeline_key"], sorted((run["table_versions"] or {}).items())]


def stage_key(stage: Stage, config: CorpusConfig, last: dict[str, dict[str, Any]]) -> str:
    state = {
        "stage": stage.name,
        "settings": stage.settings(config),
        "code": code_version(),
        "files": [storage.file_state(p) for p in stage.input_files(config)],
        "after": {name: _outcome(last.get(name)) for name in stage.after},
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def _is_current(stage: Stage, config: CorpusConfig, key: str, last: dict[str, Any] | None) -> bool:
    if last is None or last["pipeline_key"] != key:
        return False
    if not all(storage.exists(p) for p in stage.outputs(config)):
        return False
    return all(
        storage.exists(storage.join(config.lakehouse, t, "_delta_log"))
        for t in last["table_versions"]
    )


def run_corpus(
    spark: SparkSession,
    config: CorpusConfig,
    from_stage: str | None = None,
    to_stage: str | None = None,
    force: bool = False,
) -> list[StageResult]:
    """Run the selected stages in order; unchanged ones are skipped unless `force`."""
    stages = select_stages(from_stage, to_stage)
    results = []
    for number, stage in enumerate(stages, 1):
        last = _last_runs(spark, config.lakehouse)
        key = stage_key(stage, config, last)
        if not force and _is_current(stage, config, key, last.get(stage.name)):
            log.info(
                "[%d/%d] stage %s: inputs and config unchanged since run %s, skipped",
                number,
                len(stages),
                stage.name,
                last[stage.name]["run_id"][:8],
            )
            continue
        log.info("[%d/%d] stage %s", number, len(stages), stage.name)
        with pipeline_key(key):
            result = stage.run(spark, config)
        if result is not None:
            results.append(result)
    return results
