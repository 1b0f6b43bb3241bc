"""Inputs, lakehouse and shards on an object store: the sample pipeline, ingests to shards,
on `s3a://` against a local S3-compatible server (moto, on 127.0.0.1), through the command
line in its own process so that Spark, s3fs and delta-rs all take the endpoint and
credentials from the environment as they would on a cluster. The tables read back equal the
local sample build's, bronze rows name their input objects, and every uploaded shard has the
SHA-256 its `gold/shards` row records. Also: tables registered in a catalog schema, and the
storage helpers on fsspec's memory store and a stand-in /dbfs mount."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spark_jobs import delta_jars, storage
from spark_jobs.tables import CATALOG_CONF, SCHEMA_CONF, use_catalog
from tests.conftest import FIXTURES, REPO

BUCKET = "gapreplay"


def _has_s3_jars() -> bool:
    return any("hadoop-aws" in jar for jar in delta_jars.local_jars())


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server on 127.0.0.1 with an empty bucket; the environment that points the
    AWS clients at it."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    if not _has_s3_jars():
        pytest.skip("the s3 jar set is not cached: make setup fetches it")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ALLOW_HTTP": "true",  # delta-rs refuses plain HTTP otherwise
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


INPUTS = f"s3a://{BUCKET}/inputs"


def _sample_config_with_inputs_in_s3(path: Path) -> Path:
    """configs/sample.yaml with its input folders uploaded under INPUTS and named there."""
    config = yaml.safe_load((REPO / "configs" / "sample.yaml").read_text())
    for source, settings in config["sources"].items():
        folder = REPO / "sample" / source
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            storage.upload(file, storage.join(INPUTS, source, file.relative_to(folder).as_posix()))
        settings["inputs"] = [storage.join(INPUTS, source)]
    config["decontamination"]["benchmarks_dir"] = str(REPO / "sample" / "benchmarks")
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def s3_build(s3_env, tmp_path_factory):
    """`gapreplay corpus` on the sample, ingests to shards, with inputs, lakehouse and shards
    in S3."""
    root, out = f"s3a://{BUCKET}/lakehouse", f"s3a://{BUCKET}/shards"
    work = tmp_path_factory.mktemp("s3_build")
    log = work / "corpus.log"
    config = _sample_config_with_inputs_in_s3(work / "corpus.yaml")
    env = {**os.environ, "GAPREPLAY_DRIVER_MEMORY": "2g"}
    command = [sys.executable, "-m", "gapreplay", "corpus", "--config", str(config)]
    command += ["--lakehouse", root, "--out", out, "--to", "shards", "--master", "local[2]"]
    with log.open("w") as stream:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=stream, stderr=subprocess.STDOUT)
    assert done.returncode == 0, log.read_text()[-4000:]
    return root, out


def _sha256(fs, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_pipeline_on_s3_reads_back_like_the_local_build(s3_build, sample_build):
    from gapreplay.read import Lakehouse

    root, _ = s3_build
    remote, local = Lakehouse(root), Lakehouse(sample_build.root)
    assert set(remote.tables()) == set(local.tables())
    for name, columns in (
        ("bronze_pubmed", ["doc_id", "title", "abstract"]),
        ("silver_documents", ["doc_id", "text"]),
        ("silver_decisions", ["doc_id", "stage", "kept", "reason"]),
        ("gold_corpus", ["doc_id", "split", "n_tokens"]),
        ("gold_lineage", ["seq_index", "doc_id", "n_tokens"]),
    ):
        assert _rows(remote, name, columns) == _rows(local, name, columns), name
    for name in ("bronze_pubmed", "bronze_pmc", "bronze_guidelines", "bronze_replay"):
        files = set(remote.to_pandas(name, ["source_file"])["source_file"])
        assert files and all(f.startswith(f"{INPUTS}/") for f in files), (name, files)


def _rows(lakehouse, name: str, columns: list[str]) -> list[tuple]:
    return sorted(map(tuple, lakehouse.to_pandas(name, columns).itertuples(index=False)))


def test_uploaded_shards_match_their_gold_rows_and_the_local_build(s3_build, sample_build):
    from gapreplay.read import Lakehouse

    root, out = s3_build
    rows = Lakehouse(root).to_pandas("gold_shards").sort_values("prefix")
    assert len(rows) > 0
    assert all(p.startswith(out + "/") for p in rows["prefix"])
    fs, _ = storage.filesystem(out)
    for row in rows.itertuples():
        assert _sha256(fs, row.prefix + ".bin") == row.bin_sha256
        assert _sha256(fs, row.prefix + ".idx") == row.idx_sha256
    # Byte-identical to the shards the same sample gives on local disk.
    local = Lakehouse(sample_build.root).to_pandas("gold_shards").sort_values("prefix")
    assert list(rows["bin_sha256"]) == list(local["bin_sha256"])
    assert list(rows["idx_sha256"]) == list(local["idx_sha256"])
    # manifest.json, written last, lists exactly these files; no staging prefix is left.
    manifest = json.loads(fs.cat_file(_path(out, "manifest.json")))
    assert [s["bin_sha256"] for s in manifest["shards"]] == list(rows["bin_sha256"])
    listed = fs.ls(_path(out), detail=False)
    assert not [p for p in listed if ".staging-" in p or p.endswith(".tmp")]
    assert f"{out}/train/" in fs.cat_file(_path(out, "blend_train.txt")).decode()
    assert fs.exists(_path(out, "tokenizer", "tokenizer_meta.json"))


def _path(location: str, *parts: str) -> str:
    """The path s3fs takes for a location."""
    return storage.filesystem(storage.join(location, *parts))[1]


def test_tables_are_registered_in_a_catalog_schema(spark, tmp_path):
    from spark_jobs.config import IngestConfig
    from spark_jobs.ingest_pubmed import ingest_pubmed
    from spark_jobs.sql import run_sql

    spark.sql(f"CREATE SCHEMA IF NOT EXISTS gapreplay_test LOCATION '{tmp_path / 'schema'}'")
    root = str(tmp_path / "lakehouse")
    try:
        assert use_catalog(spark, "gapreplay_test") == "`spark_catalog`.`gapreplay_test`"
        inputs = [str(FIXTURES / "pubmed_xml" / "pubmed2db_trimmed_real_records.xml")]
        ingest_pubmed(spark, IngestConfig(lakehouse=root, inputs=inputs))
        registered = {r.tableName for r in spark.sql("SHOW TABLES IN gapreplay_test").collect()}
        assert {"bronze_pubmed", "_runs"} <= registered
        in_catalog = spark.table("spark_catalog.gapreplay_test.bronze_pubmed").count()
        assert in_catalog == run_sql(spark, root, "SELECT count(*) AS n FROM bronze_pubmed")["n"][0]
        with pytest.raises(ValueError, match="does not exist"):
            use_catalog(spark, "no_such_schema")
    finally:
        spark.conf.unset(CATALOG_CONF)
        spark.conf.unset(SCHEMA_CONF)
        spark.sql("DROP SCHEMA IF EXISTS gapreplay_test CASCADE")


def test_catalog_config_names_its_bad_key(tmp_path):
    from spark_jobs.config import ConfigError, load_config

    config = tmp_path / "c.yaml"
    config.write_text("catalog: {name: main, schema: corpus}\n")
    assert load_config(config).catalog.schema_name == "corpus"
    config.write_text("catalog: {name: main}\n")
    with pytest.raises(ConfigError, match=r"catalog\.schema: Field required"):
        load_config(config)


@pytest.mark.parametrize("base", ["memory://gapreplay-test/store", "dbfs:/gapreplay-test/store"])
def test_storage_helpers_through_fsspec(tmp_path, monkeypatch, base):
    """The object-store code paths, on fsspec's in-memory filesystem (no server needed), and
    on `dbfs:/` through a stand-in for Databricks' /dbfs mount."""
    mount = tmp_path / "dbfs"
    mount.mkdir()
    monkeypatch.setattr(storage, "DBFS_MOUNT", mount)
    with storage.local_folder(storage.join(base, "out"), last=("manifest.json",)) as folder:
        (folder / "manifest.json").write_text("{}")
        (folder / "sub").mkdir()
        (folder / "sub" / "b.txt").write_text("b")
    fs, path = storage.filesystem(base)
    assert fs.cat_file(f"{path}/out/sub/b.txt") == b"b"
    with storage.local_copy(storage.join(base, "out")) as folder:
        assert sorted(p.name for p in folder.rglob("*")) == ["b.txt", "manifest.json", "sub"]
    storage.replace(storage.join(base, "out"), storage.join(base, "moved"))
    assert not storage.exists(storage.join(base, "out"))
    assert storage.exists(storage.join(base, "moved", "sub", "b.txt"))
    fs.pipe_file(f"{path}/.staging-x/train/a.bin", b"x")
    assert storage.remove_leftovers(base, ".staging-*") == [f"{base}/.staging-x"]
    assert not storage.exists(storage.join(base, ".staging-x"))
    if base.startswith("dbfs:"):
        assert (mount / "gapreplay-test" / "store" / "moved" / "sub" / "b.txt").read_text() == "b"
    storage.remove(base)
    assert not storage.exists(base)


def test_locations():
    assert storage.resolve("s3a://bucket/lake/") == "s3a://bucket/lake"
    assert storage.join("s3a://bucket/lake", "silver/documents") == (
        "s3a://bucket/lake/silver/documents"
    )
    assert storage.join("dbfs:/lake", "gold") == "dbfs:/lake/gold"
    assert Path(storage.resolve("lake")) == Path.cwd() / "lake"
    assert storage.filesystem("file:/tmp/x")[1] == "/tmp/x"
