"""`make cluster-test`: the stages on a Spark standalone cluster (a master and two workers
on 127.0.0.1, started from the pyspark package) give the same tables as a local run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from schemas.bronze import GUIDELINES, PMC, PUBMED, QUARANTINE, REPLAY
from schemas.gold import CORPUS, LINEAGE, SHARDS
from schemas.silver import DECISIONS, DEDUP_CLUSTERS, DOCUMENTS
from spark_jobs.tables import table_path
from tests.conftest import FIXTURES, REPO
from tests.standalone_cluster import standalone_cluster

pytestmark = pytest.mark.cluster
SAMPLE_CONFIG = str(REPO / "configs" / "sample.yaml")
# Each stage the cluster must run: (CLI arguments, tables to compare, columns to ignore).
# "{out}" is the run's own shard folder; shard prefixes are compared below it, so equal
# gold/shards rows mean byte-identical shards (their SHA-256) built by other partitionings.
STAGES = [
    (["ingest", "pubmed", str(FIXTURES / "pubmed_xml")], [PUBMED], {"ingest_run_id"}),
    (["ingest", "pmc", str(FIXTURES / "pmc_jats")], [PMC], {"ingest_run_id"}),
    (
        ["ingest", "guidelines", str(FIXTURES / "guidelines" / "pdf")],
        [GUIDELINES],
        {"ingest_run_id"},
    ),
    (["ingest", "replay", str(FIXTURES / "redpajama")], [REPLAY, QUARANTINE], {"ingest_run_id"}),
    (["clean"], [DOCUMENTS, DECISIONS], {"run_id"}),
    (["dedup"], [DOCUMENTS, DECISIONS, DEDUP_CLUSTERS], {"run_id"}),
    (["decontaminate", "--config", SAMPLE_CONFIG], [DECISIONS], {"run_id"}),
    (["mix", "--config", SAMPLE_CONFIG], [CORPUS, DECISIONS], {"run_id"}),
    (
        ["shards", "--config", SAMPLE_CONFIG, "--out", "{out}"],
        [SHARDS, LINEAGE],
        {"run_id"},
    ),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running.master_url


def _run_cli(args: list[str], lakehouse: Path, master: str) -> None:
    out = str(lakehouse.with_name(lakehouse.name + "_shards"))
    cmd = [
        sys.executable,
        "-m",
        "gapreplay.cli",
        *(a.replace("{out}", out) for a in args),
        "--lakehouse",
        str(lakehouse),
        "--master",
        master,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _content(spark, root: Path, spec, ignore: set[str]) -> list[tuple]:
    frame = spark.read.format("delta").load(table_path(str(root), spec))
    if "prefix" in spec.columns:  # below the run's shard folder
        frame = frame.withColumn("prefix", F.regexp_extract("prefix", "([^/]+/[^/]+)$", 1))
    columns = [c for c in spec.columns if c not in ignore]
    return sorted(tuple(r) for r in frame.select(*columns).collect())


def test_stages_on_a_standalone_cluster_match_local(cluster, tmp_path):
    from spark_jobs.session import get_spark

    on_cluster, local = tmp_path / "cluster", tmp_path / "local"
    for args, _, _ in STAGES:
        _run_cli(args, on_cluster, cluster)
        _run_cli(args, local, "local[2]")
    spark = get_spark(master="local[2]")
    try:
        for _, specs, ignore in STAGES:
            for spec in specs:
                expected = _content(spark, local, spec, ignore)
                assert expected, f"{spec.path} is empty"
                assert _content(spark, on_cluster, spec, ignore) == expected, spec.path
    finally:
        spark.stop()
