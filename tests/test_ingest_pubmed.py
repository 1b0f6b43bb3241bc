"""`gapreplay ingest pubmed` on Spark + Delta: MERGE semantics, quarantine, runs, read-back."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from corpus.pubmed_xml import parse_pubmed_file
from gapreplay.cli import main
from schemas.bronze import PUBMED, PUBMED_DELETIONS, QUARANTINE
from schemas.runs import RUNS
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_pubmed import ingest_pubmed
from spark_jobs.tables import SchemaMismatchError, check_schema, merge_into, table_path
from tests.bad_inputs import GOOD_PMIDS, write_bad_inputs
from tests.conftest import FIXTURES, SAMPLE

CONTENT = [c for c in PUBMED.columns if c not in ("ingest_run_id",)]


def read(spark, root, spec):
    return spark.read.format("delta").load(table_path(root, spec))


def snapshot(spark, root):
    """Table content without run metadata, comparable across runs."""
    return sorted(tuple(r) for r in read(spark, root, PUBMED).select(*CONTENT).collect())


@pytest.fixture(scope="module")
def fixtures_lakehouse(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fixtures") / "lakehouse")
    result = ingest_pubmed(
        spark, IngestConfig(lakehouse=root, inputs=[str(FIXTURES / "pubmed_xml")])
    )
    return root, result


def test_one_row_per_pmid_from_all_fixture_files(spark, fixtures_lakehouse):
    root, result = fixtures_lakehouse
    expected = set()
    for path in sorted((FIXTURES / "pubmed_xml").iterdir()):
        expected |= {r["pmid"] for r in parse_pubmed_file(str(path)) if isinstance(r, dict)}
    table = read(spark, root, PUBMED)
    pmids = [r.pmid for r in table.select("pmid").collect()]
    assert len(pmids) == len(set(pmids))
    # The deletions of the 2014/2019 samples name PMIDs that are not in the fixtures.
    assert set(pmids) == expected
    assert result.metrics["records_parsed"] == 429
    assert result.metrics["deletions_in_input"] == 14
    assert result.rows_out == len(expected)


def test_no_pmid_record_is_quarantined(spark, fixtures_lakehouse):
    root, result = fixtures_lakehouse
    rows = read(spark, root, QUARANTINE).collect()
    assert result.quarantined == 1
    assert [(r.source, r.error_class, r.locator) for r in rows] == [
        ("pubmed", "MissingPMID", "record=0 offset=244")
    ]
    assert rows[0].source_file.endswith("pubmedsample_no_pmid_2019.xml.gz")


def test_run_is_recorded(spark, fixtures_lakehouse):
    root, result = fixtures_lakehouse
    run = read(spark, root, RUNS).filter(F.col("run_id") == result.run_id).first()
    assert run.status == "succeeded" and run.stage == "ingest_pubmed"
    assert run.finished_at >= run.started_at
    assert run.metrics["quarantined"] == 1 and run.metrics["files"] == 7
    assert run.table_versions["bronze/pubmed"] >= 0
    assert len(json.loads(run.inputs)) == 7 and len(run.config_sha256) == 64


def test_rerun_changes_nothing(spark, fixtures_lakehouse):
    root, _ = fixtures_lakehouse
    before = snapshot(spark, root)
    quarantine_before = read(spark, root, QUARANTINE).collect()
    again = ingest_pubmed(
        spark, IngestConfig(lakehouse=root, inputs=[str(FIXTURES / "pubmed_xml")])
    )
    assert snapshot(spark, root) == before
    assert read(spark, root, QUARANTINE).collect() == quarantine_before
    assert again.metrics["inserted"] == again.metrics["revised"] == 0


def test_tables_read_back_with_delta_rs(spark, fixtures_lakehouse):
    root, _ = fixtures_lakehouse
    # delta-rs can abort the interpreter at exit (STACK.md): read in a child process.
    script = textwrap.dedent(
        f"""
        import json, pyarrow.parquet as pq
        from deltalake import DeltaTable
        table = pq.ParquetDataset(DeltaTable({table_path(root, PUBMED)!r}).file_uris()).read()
        print(json.dumps(sorted(table.column("pmid").to_pylist())))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    spark_pmids = sorted(r.pmid for r in read(spark, root, PUBMED).select("pmid").collect())
    assert json.loads(out.stdout) == spark_pmids


def test_columns_have_comments_constraints_and_schema_version(spark, fixtures_lakehouse):
    root, _ = fixtures_lakehouse
    path = table_path(root, PUBMED)
    described = {r.col_name: r.comment for r in spark.sql(f"DESCRIBE delta.`{path}`").collect()}
    assert described["pmid"] == "PubMed identifier"
    assert all(described[c] for c in PUBMED.columns)
    props = spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()
    props = {r.key: r.value for r in props}
    assert props["gapreplay.schema_version"] == "1"
    assert props["delta.constraints.pmid_positive"] == "pmid > 0"


