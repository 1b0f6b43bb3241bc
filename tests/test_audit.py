"""The auditors' questions: lineage from a shard sequence back to the bronze record (and
cleaning that record again gives the silver text), every decision about a document, the
diff between two builds, and Delta maintenance that keeps the history they read."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import fsspec
from lxml import etree

from corpus.silver_stages import run_document_stages
from schemas.gold import LINEAGE
from schemas.silver import DOCUMENTS
from spark_jobs.audit import diff, lineage_of_sequence, why
from spark_jobs.clean import bronze_documents, clean
from spark_jobs.config import IngestConfig
from spark_jobs.ingest_pubmed import ingest_pubmed
from spark_jobs.maintain import _files, maintain
from spark_jobs.tables import read_table, table_path, table_version
from tests.conftest import SAMPLE


def test_lineage_leads_to_the_bronze_record_that_cleans_to_the_same_text(
    spark, sample_build
) -> None:
    root, config = sample_build.root, sample_build.config
    lineage = read_table(spark, root, LINEAGE).collect()
    rng = random.Random(20261127)
    prefixes = sorted({r.prefix for r in lineage})
    for prefix in rng.sample(prefixes, 3):
        seq = rng.choice([r.seq_index for r in lineage if r.prefix == prefix])
        found = lineage_of_sequence(
            spark, root, Path(prefix).relative_to(config.out).as_posix(), seq
        )
        bronze = found["bronze"]
        assert Path(bronze["source_file"]).is_file() and bronze["locator"]
        assert found["silver"]["source_file"] == bronze["source_file"]
        row = bronze_documents(spark, root).filter(f"doc_id = '{found['doc_id']}'").collect()
        again = run_document_stages([row[0].asDict()], config.silver)[0]
        silver = read_table(spark, root, DOCUMENTS).filter(f"doc_id = '{found['doc_id']}'").first()
        assert again["text"] == silver.text and not again["dropped"]


def test_why_lists_every_decision_in_stage_order(spark, sample_build) -> None:
    planted = why(spark, sample_build.root, "pubmed:39000006")
    assert [d["stage"] for d in planted][-1] == "decontamination"
    assert not planted[-1]["kept"] and planted[-1]["reason"] == "benchmark_pmid"
    assert all(d["kept"] for d in planted[:-1])
    kept = why(spark, sample_build.root, "pmc:PMC9900001")
    stages = [d["stage"] for d in kept]
    assert stages[0] == "clean" and stages[-1] == "mix" and all(d["kept"] for d in kept)
    assert "exact_dedup" in stages and "near_dedup" in stages
    assert why(spark, sample_build.root, "pubmed:1") == []


def _update_file_pmids(path: Path) -> tuple[set[str], set[str]]:
    root = etree.fromstring(gzip.decompress(path.read_bytes()))
    deleted = {p.text for p in root.iterfind(".//DeleteCitation/PMID")}
    revised = {p.text for p in root.iterfind(".//MedlineCitation/PMID")}
    return deleted, revised


def test_diff_lists_the_deleted_and_revised_pmids(spark, tmp_path) -> None:
    root = str(tmp_path / "lakehouse")
    from spark_jobs.config import CorpusConfig

    silver = CorpusConfig().silver
    ingest_pubmed(
        spark, IngestConfig(lakehouse=root, inputs=[str(SAMPLE / "pubmed" / "sample26n0001.xml")])
    )
    clean(spark, root, silver)
    first = table_version(spark, root, DOCUMENTS)
    before = {r.doc_id for r in read_table(spark, root, DOCUMENTS).collect()}
    update = SAMPLE / "pubmed" / "sample26n0002.xml.gz"
    ingest_pubmed(spark, IngestConfig(lakehouse=root, inputs=[str(update)]))
    clean(spark, root, silver)
    second = table_version(spark, root, DOCUMENTS)
    deleted, in_update = _update_file_pmids(update)
    found = diff(spark, root, str(first), str(second))
    removed = {doc_id: reason for doc_id, _, reason in found["removed"]}
    assert removed == {
        f"pubmed:{p}": "deleted upstream" for p in deleted if f"pubmed:{p}" in before
    }
    assert removed  # the sample's deletion was in the first build
    assert {d for d, _ in found["changed"]} == {f"pubmed:{p}" for p in in_update} & before
    assert {d for d, _ in found["added"]} <= {f"pubmed:{p}" for p in in_update} - before

    # Maintenance compacts (`_runs` gets a file per run) and keeps the history diff reads.
    from delta.tables import DeltaTable

    from schemas.runs import RUNS

    def files(spec) -> int:  # type: ignore[no-untyped-def]
        return DeltaTable.forPath(spark, table_path(root, spec)).detail().first().numFiles

    runs_files = files(RUNS)
    result = maintain(spark, root)
    # One compacted file, and the row of the maintain run itself, appended after.
    assert runs_files > 1 and files(RUNS) == 2
    assert result.metrics["files_removed_by_optimize._runs"] == runs_files
    assert diff(spark, root, str(first), str(second)) == found


def test_maintain_counts_data_files_on_an_object_store() -> None:
    """maintain's before/after file counts list the store through fsspec: data files only,
    not the Parquet checkpoints in _delta_log."""
    fs = fsspec.filesystem("memory")
    for name in (
        "a.parquet",
        "part=1/b.parquet",
        "_delta_log/00000000000000000010.checkpoint.parquet",
    ):
        fs.pipe_file(f"/gapreplay-maintain/table/{name}", b"x")
    try:
        assert _files("memory://gapreplay-maintain/table") == 2
    finally:
        fs.rm("/gapreplay-maintain", recursive=True)
