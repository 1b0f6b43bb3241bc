"""The shipped download settings validate, and configs/meditron.yaml is a valid corpus
config whose inputs are exactly the download folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import download
from spark_jobs.config import load_config
from tests.conftest import REPO

CONFIGS = REPO / "configs"


def test_meditron_config_reads_the_download_folders() -> None:
    jobs = download.load_download_config(CONFIGS / "meditron_download.yaml")
    assert set(jobs) == set(download.SOURCES)
    config = load_config(CONFIGS / "meditron.yaml")
    for source, job in jobs.items():
        inputs = getattr(config.sources, source).inputs
        assert [Path(p).resolve() for p in inputs] == [job.to.resolve()]
    assert jobs["replay"].options["seed"] == config.mix.seed
    assert jobs["pubmed"].options["rate"] == 3.0


def test_bad_download_settings_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pmc:\n  to: x\n  options:\n    subsets: [oa_all]\n")
    with pytest.raises(download.OptionsError, match=r"pmc: subsets\.0"):
        download.load_download_config(bad)
    bad.write_text("pubmed:\n  to: x\n  options:\n    md5_retries: 1\n")
    with pytest.raises(download.OptionsError, match="md5_retries: unknown option"):
        download.load_download_config(bad)
    bad.write_text("guidelines:\n  to: x\n  options:\n    include: {cdc: ['(']}\n")
    with pytest.raises(download.OptionsError, match=r"include: .*bad regular expression"):
        download.load_download_config(bad)
    bad.write_text("arxiv:\n  to: x\n")
    with pytest.raises(download.OptionsError, match="unknown source"):
        download.load_download_config(bad)
    with pytest.raises(ValueError, match="base_url"):
        download.run("pubmed", tmp_path / "p", base_url="ftp://mirror/")


def test_ingest_records_where_a_downloaded_file_came_from(tmp_path: Path) -> None:
    from download.files import MANIFEST_NAME, provenance

    (tmp_path / "baseline").mkdir()
    fetched, local = tmp_path / "baseline" / "a.xml.gz", tmp_path / "b.xml.gz"
    fetched.write_bytes(b"x")
    local.write_bytes(b"y")
    records = [
        {
            "url": "https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/a.xml.gz",
            "path": "baseline/a.xml.gz",
            "size": 1,
            "md5": "9dd4e461268c8034f5c8564e155c67a6",
            "status": "ok",
            "fetched_at": "2026-11-27T00:00:00Z",
        },
        {
            "url": "https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/c.xml.gz",
            "path": "c.xml.gz",
            "status": "rejected",
        },
    ]
    (tmp_path / MANIFEST_NAME).write_text("".join(json.dumps(r) + "\n" for r in records))
    found = provenance([str(tmp_path)], [str(fetched), str(local)])
    assert found[1] == str(local)
    assert found[0]["path"] == str(fetched) and found[0]["url"] == records[0]["url"]
    assert found[0]["md5"] == records[0]["md5"] and found[0]["fetched_at"]
