"""The driver SIGKILLed in the middle of each stage of `gapreplay corpus`: every re-run redoes
only what had not committed, and the last one ends with the reference build's tables and
shards and nothing left over in the shard folder."""

from __future__ import annotations

import time

import pytest

from spark_jobs.pipeline import STAGE_NAMES
from tests.faults.harness import (
    ALL_TABLES,
    RUN_ID,
    Build,
    CliRun,
    assert_same_tables,
    leftovers,
    runs,
    shard_folder,
    stage_seconds,
)

pytestmark = pytest.mark.fault
# Where in a stage the kill lands, as a share of the stage's undisturbed duration.
KILL_AT = 0.4


def _skipped(output: str, stage: str) -> bool:
    return f"stage {stage}: inputs and config unchanged" in output


def test_a_driver_killed_in_each_stage_recovers_to_the_same_build(reference, tmp_path):
    durations = stage_seconds(reference.lakehouse)
    build = Build.under(tmp_path)
    killed: list[str] = []
    for number, stage in enumerate(STAGE_NAMES):
        run = CliRun(build.corpus_args(), tmp_path / f"{number:02d}-kill-in-{stage}.log")
        started = run.wait_for(rf"stage {stage}: {RUN_ID.pattern}")
        time.sleep(max(0.5, KILL_AT * durations[stage]))
        run.kill()
        succeeded = {r["run_id"] for r in runs(build.lakehouse) if r["status"] == "succeeded"}
        assert started.group(1) not in succeeded, f"the kill came after {stage} had committed"
        # The stages that committed before the previous kill were not run again.
        for done in STAGE_NAMES[: max(0, number - 1)]:
            assert _skipped(run.output, done), f"{done} ran again after committing:\n{run.output}"
        if killed:
            assert not _skipped(run.output, killed[-1]), f"{killed[-1]} was not redone"
        killed.append(stage)

    final = CliRun(build.corpus_args(), tmp_path / "99-finish.log")
    assert final.finish() == 0, final.output[-3000:]
    for done in STAGE_NAMES[:-1]:
        assert _skipped(final.output, done), f"{done} ran again after committing"
    assert not _skipped(final.output, STAGE_NAMES[-1])

    assert_same_tables(reference, build, ALL_TABLES)
    assert shard_folder(build.out) == shard_folder(reference.out)
    assert leftovers(build.out) == []