def test_wrong_typed_write_fails_with_a_clear_message(spark, fixtures_lakehouse):
    root, _ = fixtures_lakehouse
    bad = read(spark, root, PUBMED).withColumn("pmid", F.col("pmid").cast("string"))
    with pytest.raises(SchemaMismatchError, match="column pmid is string, expected bigint"):
        check_schema(bad, PUBMED)
    with pytest.raises(SchemaMismatchError, match="missing column title"):
        merge_into(spark, root, PUBMED, read(spark, root, PUBMED).drop("title"))


def test_check_constraint_rejects_bad_rows(spark, fixtures_lakehouse):
    root, _ = fixtures_lakehouse
    bad = (
        read(spark, root, PUBMED_DELETIONS)
        .limit(0)
        .unionByName(spark.createDataFrame([(-5, "x", "f", "l", "r")], PUBMED_DELETIONS.schema))
    )
    with pytest.raises(Exception, match="pmid_positive"):
        merge_into(spark, root, PUBMED_DELETIONS, bad)


@pytest.fixture(scope="module")
def sample_lakehouse(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("sample") / "lakehouse")
    baseline = str(SAMPLE / "pubmed" / "sample26n0001.xml")
    update = str(SAMPLE / "pubmed" / "sample26n0002.xml.gz")
    first = ingest_pubmed(spark, IngestConfig(lakehouse=root, inputs=[baseline]))
    after_baseline = {r.pmid: r for r in read(spark, root, PUBMED).collect()}
    second = ingest_pubmed(spark, IngestConfig(lakehouse=root, inputs=[update]))
    return root, first, second, after_baseline, baseline, update


def test_update_revises_and_deletes(spark, sample_lakehouse):
    root, first, second, before, _, _ = sample_lakehouse
    assert first.rows_out == 8
    rows = {r.pmid: r for r in read(spark, root, PUBMED).collect()}
    assert 39000007 in before and 39000007 not in rows
    assert 39000009 in rows and 39000009 not in before
    assert rows[39000003].abstract != before[39000003].abstract
    assert "WHO five moments" in rows[39000003].abstract
    assert rows[39000003].source_file.endswith("sample26n0002.xml.gz")
    assert rows[39000001] == before[39000001]
    assert second.metrics["deletions"] == 1
    assert second.metrics["revised"] == 1 and second.metrics["inserted"] == 1
    assert second.rows_out == 8


def test_rerunning_either_file_changes_nothing(spark, sample_lakehouse):
    root, _, _, _, baseline, update = sample_lakehouse
    before = snapshot(spark, root)
    for path in (update, baseline):
        ingest_pubmed(spark, IngestConfig(lakehouse=root, inputs=[path]))
        assert snapshot(spark, root) == before
    tombstones = [r.pmid for r in read(spark, root, PUBMED_DELETIONS).collect()]
    assert tombstones == [39000007]


def test_cli_quarantines_bad_files_and_keeps_good_records(spark, tmp_path, capsys):
    write_bad_inputs(tmp_path / "in")
    root = str(tmp_path / "lakehouse")
    assert main(["ingest", "pubmed", str(tmp_path / "in"), "--lakehouse", root]) == 0
    out = capsys.readouterr().out
    assert "quarantined" in out
    kept = {r.pmid for r in read(spark, root, PUBMED).collect()}
    assert kept >= GOOD_PMIDS
    errors = {
        (Path(r.source_file).name, r.error_class) for r in read(spark, root, QUARANTINE).collect()
    }
    assert {
        ("bad_malformed.xml", "MalformedXML"),
        ("bad_xxe.xml", "MalformedXML"),
        ("bad_laughs.xml", "MalformedXML"),
        ("bad_empty.xml", "EmptyInput"),
        ("bad_not_xml.xml", "NotXml"),
    } <= errors
    assert any(name == "bad_truncated.xml.gz" for name, _ in errors)
    assert not any("root:" in (r.title or "") for r in read(spark, root, PUBMED).collect())
    strict = main(["ingest", "pubmed", str(tmp_path / "in"), "--lakehouse", root, "--strict"])
    assert strict == 3


def test_cli_sql_names_tables_by_layer(spark, fixtures_lakehouse, capsys):
    root, _ = fixtures_lakehouse
    query = "SELECT count(*) AS n FROM bronze_pubmed WHERE language = 'eng'"
    assert main(["sql", query, "--lakehouse", root, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = read(spark, root, PUBMED).filter("language = 'eng'").count()
    assert rows == [{"n": expected}]
    assert (
        main(["sql", "SELECT stage, status FROM _runs", "--lakehouse", root, "--format", "csv"])
        == 0
    )
    assert "ingest_pubmed,succeeded" in capsys.readouterr().out


def test_cli_reports_a_missing_input_in_one_line(tmp_path, capsys):
    code = main(["ingest", "pubmed", str(tmp_path / "nope.xml"), "--lakehouse", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("gapreplay ingest: FileNotFoundError:")
