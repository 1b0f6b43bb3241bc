"""`gapreplay ingest guidelines` on Spark + Delta: the fixture PDFs, the sample, bad files."""

from __future__ import annotations

import pytest

from schemas.bronze import GUIDELINES, QUARANTINE
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_guidelines import ingest_guidelines
from spark_jobs.tables import table_path
from tests.conftest import FIXTURES, SAMPLE


def read(spark, root, spec):
    return spark.read.format("delta").load(table_path(root, spec))


@pytest.fixture(scope="module")
def guidelines_lakehouse(spark, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("guidelines") / "lakehouse")
    bad = tmp_path_factory.mktemp("bad_guidelines")
    # A PDF header over bytes that are no PDF structure at all (MuPDF repairs mere truncation).
    (bad / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    (bad / "empty_page.html").write_text("<html><head><title>x</title></head><body></body></html>")
    result = ingest_guidelines(
        spark,
        IngestConfig(
            lakehouse=root,
            inputs=[str(FIXTURES / "guidelines" / "pdf"), str(bad)],
            timeout_s=120,
        ),
    )
    return root, result


def test_every_fixture_pdf_ingests_with_its_source_and_licence(spark, guidelines_lakehouse):
    root, result = guidelines_lakehouse
    rows = {r.source_file.rsplit("/", 1)[-1]: r for r in read(spark, root, GUIDELINES).collect()}
    assert set(rows) == {p.name for p in (FIXTURES / "guidelines" / "pdf").iterdir()}
    opioids = rows["cdc_mmwr_rr7103a1_opioids_for_pain_2022.pdf"]
    assert opioids.source == "cdc" and opioids.license == "public-domain"
    assert opioids.n_pages == 100 and opioids.locator == "pages=1-100"
    assert rows["who_ipc_core_components_guidelines_2016.pdf"].license == "cc-by-nc-sa"
    assert all(r.format == "pdf" and len(r.raw_text) > 10_000 for r in rows.values())
    assert result.metrics["inserted"] == 4


def test_bad_guideline_files_are_quarantined(spark, guidelines_lakehouse):
    root, result = guidelines_lakehouse
    errors = {
        (r.source_file.rsplit("/", 1)[-1], r.error_class)
        for r in read(spark, root, QUARANTINE).collect()
    }
    assert errors == {("corrupt.pdf", "CorruptPdf"), ("empty_page.html", "EmptyExtraction")}
    assert result.quarantined == 2


def test_sample_guidelines_with_a_user_added_source(spark, tmp_path):
    root = str(tmp_path / "lakehouse")
    config = IngestConfig(
        lakehouse=root,
        inputs=[str(SAMPLE / "guidelines")],
        source="sample",
        extra_sources=[{"key": "sample", "publisher": "sample", "open": True, "license": "cc0"}],
    )
    ingest_guidelines(spark, config)
    rows = read(spark, root, GUIDELINES).collect()
    assert sorted(r.format for r in rows) == ["html", "pdf"]
    assert {r.source for r in rows} == {"sample"} and {r.license for r in rows} == {"cc0"}
    pdf = next(r for r in rows if r.format == "pdf")
    assert "gapreplay sample guideline" not in pdf.raw_text  # the running header is gone
    assert "# Repositioning" in pdf.raw_text
