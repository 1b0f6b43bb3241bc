"""Two runs of the same stage at once: one does the work, the other stops with a message
naming the first, before writing anything; the tables hold no duplicated or lost rows."""

from __future__ import annotations

import shutil
import signal

import pytest

from schemas.silver import DECISIONS, DEDUP_CLUSTERS, DOCUMENTS, SIGNATURES
from tests.faults.harness import RUN_ID, Build, CliRun, assert_same_tables, runs, table_rows

pytestmark = pytest.mark.fault


def test_a_second_run_of_a_stage_is_refused_while_the_first_runs(cleaned, reference, tmp_path):
    build = Build.under(tmp_path)
    shutil.copytree(cleaned.lakehouse, build.lakehouse)
    args = build.corpus_args("--from", "dedup", "--to", "dedup")
    first = CliRun(args, tmp_path / "first.log")
    first_id = first.wait_for(rf"stage dedup: {RUN_ID.pattern}").group(1)
    # Paused inside its stage, so that the second surely starts while the first holds it.
    first.signal(signal.SIGSTOP)
    try:
        second = CliRun(args, tmp_path / "second.log")
        assert second.finish() != 0
    finally:
        first.signal(signal.SIGCONT)
    assert first.finish() == 0, first.output[-3000:]

    assert "stage dedup is already running" in second.output, second.output[-3000:]
    assert f"run {first_id}" in second.output
    dedup_runs = [r for r in runs(build.lakehouse) if r["stage"] == "dedup"]
    assert sorted(r["status"] for r in dedup_runs) == ["failed", "succeeded"]
    refused = next(r for r in dedup_runs if r["status"] == "failed")
    assert refused["error"].startswith("StageLockedError")

    assert_same_tables(reference, build, [DOCUMENTS, DEDUP_CLUSTERS, SIGNATURES])
    assert _silver_decisions(build) == _silver_decisions(reference)


def _silver_decisions(build: Build) -> list[str]:
    """Decisions of the clean and dedup stages (the reference went on to the gold stages)."""
    later = ('"stage": "decontamination"', '"stage": "mix"')
    return [r for r in table_rows(build.lakehouse, DECISIONS) if not any(s in r for s in later)]
