"""Recording stage runs in `_runs`: one row per run, written when the run ends."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import logging
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from schemas.runs import RUNS
from schemas.table_spec import TableSpec
from spark_jobs.stage_lock import stage_lock
from spark_jobs.tables import append, table_version

log = logging.getLogger(__name__)

# Set by the pipeline around a stage it runs, recorded in that stage's `_runs` row.
_PIPELINE_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "pipeline_key", default=None
)


@contextlib.contextmanager
def pipeline_key(key: str) -> Iterator[None]:
    token = _PIPELINE_KEY.set(key)
    try:
        yield
    finally:
        _PIPELINE_KEY.reset(token)


def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    try:
        version = metadata.version("gapreplay")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def config_sha256(settings: Any) -> str:
    """A stable hash of a stage's inputs and settings (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


class ConcurrentRunError(RuntimeError):
    """A run's Delta commit lost to a concurrent run's commit on the same table."""


def _is_concurrent_commit(exc: BaseException) -> bool:
    # Delta's Python classes are only installed when delta.exceptions is imported; the
    # error class names in the JVM message identify the conflict either way.
    text = f"{type(exc).__name__} {exc}"
    return (
        "DELTA_CONCURRENT" in text
        or "ConcurrentModificationException" in text
        or bool(
            re.search(
                r"Concurrent(Append|DeleteRead|DeleteDelete|Transaction|Write)Exception", text
            )
        )
    )


@dataclass
class StageResult:
    """What a stage run did, for the summary a command prints."""

    run_id: str
    stage: str
    table: str
    metrics: dict[str, int]
    rows_out: int
    table_versions: dict[str, int] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return self.metrics.get("quarantined", 0)


@dataclass
class StageRun:
    """One run of a stage; fill `metrics`, `rows_in`, `rows_out`, `table_versions`."""

    spark: SparkSession
    lakehouse: str
    stage: str
    settings: dict[str, Any]
    # Paths, or {path, url, checksums, ...} for downloaded files (download.files.provenance).
    inputs: list[Any] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    rows_in: int = 0
    rows_out: int = 0
    metrics: dict[str, int] = field(default_factory=dict)
    table_versions: dict[str, int] = field(default_factory=dict)
    # The stage lock, held from __enter__ to __exit__.
    _held: contextlib.ExitStack = field(
        default_factory=contextlib.ExitStack, init=False, repr=False
    )

    def __enter__(self) -> StageRun:
        try:
            self._held.enter_context(stage_lock(self.lakehouse, self.stage, self.run_id))
        except Exception as exc:
            self._record_failure(exc)
            raise
        log.info("stage %s: run %s started", self.stage, self.run_id)
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc is None:
                self._write("succeeded", None)
                log.info("stage %s: run %s succeeded", self.stage, self.run_id)
                return
            self._record_failure(exc)
            if _is_concurrent_commit(exc):
                raise ConcurrentRunError(
                    f"stage {self.stage}: another run committed to the same Delta table while"
                    f" run {self.run_id} was working, so this run's commit was refused; the"
                    " table holds what the other run committed, and this run is recorded as"
                    " failed in _runs: run the stage again to check it is current"
                ) from exc
        finally:
            self._held.close()

    def _record_failure(self, exc: BaseException) -> None:
        try:
            self._write("failed", f"{type(exc).__name__}: {exc}")
        except Exception:  # the original error matters more than the bookkeeping one
            log.exception("could not record the failure of run %s", self.run_id)

    def finish(self, main: TableSpec, written: list[TableSpec]) -> StageResult:
        """Record the Delta version of each table written and describe the run."""
        for spec in written:
            version = table_version(self.spark, self.lakehouse, spec)
            if version is not None:
                self.table_versions[spec.path] = version
        return StageResult(
            run_id=self.run_id,
            stage=self.stage,
            table=main.path,
            metrics=dict(self.metrics),
            rows_out=self.rows_out,
            table_versions=dict(self.table_versions),
        )

    def _write(self, status: str, error: str | None) -> None:
        # One append per run, when it ends: a MERGE per status change would cost a Delta
        # rewrite of `_runs` for every stage.
        finished = dt.datetime.now(dt.UTC)
        row = {
            "run_id": self.run_id,
            "stage": self.stage,
            "status": status,
            "started_at": self.started_at,
            "finished_at": finished,
            "config_sha256": config_sha256(self.settings),
            "code_version": code_version(),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "table_versions": self.table_versions,
            "metrics": self.metrics,
            "inputs": json.dumps(self.inputs),
            "error": error,
            "pipeline_key": _PIPELINE_KEY.get(),
        }
        append(self.spark, self.lakehouse, RUNS, self.spark.createDataFrame([row], RUNS.schema))
