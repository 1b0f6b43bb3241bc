"""download.pmc against a loopback copy of PMC's oa_bulk layout (nginx-style listings),
packages built as tar.gz from the real JATS fixtures with their file lists: subsets as
separate choices, baseline before incremental packages, a changed package fetched again and
an unchanged one not, identity from HEAD when a listing shows no dates or sizes."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from download.files import read_manifest
from tests.conftest import FIXTURES
from tests.test_download_http import Mirror, fetch

JATS = FIXTURES / "pmc_jats"
OA = "pub/pmc/oa_bulk"
PACKAGES = {
    f"{OA}/oa_comm/xml/oa_comm_xml.PMC003xxxxxx.baseline.2025-06-18": "sibils/3_Biotech",
    f"{OA}/oa_comm/xml/oa_comm_xml.PMC002xxxxxx.baseline.2025-06-18": "sibils/Adv_Bioinformatics",
    f"{OA}/oa_comm/xml/oa_comm_xml.incr.2025-06-19": "s2orc_doc2json",
    f"{OA}/oa_noncomm/xml/oa_noncomm_xml.PMC002xxxxxx.baseline.2025-06-18": "sibils/Abdom_Imaging",
}


def _member(path: Path) -> str:
    """PMC's member name: PMC002xxxxxx/PMC2768302.xml."""
    number = int(path.stem.removeprefix("PMC"))
    return f"PMC{number // 1_000_000:03d}xxxxxx/{path.name}"


def write_package(stem: Path, articles: list[Path]) -> dict[str, bytes]:
    """`<stem>.tar.gz` and its `.filelist.csv` / `.filelist.txt`, as PMC ships them."""
    members = {_member(p): p.read_bytes() for p in articles}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_750_000_000
            tar.addfile(info, io.BytesIO(data))
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_name(stem.name + ".tar.gz").write_bytes(buffer.getvalue())
    header = (
        "Article File,Article Citation,AccessionID,LastUpdated (YYYY-MM-DD HH:MM:SS),PMID,"
        "License,Retracted"
    )
    rows = [f"{n},Citation,{n.split('/')[1][:-4]},2025-06-18 00:00:00,0,CC BY,no" for n in members]
    stem.with_name(stem.name + ".filelist.csv").write_text("\n".join([header, *rows]) + "\n")
    txt = "\n".join(r.replace(",", "\t") for r in [header, *rows]) + "\n"
    stem.with_name(stem.name + ".filelist.txt").write_text(txt)
    return members


@pytest.fixture
def mirror(tmp_path: Path):
    root = tmp_path / "www"
    for stem, folder in PACKAGES.items():
        write_package(root / stem, sorted((JATS / folder).iterdir()))
    with Mirror(root, listing="nginx") as mirror:
        yield mirror


def _names(mirror: Mirror, method: str = "GET") -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in mirror.seen(method, f"/{OA}/") if "." in r.path]


def test_commercial_subset_in_order_with_file_lists(mirror: Mirror, tmp_path: Path) -> None:
    to = tmp_path / "pmc"
    report = fetch("pmc", to, mirror)
    assert (report.fetched, report.failed) == (6, 0)
    assert _names(mirror) == [
        "oa_comm_xml.PMC002xxxxxx.baseline.2025-06-18.tar.gz",
        "oa_comm_xml.PMC002xxxxxx.baseline.2025-06-18.filelist.csv",
        "oa_comm_xml.PMC003xxxxxx.baseline.2025-06-18.tar.gz",
        "oa_comm_xml.PMC003xxxxxx.baseline.2025-06-18.filelist.csv",
        "oa_comm_xml.incr.2025-06-19.tar.gz",
        "oa_comm_xml.incr.2025-06-19.filelist.csv",
    ]
    assert not mirror.seen("GET", "oa_noncomm")  # a separate choice, not asked for
    for stem in list(PACKAGES)[:3]:
        name = stem.rsplit("/", 1)[1] + ".tar.gz"
        local = to / "oa_comm" / name
        assert local.read_bytes() == (mirror.root / (stem + ".tar.gz")).read_bytes()
        with tarfile.open(local) as tar:
            assert all(m.name.startswith("PMC00") for m in tar.getmembers())
    records = read_manifest(to)
    assert {r["subset"] for r in records} == {"oa_comm"}
    assert records[1]["package"] == "oa_comm_xml.PMC002xxxxxx.baseline.2025-06-18.tar.gz"

    one = fetch("pmc", tmp_path / "one", mirror, max_files=1)
    assert one.fetched == 2  # the first package and its file list


