"""download.pubmed against a loopback copy of NLM's layout built from the real fixture files:
a complete download checked against the published .md5 files, a wrong .md5 retried then
rejected out of ingest's way, nothing fetched twice, dry run, --max-files, a hostile listing."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from rich.console import Console

import download
from download.files import MANIFEST_NAME, read_manifest
from spark_jobs.ingest_common import input_files
from spark_jobs.ingest_pubmed import SUFFIXES
from tests.test_download_http import FAST, Mirror, build_pubmed, fetch


@pytest.fixture
def mirror(tmp_path: Path):
    with Mirror(tmp_path / "www") as mirror:
        yield mirror


def test_complete_download_checksums_and_second_run(mirror: Mirror, tmp_path: Path) -> None:
    files = build_pubmed(mirror.root, wrong_md5=("pubmed26n0003.xml.gz",))
    to = tmp_path / "pubmed"
    report = fetch("pubmed", to, mirror)
    assert (report.fetched, report.rejected_checksum, report.failed) == (4, 1, 0)
    # The wrong .md5 gets 1 + checksum_retries (2) fresh downloads before it is rejected.
    file_gets = [g.path.rsplit("/", 1)[1] for g in mirror.seen("GET") if g.path.endswith(".gz")]
    assert file_gets == [
        "pubmed26n0001.xml.gz",
        "pubmed26n0002.xml.gz",
        *["pubmed26n0003.xml.gz"] * 3,
        "pubmed26n0004.xml.gz",  # updates after the baseline, in number order
        "pubmed26n0005.xml.gz",
    ]
    for rel, data in files.items():
        if "0003" not in rel:
            assert (to / rel).read_bytes() == data
    rejected = to / "_rejected/baseline/pubmed26n0003.xml.gz.rejected"
    assert rejected.read_bytes() == files["baseline/pubmed26n0003.xml.gz"]
    assert not (to / "baseline/pubmed26n0003.xml.gz").exists()
    assert not (to / "baseline/pubmed26n0003.xml.gz.part").exists()
    # Ingest's own file search sees the four good files and nothing else.
    assert [Path(p).name for p in input_files([str(to)], SUFFIXES)] == [
        "pubmed26n0001.xml.gz",
        "pubmed26n0002.xml.gz",
        "pubmed26n0004.xml.gz",
        "pubmed26n0005.xml.gz",
    ]
    records = {r["path"]: r for r in read_manifest(to)}
    assert set(records) == {
        "baseline/pubmed26n0001.xml.gz",
        "baseline/pubmed26n0002.xml.gz",
        "_rejected/baseline/pubmed26n0003.xml.gz.rejected",
        "updatefiles/pubmed26n0004.xml.gz",
        "updatefiles/pubmed26n0005.xml.gz",
    }
    ok = records["baseline/pubmed26n0002.xml.gz"]
    data = files["baseline/pubmed26n0002.xml.gz"]
    assert ok["status"] == "ok" and ok["size"] == len(data)
    assert ok["md5"] == ok["md5_published"] == hashlib.md5(data).hexdigest()
    assert ok["sha256"] == hashlib.sha256(data).hexdigest()
    assert ok["url"] == "https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/pubmed26n0002.xml.gz"
    assert ok["fetched_from"] == f"{mirror.url}/pubmed/baseline/pubmed26n0002.xml.gz"
    assert ok["fetched_at"].endswith("Z")
    bad = records["_rejected/baseline/pubmed26n0003.xml.gz.rejected"]
    assert bad["status"] == "rejected"
    assert bad["md5_published"] in bad["reason"] and "after 3 downloads" in bad["reason"]
    assert any("pubmed26n0003" in e for e in report.errors)

    mirror.clear()
    again = fetch("pubmed", to, mirror)
    assert (again.fetched, again.skipped_unchanged, again.rejected_checksum) == (0, 4, 1)
    # The good files are neither downloaded nor even checksummed again; the rejected one
    # is tried again (it may have been a transient corruption).
    assert {g.path.rsplit("/", 1)[1] for g in mirror.seen("GET") if ".xml.gz" in g.path} == {
        "pubmed26n0003.xml.gz",
        "pubmed26n0003.xml.gz.md5",
    }
    assert again.bytes == 3 * len(files["baseline/pubmed26n0003.xml.gz"])


def test_dry_run_gets_no_file_bodies(mirror: Mirror, tmp_path: Path) -> None:
    build_pubmed(mirror.root)
    to = tmp_path / "pubmed"
    out = io.StringIO()
    report = download.run(
        "pubmed",
        to,
        base_url=mirror.url,
        dry_run=True,
        options=FAST,
        console=Console(file=out, width=250),
    )
    assert [p.path for p in report.planned] == [
        "baseline/pubmed26n0001.xml.gz",
        "baseline/pubmed26n0002.xml.gz",
        "baseline/pubmed26n0003.xml.gz",
        "updatefiles/pubmed26n0004.xml.gz",
        "updatefiles/pubmed26n0005.xml.gz",
    ]
    assert all(p.state == "new" and p.est_bytes and p.est_bytes > 0 for p in report.planned)
    # Only the two listings were read; no file, no checksum, nothing written.
    assert [g.path for g in mirror.seen("GET")] == ["/pubmed/baseline/", "/pubmed/updatefiles/"]
    assert not to.exists()
    assert "pubmed26n0005.xml.gz" in out.getvalue() and "dry run, 5 to fetch" in out.getvalue()


def test_max_files_and_updates_only(mirror: Mirror, tmp_path: Path) -> None:
    build_pubmed(mirror.root)
    out = io.StringIO()
    first_two = download.run(
        "pubmed",
        tmp_path / "a",
        base_url=mirror.url,
        max_files=2,
        options={**FAST, "progress": True},
        console=Console(file=out, force_terminal=True, width=200),
    )
    assert first_two.fetched == 2
    # The progress bar's last frame: bytes, files and an ETA column.
    last = out.getvalue().rsplit("\r", 1)[-1]
    assert "files 2/2" in last and "kB" in last and "0:00:00" in last
    assert sorted(p.name for p in (tmp_path / "a/baseline").iterdir()) == [
        "pubmed26n0001.xml.gz",
        "pubmed26n0002.xml.gz",
    ]
    updates = fetch("pubmed", tmp_path / "b", mirror, options={"baseline": False})
    assert updates.fetched == 2 and not (tmp_path / "b/baseline").exists()
    assert [r["path"] for r in read_manifest(tmp_path / "b")] == [
        "updatefiles/pubmed26n0004.xml.gz",
        "updatefiles/pubmed26n0005.xml.gz",
    ]


def test_hostile_listing_names_are_rejected(mirror: Mirror, tmp_path: Path) -> None:
    build_pubmed(mirror.root)
    # Files a traversal would reach, served if anyone asked for them.
    for rel in ("evil.xml.gz", "pubmed/evil.xml.gz", "pubmed/baseline/sub/evil.xml.gz"):
        (mirror.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror.root / rel).write_bytes(b"evil")
    mirror.pages["/pubmed/baseline/"] = (
        b'<pre><a href="pubmed26n0001.xml.gz">ok</a>  2025-12-10 14:22  213K\n'
        b'<a href="../../evil.xml.gz">pubmed26n0002.xml.gz</a>\n'
        b'<a href="/pubmed/evil.xml.gz">x</a>\n'
        b'<a href="..%2F..%2Fpubmed99n0001.xml.gz">x</a>\n'
        b'<a href="sub%2Fevil.xml.gz">x</a>\n'
        b'<a href="/etc/passwd">x</a></pre>'
    )
    to = tmp_path / "dl" / "pubmed"
    report = fetch("pubmed", to, mirror, options={"updates": False})
    assert report.fetched == 1
    assert report.unsafe_names == [
        "../../evil.xml.gz",
        "/pubmed/evil.xml.gz",
        "..%2F..%2Fpubmed99n0001.xml.gz",
        "sub%2Fevil.xml.gz",
        "/etc/passwd",
    ]
    assert not [g for g in mirror.requests if "evil" in g.path or "passwd" in g.path]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert [w for w in written if not w.startswith("www/")] == [
        "dl/pubmed/.download.lock",
        f"dl/pubmed/{MANIFEST_NAME}",
        "dl/pubmed/baseline/pubmed26n0001.xml.gz",
    ]
