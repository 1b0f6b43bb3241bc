"""download.guidelines against a loopback mirror in `wget --mirror` layout (<host>/<path>):
index pages whose links are documents, robots.txt obeyed, other sites' links ignored, the
registry's other hosts of a source followed, MediTron's released JSONL from the Hugging Face
layout, URL and retrieval date in the manifest, nothing fetched twice, a dry run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

import download
from corpus.guideline_sources import source_for_path
from download.files import read_manifest, safe_path
from download.guidelines import document_path, sniff
from spark_jobs.ingest_common import input_files
from spark_jobs.ingest_guidelines import SUFFIXES
from tests.conftest import FIXTURES
from tests.test_download_http import FAST, Mirror, fetch

PDF = FIXTURES / "guidelines/pdf"
CDC_INDEX = "https://www.cdc.gov/guidelines/index.html"
WHO_INDEX = "https://www.who.int/publications/guidelines/index.html"
RELEASED = [
    {
        "id": "a1",
        "source": "cdc",
        "title": "Opioids",
        "clean_text": "# Opioids\nText.",
        "raw_text": "Opioids. Text.",
        "url": "https://www.cdc.gov/x",
        "overview": None,
    },
    {
        "id": "b2",
        "source": "who",
        "title": "IPC",
        "clean_text": "# IPC\nText.",
        "raw_text": "IPC. Text.",
        "url": "https://www.who.int/y",
        "overview": None,
    },
]
OPTIONS = {
    **FAST,
    "sources": ["cdc", "who"],
    "index_pages": {"cdc": [CDC_INDEX], "who": [WHO_INDEX]},
    "include": {"who": [r"\.pdf$", r"/publications/i/item/"]},
    "urls": {"cdc": ["https://www.cdc.gov/private/listed-by-hand.pdf"]},
}


def _put(root: Path, rel: str, data: bytes | str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def mirror(tmp_path: Path):
    root = tmp_path / "www"
    _put(root, "www.cdc.gov/robots.txt", "User-agent: *\nDisallow: /private/\n")
    _put(
        root,
        "www.cdc.gov/guidelines/index.html",
        "<html><body><h1>Guidelines</h1>"
        '<a href="/mmwr/volumes/71/rr/pdfs/rr7103a1-H.pdf">Opioids 2022</a>'
        '<a href="../infectioncontrol/pdf/outpatient/guide.pdf#page=2">Outpatient</a>'
        '<a href="/private/secret.pdf">staff only</a>'
        '<a href="/guidelines/about.html">About</a>'
        '<a href="https://www.example.org/other.pdf">elsewhere</a>'
        '<a href="mailto:info@cdc.gov">mail</a><a href="#top">top</a></body></html>',
    )
    _put(
        root,
        "www.cdc.gov/mmwr/volumes/71/rr/pdfs/rr7103a1-H.pdf",
        (PDF / "cdc_mmwr_rr7103a1_opioids_for_pain_2022.pdf").read_bytes(),
    )
    _put(
        root,
        "www.cdc.gov/infectioncontrol/pdf/outpatient/guide.pdf",
        (PDF / "cdc_infection_prevention_outpatient_settings_2016.pdf").read_bytes(),
    )
    _put(root, "www.cdc.gov/private/secret.pdf", b"%PDF-1.4 secret")
    _put(root, "www.cdc.gov/private/listed-by-hand.pdf", b"%PDF-1.4 secret")
    _put(root, "www.example.org/other.pdf", b"%PDF-1.4 other")
    # www.who.int has no robots.txt (404: everything allowed); iris.who.int asks for a pause.
    _put(root, "iris.who.int/robots.txt", "User-agent: *\nCrawl-delay: 1\n")
    _put(
        root,
        "www.who.int/publications/guidelines/index.html",
        '<a href="https://iris.who.int/bitstream/handle/10665/251730/9789241549929-eng.pdf">'
        'IPC core components</a><a href="/publications/i/item/9789241549929">IPC page</a>'
        '<a href="/news">News</a>',
    )
    _put(
        root,
        "iris.who.int/bitstream/handle/10665/251730/9789241549929-eng.pdf",
        (PDF / "who_ipc_core_components_guidelines_2016.pdf").read_bytes(),
    )
    _put(
        root,
        "www.who.int/publications/i/item/9789241549929",
        "<!DOCTYPE html><html><head><title>IPC</title></head><body><p>Core components."
        "</p></body></html>",
    )
    _put(
        root,
        "huggingface.co/datasets/epfl-llm/guidelines/resolve/main/open_guidelines.jsonl",
        "".join(json.dumps(r) + "\n" for r in RELEASED),
    )
    with Mirror(root) as mirror:
        yield mirror


def test_index_pages_robots_and_released_set(mirror: Mirror, tmp_path: Path) -> None:
    to = tmp_path / "guidelines"
    report = fetch("guidelines", to, mirror, options=OPTIONS)
    assert (report.fetched, report.failed, report.skipped_robots) == (5, 0, 2)
    # Disallowed, other-site and non-matching links were never requested.
    paths = [r.path for r in mirror.requests]
    assert not [p for p in paths if "/private/" in p or "example.org" in p or "about" in p]
    assert paths.count("/www.cdc.gov/robots.txt") == 1
    # iris.who.int's Crawl-delay slowed that host (the mirror's) to one request a second.
    robots_at = mirror.seen("GET", "/iris.who.int/robots.txt")[0].at
    (iris_pdf,) = mirror.seen("GET", "/iris.who.int/bitstream/")
    assert iris_pdf.at - robots_at >= 0.95
    records = {r["url"]: r for r in read_manifest(to)}
    assert set(records) == {
        "https://huggingface.co/datasets/epfl-llm/guidelines/resolve/main/open_guidelines.jsonl",
        "https://www.cdc.gov/mmwr/volumes/71/rr/pdfs/rr7103a1-H.pdf",
        "https://www.cdc.gov/infectioncontrol/pdf/outpatient/guide.pdf",
        "https://iris.who.int/bitstream/handle/10665/251730/9789241549929-eng.pdf",
        "https://www.who.int/publications/i/item/9789241549929",
    }
    opioids = records["https://www.cdc.gov/mmwr/volumes/71/rr/pdfs/rr7103a1-H.pdf"]
    assert opioids["found_on"] == CDC_INDEX and opioids["guideline_source"] == "cdc"
    assert opioids["license"] == "public-domain" and opioids["fetched_at"].endswith("Z")
    assert opioids["fetched_from"].startswith(f"{mirror.url}/www.cdc.gov/mmwr/")
    local = to / opioids["path"]
    assert local.read_bytes() == (PDF / "cdc_mmwr_rr7103a1_opioids_for_pain_2022.pdf").read_bytes()
    # The file name says the source, so ingest's registry finds it without configuration.
    for record in records.values():
        if "guideline_source" in record:
            assert source_for_path(str(to / record["path"])) == record["guideline_source"]
    page = records["https://www.who.int/publications/i/item/9789241549929"]
    assert page["path"].startswith("who/who_9789241549929-") and page["path"].endswith(".html")
    released = to / "released/open_guidelines.jsonl"
    assert [json.loads(line) for line in released.read_text().splitlines()] == RELEASED
    assert len(input_files([str(to)], SUFFIXES)) == 5

    mirror.clear()
    again = fetch("guidelines", to, mirror, options=OPTIONS)
    assert (again.fetched, again.skipped_unchanged) == (0, 5)
    # Index pages and robots.txt are read again (links may be new); no document is.
    assert sorted({r.path for r in mirror.seen("GET")}) == [
        "/iris.who.int/robots.txt",
        "/www.cdc.gov/guidelines/index.html",
        "/www.cdc.gov/robots.txt",
        "/www.who.int/publications/guidelines/index.html",
        "/www.who.int/robots.txt",
    ]


def test_dry_run_reads_index_pages_but_no_documents(mirror: Mirror, tmp_path: Path) -> None:
    to = tmp_path / "guidelines"
    report = download.run(
        "guidelines",
        to,
        base_url=mirror.url,
        dry_run=True,
        options=OPTIONS,
        console=Console(file=io.StringIO(), width=250),
    )
    assert len(report.planned) == 5 and report.skipped_robots == 2
    sizes = {p.url.rsplit("/", 1)[1]: p.est_bytes for p in report.planned}
    assert (
        sizes["rr7103a1-H.pdf"]
        == (PDF / "cdc_mmwr_rr7103a1_opioids_for_pain_2022.pdf").stat().st_size
    )
    gets = {r.path for r in mirror.seen("GET")}
    assert not [p for p in gets if p.endswith((".pdf", ".jsonl")) or "/i/item/" in p]
    assert len(mirror.seen("HEAD")) == 5
    assert not to.exists()


def test_sources_default_to_the_open_ones_and_need_configuration(
    mirror: Mirror, tmp_path: Path
) -> None:
    report = fetch("guidelines", tmp_path / "g", mirror, options={"released": False})
    assert report.fetched == 0
    # Every open source of the registry was considered; none had URLs configured.
    assert sorted(n.split(":")[0] for n in report.notes) == [
        "cco",
        "cdc",
        "cma",
        "icrc",
        "nice",
        "spor",
        "who",
        "wikidoc",
    ]
    with pytest.raises(download.OptionsError, match="not in the guideline source registry"):
        fetch("guidelines", tmp_path / "g", mirror, options={"sources": ["nosuch"]})
    with pytest.raises(download.OptionsError, match="unknown option"):
        fetch("guidelines", tmp_path / "g", mirror, options={"index_page": {}})


def test_names_and_sniffing(tmp_path: Path) -> None:
    url = "https://www.nice.org.uk/guidance/ng28/resources/type-2-diabetes.pdf?x=1"
    assert document_path("nice", url).startswith("nice/nice_type-2-diabetes-")
    assert document_path("nice", url).endswith(".pdf")
    assert document_path("nice", "https://www.nice.org.uk/guidance/ng28").endswith(".html")
    assert document_path("who", "https://www.who.int/", "pdf").startswith("who/who_document-")
    hostile = document_path("cdc", "https://www.cdc.gov/%2e%2e%2f..%2fmy%20guide%00.pdf")
    assert hostile.startswith("cdc/cdc_my_guide-") and hostile.endswith(".pdf")
    assert safe_path(tmp_path, hostile).parent == tmp_path / "cdc"
    assert sniff(b"%PDF-1.7\n") == "pdf" and sniff(b"\xef\xbb\xbf <!DOCTYPE html>") == "html"
    assert sniff(b"PK\x03\x04 docx") is None
