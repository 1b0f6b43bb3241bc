"""gapreplay.read: the Spark-free reads give what Spark reads, travel in time, and leave the
process able to exit cleanly (delta-rs aborted at exit after its own Arrow reads, STACK.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

from gapreplay.read import Lakehouse

REPO = Path(__file__).resolve().parents[1]


def _spark_rows(spark, path: str, version: int | None = None) -> list[str]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    df = reader.load(path)
    # Timestamps as microseconds since the epoch: no session time zone in the comparison.
    df = df.select(
        *(
            F.unix_micros(f.name).alias(f.name) if isinstance(f.dataType, TimestampType) else f.name
            for f in df.schema.fields
        )
    )
    return sorted(
        json.dumps(r.asDict(recursive=True), sort_keys=True, default=str) for r in df.collect()
    )


def _arrow_rows(table: pa.Table) -> list[str]:
    columns = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type):
            column = pc.cast(column, pa.int64())
        values = column.to_pylist()
        if pa.types.is_map(field.type):
            values = [None if v is None else dict(v) for v in values]
        columns[field.name] = values
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def test_every_table_reads_as_spark_reads_it(spark, sample_build) -> None:
    lakehouse = Lakehouse(sample_build.root)
    tables = lakehouse.tables()
    assert {"silver_documents", "silver_decisions", "gold_corpus", "gold_shards", "_runs"} <= set(
        tables
    )
    for name, path in tables.items():
        table = lakehouse.read(name)
        spark_columns = spark.read.format("delta").load(path).columns
        # Spark's MERGE leaves change-data-feed columns in the data files: not in the table.
        assert table.column_names == spark_columns, name
        assert _arrow_rows(table) == _spark_rows(spark, path), name
        assert lakehouse.count(name) == table.num_rows, name


def test_time_travel_returns_older_versions(spark, sample_build) -> None:
    lakehouse = Lakehouse(sample_build.root)
    name = "silver_documents"
    latest = lakehouse.version(name)
    assert latest == lakehouse.history(name, limit=1)[0]["version"]
    ids = {
        v: sorted(lakehouse.read(name, ["doc_id"], version=v).column("doc_id").to_pylist())
        for v in range(latest + 1)
    }
    path = lakehouse.path(name)
    for v, got in ids.items():
        spark_ids = sorted(
            r.doc_id
            for r in spark.read.format("delta").option("versionAsOf", v).load(path).collect()
        )
        assert got == spark_ids, v
    # Dedup removed documents after clean wrote them: some older version holds more.
    assert any(len(ids[v]) > len(ids[latest]) for v in range(latest)), ids
    assert lakehouse.read(name, version=latest).equals(lakehouse.read(name))


def test_names_columns_and_errors(sample_build, tmp_path: Path) -> None:
    lakehouse = Lakehouse(sample_build.root)
    assert lakehouse.read("silver/documents", ["doc_id", "n_chars"]).column_names == [
        "doc_id",
        "n_chars",
    ]
    frame = lakehouse.to_pandas("gold_corpus", ["source", "n_tokens"])
    assert list(frame.columns) == ["source", "n_tokens"] and len(frame) > 0
    assert str(lakehouse.read("_runs").schema.field("started_at").type) == "timestamp[us, tz=UTC]"
    with pytest.raises(KeyError, match="silver_documents"):
        lakehouse.read("silver_nothing")
    with pytest.raises(KeyError, match="no column"):
        lakehouse.read("gold_corpus", ["doc_id", "nope"])
    assert lakehouse.exists("silver/documents") and not lakehouse.exists("silver_nothing")
    assert Lakehouse(tmp_path / "missing").tables() == {}


def test_reads_exit_cleanly_20_times(sample_build) -> None:
    script = (
        "import sys\n"
        "from gapreplay.read import Lakehouse\n"
        "lakehouse = Lakehouse(sys.argv[1])\n"
        "for name in lakehouse.tables():\n"
        "    lakehouse.to_pandas(name)\n"
        "    lakehouse.version(name)\n"
        "print('ok')\n"
    )
    codes = []
    for _ in range(20):
        done = subprocess.run(
            [sys.executable, "-c", script, sample_build.root],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        codes.append(done.returncode)
        assert done.returncode != 0 or done.stdout.strip() == "ok", done.stderr
    assert codes == [0] * 20, f"exit codes {codes}"
