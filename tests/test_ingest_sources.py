"""`gapreplay ingest pmc|replay` on Spark + Delta: every fixture file, MERGE idempotence,
line- and member-level quarantine."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from schemas.bronze import PMC, QUARANTINE, REPLAY
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_pmc import ingest_pmc
from spark_jobs.ingest_replay import ingest_replay
from spark_jobs.tables import table_path
from tests.conftest import FIXTURES


def read(spark, root, spec):
    return spark.read.format("delta").load(table_path(root, spec))


def content(spark, root, spec):
    columns = [c for c in spec.columns if c != "ingest_run_id"]
    return sorted(tuple(r) for r in read(spark, root, spec).select(*columns).collect())


@pytest.fixture(scope="module")
def pmc_lakehouse(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pmc") / "lakehouse")
    bad = tmp_path_factory.mktemp("pmc_bad")
    package = io.BytesIO()
    with tarfile.open(fileobj=package, mode="w:gz") as tar:
        good = (FIXTURES / "pmc_jats" / "s2orc_doc2json" / "PMC5828200.nxml").read_bytes()
        for name, data in (("../escape.xml", good), ("pkg/broken.xml", b"<article><front>")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (bad / "bad_package.tar.gz").write_bytes(package.getvalue())
    result = ingest_pmc(
        spark, IngestConfig(lakehouse=root, inputs=[str(FIXTURES / "pmc_jats"), str(bad)])
    )
    return root, result


def test_every_pmc_fixture_article_ingests(spark, pmc_lakehouse):
    root, result = pmc_lakehouse
    expected = {p.stem for p in (FIXTURES / "pmc_jats").rglob("*") if p.suffix in (".xml", ".nxml")}
    rows = {r.pmcid: r for r in read(spark, root, PMC).collect()}
    assert set(rows) == expected and len(expected) == 18
    paper = rows["PMC2775679"]
    assert paper.license == "cc-by" and paper.has_body and paper.markers
    assert "[formula]" in paper.body and "[bib_ref]" in paper.body
    assert result.metrics["inserted"] == 18


def test_pmc_package_members_are_quarantined_not_extracted(spark, pmc_lakehouse, tmp_path):
    root, result = pmc_lakehouse
    errors = {
        (r.locator, r.error_class)
        for r in read(spark, root, QUARANTINE).collect()
        if r.source == "pmc"
    }
    assert any(cls == "UnsafeArchiveMember" and "../escape.xml" in loc for loc, cls in errors)
    assert any(cls == "MalformedXML" and "broken.xml" in loc for loc, cls in errors)
    assert result.quarantined == len(errors) == 2


def test_pmc_rerun_is_idempotent(spark, pmc_lakehouse):
    root, _ = pmc_lakehouse
    before = content(spark, root, PMC)
    again = ingest_pmc(spark, IngestConfig(lakehouse=root, inputs=[str(FIXTURES / "pmc_jats")]))
    assert content(spark, root, PMC) == before
    assert again.metrics["inserted"] == again.metrics["revised"] == 0


REPLAY_COUNTS = {
    "rp_arxiv_sample.jsonl": ("arxiv", 11),
    "redpajama-c4-refined.jsonl": ("c4", 10),
    "redpajama-cc-2023-06-refined.jsonl": ("common_crawl", 10),
    "redpajama-pile-stackexchange-refined.jsonl": ("stackexchange", 10),
    "the-pile-nih-refined.jsonl": ("pile", 10),
    "dolma_cc_en_head-0091.jsonl": ("common_crawl", 10),
    "dolma_documents_000.json.gz": ("common_crawl", 10),
}


def test_every_replay_fixture_file_with_its_count_and_subset(spark, tmp_path):
    root = str(tmp_path / "lakehouse")
    bad = tmp_path / "bad_lines.jsonl.gz"
    lines = [
        b'{"text": "first good line"}',
        b"{not json",
        b'{"text": "caf\xe9 in latin-1"}',
        b'{"text": "last good line"}',
    ]
    bad.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    result = ingest_replay(
        spark, IngestConfig(lakehouse=root, inputs=[str(FIXTURES / "redpajama"), str(bad)])
    )
    rows = read(spark, root, REPLAY).collect()
    for name, (subset, count) in REPLAY_COUNTS.items():
        mine = [r for r in rows if r.source_file.endswith(name)]
        assert len(mine) == count, name
        assert {r.subset for r in mine} == {subset}, name
    assert {r.text for r in rows if r.source_file.endswith("bad_lines.jsonl.gz")} == {
        "first good line",
        "last good line",
    }
    errors = sorted((r.locator, r.error_class) for r in read(spark, root, QUARANTINE).collect())
    assert errors == [("line=2", "InvalidJson"), ("line=3", "InvalidUtf8")]
    assert result.metrics["records_parsed"] == 73
