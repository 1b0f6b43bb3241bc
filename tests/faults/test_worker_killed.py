"""A worker SIGKILLed (with its executors) in the middle of the dedup stage and of the shards
stage on a standalone cluster: Spark runs the lost tasks again elsewhere, and the output
equals the undisturbed local build's."""

from __future__ import annotations

import shutil
import time

import pytest

from schemas.gold import LINEAGE, SHARDS
from schemas.silver import DEDUP_CLUSTERS, DOCUMENTS, SIGNATURES
from tests.faults.harness import (
    RUN_ID,
    Build,
    CliRun,
    assert_same_tables,
    leftovers,
    run_cli,
    shard_folder,
)
from tests.standalone_cluster import standalone_cluster

pytestmark = pytest.mark.fault


def _kill_a_worker_during(stage: str, build: Build, cluster, worker: int, log) -> None:  # type: ignore[no-untyped-def]
    run = CliRun(
        build.corpus_args("--from", stage, "--to", stage, "--master", cluster.master_url), log
    )
    run.wait_for(rf"stage {stage}: {RUN_ID.pattern}")
    before = cluster.tasks_started(worker)
    deadline = time.monotonic() + 600
    # Some of the stage's tasks have run on the worker: it dies with work done and to do.
    while cluster.tasks_started(worker) < before + 2:
        assert run.proc.poll() is None, f"{stage} ended before the kill:\n{run.output[-3000:]}"
        assert time.monotonic() < deadline, "the worker ran no task of the stage"
        time.sleep(0.1)
    cluster.kill_worker(worker)
    assert run.finish() == 0, run.output[-3000:]


def test_a_worker_killed_in_dedup_and_in_shards_changes_nothing(cleaned, reference, tmp_path):
    build = Build.under(tmp_path)
    shutil.copytree(cleaned.lakehouse, build.lakehouse)
    with standalone_cluster(tmp_path / "cluster", workers=3) as cluster:
        _kill_a_worker_during("dedup", build, cluster, 0, tmp_path / "dedup-stage.log")
        assert_same_tables(reference, build, [DOCUMENTS, SIGNATURES, DEDUP_CLUSTERS])

        gold = build.corpus_args("--from", "decontaminate", "--to", "mix")
        run_cli(gold, tmp_path / "mix-stage.log")
        _kill_a_worker_during("shards", build, cluster, 1, tmp_path / "shards-stage.log")
    assert_same_tables(reference, build, [SHARDS, LINEAGE])
    shards = {k: v for k, v in shard_folder(build.out).items() if not k.startswith("export")}
    expected = {k: v for k, v in shard_folder(reference.out).items() if not k.startswith("export")}
    assert shards == expected
    assert leftovers(build.out) == []
