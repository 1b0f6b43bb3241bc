"""Ingest job: general-domain replay JSONL (RedPajama-1T, plain {"text"}, Dolma) into
`bronze/replay`, MERGEd by doc_id; unreadable lines are quarantined one by one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyspark.sql import SparkSession

from corpus.quarantine import Quarantined
from corpus.replay_jsonl import parse_replay_file
from schemas.bronze import REPLAY
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_common import SourceIngest, run_ingest
from spark_jobs.runs import StageResult

# Web and book text of mixed, mostly unstated terms: nothing to build a commercial corpus on.
REPLAY_LICENSE = "unknown"


SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".json")


def parse_replay_rows(path: str) -> Iterator[dict[str, Any] | Quarantined]:
    for item in parse_replay_file(path):
        if isinstance(item, dict):
            item["license"] = REPLAY_LICENSE
        yield item


REPLAY_INGEST = SourceIngest(
    source="replay",
    table=REPLAY,
    key="doc_id",
    suffixes=SUFFIXES,
    parse_file=parse_replay_rows,
)


def ingest_replay(spark: SparkSession, config: IngestConfig) -> StageResult:
    return run_ingest(spark, config, REPLAY_INGEST)