def test_only_new_or_changed_packages_are_fetched_again(mirror: Mirror, tmp_path: Path) -> None:
    to = tmp_path / "pmc"
    fetch("pmc", to, mirror)
    mirror.clear()
    again = fetch("pmc", to, mirror)
    assert (again.fetched, again.skipped_unchanged) == (0, 6)
    assert _names(mirror) == [] and _names(mirror, "HEAD") == []
    # NLM replaces the incremental package: a new date and size in the listing.
    stem = mirror.root / f"{OA}/oa_comm/xml/oa_comm_xml.incr.2025-06-19"
    extra = JATS / "sibils/3_Biotech/PMC3324826.xml"
    new_members = write_package(stem, [*sorted((JATS / "s2orc_doc2json").iterdir()), extra])
    later = stem.with_name(stem.name + ".tar.gz").stat().st_mtime + 3600
    for suffix in (".tar.gz", ".filelist.csv", ".filelist.txt"):
        os.utime(stem.with_name(stem.name + suffix), (later, later))
    mirror.clear()
    changed = fetch("pmc", to, mirror)
    assert (changed.fetched, changed.skipped_unchanged) == (2, 4)
    assert _names(mirror) == [
        "oa_comm_xml.incr.2025-06-19.tar.gz",
        "oa_comm_xml.incr.2025-06-19.filelist.csv",
    ]
    with tarfile.open(to / "oa_comm/oa_comm_xml.incr.2025-06-19.tar.gz") as tar:
        assert sorted(tar.getnames()) == sorted(new_members)
    latest = {r["path"]: r for r in read_manifest(to)}
    record = latest["oa_comm/oa_comm_xml.incr.2025-06-19.tar.gz"]
    assert record["size"] == (stem.with_name(stem.name + ".tar.gz")).stat().st_size


def test_non_commercial_subset_both_file_lists(mirror: Mirror, tmp_path: Path) -> None:
    to = tmp_path / "noncomm"
    report = fetch("pmc", to, mirror, options={"subsets": ["oa_noncomm"], "filelists": "both"})
    assert report.fetched == 3
    assert sorted(p.name for p in (to / "oa_noncomm").iterdir()) == [
        "oa_noncomm_xml.PMC002xxxxxx.baseline.2025-06-18.filelist.csv",
        "oa_noncomm_xml.PMC002xxxxxx.baseline.2025-06-18.filelist.txt",
        "oa_noncomm_xml.PMC002xxxxxx.baseline.2025-06-18.tar.gz",
    ]
    assert not mirror.seen("GET", "/oa_comm/")


def test_listing_without_dates_falls_back_to_head(mirror: Mirror, tmp_path: Path) -> None:
    name = "oa_comm_xml.incr.2025-06-19.tar.gz"
    mirror.pages[f"/{OA}/oa_comm/xml/"] = f'<a href="{name}">{name}</a>'.encode()
    to = tmp_path / "pmc"
    options = {"filelists": "none"}
    assert fetch("pmc", to, mirror, options=options).fetched == 1
    assert _names(mirror, "HEAD") == [name]
    identity = read_manifest(to)[0]["identity"]
    assert set(identity) == {"etag", "last_modified", "size"}
    mirror.clear()
    again = fetch("pmc", to, mirror, options=options)
    assert (again.fetched, again.skipped_unchanged) == (0, 1)
    assert _names(mirror, "HEAD") == [name] and _names(mirror) == []
