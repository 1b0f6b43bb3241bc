"""The per-stage lock, the location helpers and the conflict error of StageRun."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from spark_jobs.runs import _is_concurrent_commit
from spark_jobs.stage_lock import StageLockedError, lock_file, stage_lock
from spark_jobs.storage import is_uri, local_path, remove_leftovers
from tests.conftest import REPO


def test_a_second_run_of_a_stage_is_refused_with_the_holder_named(tmp_path):
    with stage_lock(str(tmp_path), "dedup", "run-a"):
        with pytest.raises(StageLockedError) as refused, stage_lock(str(tmp_path), "dedup", "b"):
            pass
        message = str(refused.value)
        assert "stage dedup is already running" in message
        assert "run run-a" in message and f"pid {os.getpid()}" in message
        with stage_lock(str(tmp_path), "clean", "run-c"):  # other stages are not blocked
            pass
    with stage_lock(str(tmp_path), "dedup", "run-b"):  # released when the block ends
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from spark_jobs.stage_lock import stage_lock\n"
            "with stage_lock(sys.argv[1], 'shards', 'killed-run'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(600)\n",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(StageLockedError, match="killed-run"),
            stage_lock(str(tmp_path), "shards", "run-b"),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10
    while True:
        try:
            with stage_lock(str(tmp_path), "shards", "run-b"):
                break
        except StageLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert lock_file(str(tmp_path), "shards").is_file()


def test_uri_lakehouses_take_no_posix_lock(tmp_path):
    assert lock_file("s3a://bucket/lake", "dedup") is None
    assert lock_file(f"file://{tmp_path}", "dedup") == tmp_path / "_locks" / "dedup.lock"
    with stage_lock("abfss://c@acct.dfs.core.windows.net/lake", "dedup", "r"):
        pass


@pytest.mark.parametrize(
    ("location", "uri", "local"),
    [
        ("lakehouse", False, "lakehouse"),
        ("/data/lake", False, "/data/lake"),
        ("file:///data/lake", True, "/data/lake"),
        ("s3a://bucket/lake", True, None),
        ("dbfs:/mnt/lake", True, None),
        ("abfss://c@acct.dfs.core.windows.net/lake", True, None),
    ],
)
def test_locations(location, uri, local):
    assert is_uri(location) is uri
    found = local_path(location)
    assert (None if found is None else str(found)) == local


def test_remove_leftovers_removes_only_what_matches(tmp_path):
    (tmp_path / ".staging-abc" / "train").mkdir(parents=True)
    (tmp_path / "manifest.json.tmp").write_text("{")
    (tmp_path / "train").mkdir()
    (tmp_path / "manifest.json").write_text("{}")
    removed = remove_leftovers(tmp_path, ".staging-*", "*.tmp")
    assert removed == [str(tmp_path / ".staging-abc"), str(tmp_path / "manifest.json.tmp")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train"]


def test_delta_conflicts_are_recognised_by_their_error_class():
    class ConcurrentAppendException(Exception):
        pass

    assert _is_concurrent_commit(ConcurrentAppendException("Files were added"))
    assert _is_concurrent_commit(
        RuntimeError("[DELTA_CONCURRENT_DELETE_READ] This transaction attempted to read")
    )
    assert not _is_concurrent_commit(RuntimeError("disk full"))
