"""A Spark standalone cluster on 127.0.0.1 (a master and workers started from the pyspark
package) for `make cluster-test` and `make fault-test`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent


@dataclass
class Cluster:
    master_url: str
    # One process per worker, each the leader of its own process group: killing the group
    # kills the worker and the executors it launched.
    workers: list[subprocess.Popen]
    worker_dirs: list[Path]

    def executor_logs(self, worker: int) -> list[Path]:
        """The stderr files of the executors a worker launched (its work dir/app/executor)."""
        return sorted(self.worker_dirs[worker].glob("*/*/stderr"))

    def tasks_started(self, worker: int) -> int:
        """How many tasks the worker's executors have started, from their logs."""
        return sum(
            log.read_text(errors="replace").count("Running task")
            for log in self.executor_logs(worker)
        )

    def kill_worker(self, worker: int) -> None:
        """SIGKILL a worker and its executors, as a machine lost mid-job."""
        os.killpg(self.workers[worker].pid, signal.SIGKILL)
        self.workers[worker].wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(SPARK_HOME / "bin" / "spark-class"), *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # so the whole process group can be stopped
    )


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as resp:
            return int(json.load(resp).get("aliveworkers", 0))
    except OSError:
        return 0


@contextlib.contextmanager
def standalone_cluster(work: Path, workers: int = 2) -> Iterator[Cluster]:
    """A master and `workers` workers of one core and 2 GB each; all stopped on exit."""
    work.mkdir(parents=True, exist_ok=True)
    port, ui = free_port(), free_port()
    env = dict(
        os.environ,
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
    )
    master_url = f"spark://127.0.0.1:{port}"
    master_args = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)]
    procs = [
        _start(["org.apache.spark.deploy.master.Master", *master_args], work / "master.log", env)
    ]
    cluster = Cluster(master_url, [], [])
    try:
        for i in range(workers):
            work_dir = work / f"worker{i}"
            work_dir.mkdir(parents=True, exist_ok=True)
            worker_args = ["--host", "127.0.0.1", "--cores", "1", "--memory", "2g"]
            worker_args += ["--work-dir", str(work_dir), "--webui-port", str(free_port())]
            proc = _start(
                ["org.apache.spark.deploy.worker.Worker", *worker_args, master_url],
                work / f"worker{i}.log",
                env,
            )
            procs.append(proc)
            cluster.workers.append(proc)
            cluster.worker_dirs.append(work_dir)
        deadline = time.monotonic() + 120
        while _alive_workers(ui) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not start; logs in {work}")
            time.sleep(1)
        yield cluster
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
