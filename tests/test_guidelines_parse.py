"""Guideline parsing: PDF text over the real fixture PDFs, hand-made bad PDFs and HTML, the
worker's timeout and crash handling, the source registry and the released JSONL schema."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pymupdf
import pytest

from corpus.guideline_sources import DEFAULT, GuidelineSource, SourceRegistry
from corpus.guidelines import ROW_KEYS, parse_guideline_file
from corpus.guidelines_jsonl import parse_released_file, to_released, write_released_jsonl
from corpus.html_text import decode_html, extract_html
from corpus.pdf_text import (
    CorruptPdf,
    EncryptedPdf,
    ImageOnlyPdf,
    PdfText,
    TooManyPages,
    extract_pdf,
)
from corpus.pdf_worker import FAULT_ENV, PdfWorker
from corpus.quarantine import Quarantined

PDFS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "guidelines" / "pdf"
CDC_OPIOIDS = PDFS / "cdc_mmwr_rr7103a1_opioids_for_pain_2022.pdf"
CDC_OUTPATIENT = PDFS / "cdc_infection_prevention_outpatient_settings_2016.pdf"
WHO_DRUG_INFO = PDFS / "who_drug_information_vol17_no4_2003.pdf"
WHO_IPC = PDFS / "who_ipc_core_components_guidelines_2016.pdf"
ROW_TYPES = {
    "doc_id": str,
    "source": str,
    "title": (str, type(None)),
    "url": (str, type(None)),
    "raw_text": str,
    "format": str,
    "n_pages": (int, type(None)),
    "license": str,
    "locator": str,
}
ACCENTED = (
    "La prévention des infections associées aux soins exige une hygiène des mains répétée "
    "à chaque contact avec un patient hospitalisé, même après le retrait des gants."
)


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def cdc_opioids() -> PdfText:
    return extract_pdf(CDC_OPIOIDS.read_bytes())


@pytest.fixture(scope="module")
def who_drug_info() -> PdfText:
    return extract_pdf(WHO_DRUG_INFO.read_bytes())


def text_pdf(path: Path, pages: int = 1, **save_options) -> Path:
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page()
        page.insert_text((72, 72), f"Page {i + 1}: hand hygiene before every patient contact.")
        page.insert_text((72, 100), "Clean hands save lives, and gloves do not replace them.")
    doc.save(path, **save_options)
    return path


# PDF text ---------------------------------------------------------------------------------


def test_cdc_running_headers_footers_and_page_numbers_are_gone(cdc_opioids: PdfText) -> None:
    text = flat(cdc_opioids.text)
    assert cdc_opioids.n_pages == 100
    assert "MMWR / November 4, 2022 / Vol. 71 / No. 3" not in text
    assert "US Department of Health and Human Services/Centers for Disease Control" not in text
    # The masthead line of every page, and page numbers left alone on a line.
    assert not re.search(r"^\d{1,3}$", cdc_opioids.text, re.MULTILINE)
    # The citation line that repeats at one height on two reference pages is kept.
    assert "JAMA 2011;305:1315–21. PMID:21467284 https://doi.org/10.1001/jama.2011.370" in text


def test_cdc_lines_and_hyphens(cdc_opioids: PdfText) -> None:
    text = cdc_opioids.text
    # A line break after "medical" inside a sentence.
    assert (
        "Pain is one of the most common reasons adults seek medical care in the United States (1)."
        in text
    )
    # Real hyphens at a line end stay: "long-|term", "evidence-|based".
    assert "The limited evidence of long-term effectiveness of opioids for chronic pain" in text
    assert "Clinicians should offer or arrange treatment with evidence-based medications" in text
    # A paragraph that goes on in the next column after a footnote in between.
    assert "approximately one in 14 adults experienced “high-impact” chronic pain" in text


def test_cdc_headings(cdc_opioids: PdfText) -> None:
    lines = cdc_opioids.text.splitlines()
    assert "# Introduction" in lines
    assert "# Clinical Practice Guideline Development Methods" in lines
    assert "## Background" in lines
    assert any(
        re.fullmatch(r"#{1,3} Determining Whether or Not to Initiate Opioids for Pain", ln)
        for ln in lines
    )
    assert (
        cdc_opioids.title
        == "CDC Clinical Practice Guideline for Prescribing Opioids for Pain — United States, 2022"
    )
    assert {h.level for h in cdc_opioids.headings} <= {1, 2, 3}


def test_who_two_columns_read_column_by_column(who_drug_info: PdfText) -> None:
    text = who_drug_info.text
    # Left column of page 6, printed beside the right column's lines.
    left = (
        "Maternal use of selective serotonin reuptake inhibitors (SSRIs) during or after pregnancy "
        "may result in adverse effects in newborn babies, due to a withdrawal effect following "
        "intra-uterine exposure, or a toxic effect from ingestion of an SSRI in breast-milk."
    )
    right = "One study found that 12 (22%) of 55 neonates exposed to maternal paroxetine"
    assert left in text
    assert right in text
    assert text.index(left) < text.index(right)
    # Words broken at a line end inside one column are joined.
    assert "and hence neonatal withdrawal may be more likely with paroxetine" in text
    assert "respiratory disorders (respiratory depression, apnoea, tachypnoea)" in text
    assert "In the same study, exposure to paroxetine through breastfeeding" in text
    # The running header of every page ("WHO Drug Information Vol 17, No. 4, 2003") is gone.
    assert "Vol 17, No. 4, 2003" not in text


def test_who_unruled_table_keeps_its_rows(who_drug_info: PdfText) -> None:
    assert "Agitation/Jitteriness | 15 | 4" in who_drug_info.text
    assert "Total reports | 26 | 13" in who_drug_info.text


def test_ruled_table_is_rendered_as_markdown_rows() -> None:
    text = extract_pdf(WHO_IPC.read_bytes()).text
    assert "| Core component | Recommendation or good practice statement | Key remarks |" in text
    assert "|---|---|---|---|" in text


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda p: p.write_bytes(CDC_OUTPATIENT.read_bytes()[:5000]), CorruptPdf),
        (lambda p: p.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 100), CorruptPdf),
        (
            lambda p: text_pdf(
                p, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u"
            ),
            EncryptedPdf,
        ),
        (lambda p: image_only_pdf(p), ImageOnlyPdf),
        (lambda p: text_pdf(p, pages=12), TooManyPages),
    ],
    ids=["truncated", "garbage", "encrypted", "image-only", "too-many-pages"],
)
def test_bad_pdfs_raise_typed_errors(tmp_path: Path, make, error) -> None:
    path = tmp_path / "bad.pdf"
    make(path)
    with pytest.raises(error):
        extract_pdf(path.read_bytes(), max_pages=10)


def image_only_pdf(path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pix.clear_with(180)
    page.insert_image(pymupdf.Rect(72, 72, 300, 300), pixmap=pix)
    doc.save(path)
    return path


def test_encrypted_pdf_with_empty_user_password_opens(tmp_path: Path) -> None:
    path = text_pdf(
        tmp_path / "owner_only.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o"
    )
    assert "hand hygiene before every patient contact" in extract_pdf(path.read_bytes()).text


# The ingest-facing parser and the worker --------------------------------------------------


def test_rows_have_the_documented_keys_and_types() -> None:
    rows = list(parse_guideline_file(str(CDC_OUTPATIENT), None, max_pages=100, timeout_s=120))
    assert len(rows) == 1
    row = rows[0]
    assert tuple(row) == ROW_KEYS
    for key, types in ROW_TYPES.items():
        assert isinstance(row[key], types), key
    assert row["source"] == "cdc"  # from the file-name prefix
    assert re.fullmatch(r"guidelines:cdc:[0-9a-f]{16}", row["doc_id"])
    assert (row["format"], row["n_pages"], row["locator"]) == ("pdf", 44, "pages=1-44")
    assert row["license"] == "public-domain"
    assert "Guide to Infection Prevention" in row["title"]


def test_bad_files_are_quarantined_by_the_parser(tmp_path: Path) -> None:
    encrypted = text_pdf(
        tmp_path / "who_locked.pdf",
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        owner_pw="o",
        user_pw="u",
    )
    long_pdf = text_pdf(tmp_path / "cdc_long.pdf", pages=12)
    image = image_only_pdf(tmp_path / "scan.pdf")
    (tmp_path / "truncated.pdf").write_bytes(WHO_DRUG_INFO.read_bytes()[:4000])
    (tmp_path / "notes.txt").write_text("plain text, neither PDF nor HTML")
    expected = {
        encrypted: "EncryptedPdf",
        long_pdf: "TooManyPages",
        image: "ImageOnlyPdf",
        tmp_path / "truncated.pdf": "CorruptPdf",
        tmp_path / "notes.txt": "UnsupportedFormat",
        tmp_path / "missing.pdf": "UnreadableInput",
    }
    for path, error_class in expected.items():
        (item,) = parse_guideline_file(str(path), None, max_pages=10, timeout_s=60)
        assert isinstance(item, Quarantined), path
        assert item.error_class == error_class, (path, item)


def test_worker_timeout_and_crash_are_quarantined(monkeypatch: pytest.MonkeyPatch) -> None:
    args = (str(WHO_DRUG_INFO), 500)
    with PdfWorker() as worker:
        # A real document past a tiny limit: the worker is killed mid-extraction.
        timed_out = worker.run((str(CDC_OPIOIDS), 500), timeout_s=0.05)
        assert isinstance(timed_out, Quarantined) and timed_out.error_class == "Timeout"
        # A hang and a segmentation fault inside the worker (the test hook stands in for
        # MuPDF's C code): this process goes on, and the next document gets a new worker.
        for fault, error_class in (
            ("hang", "Timeout"),
            ("crash", "WorkerCrashed"),
            ("exit", "WorkerCrashed"),
        ):
            monkeypatch.setenv(FAULT_ENV, fault)
            worker.close()
            failed = worker.run(args, timeout_s=1.0)
            assert isinstance(failed, Quarantined) and failed.error_class == error_class, failed
            monkeypatch.delenv(FAULT_ENV)
            assert isinstance(worker.run(args, timeout_s=120), PdfText)
    # The signal that killed the worker is named.
    with PdfWorker() as worker:
        monkeypatch.setenv(FAULT_ENV, "crash")
        crashed = worker.run(args, timeout_s=60)
    assert isinstance(crashed, Quarantined) and "SIGSEGV" in crashed.error_message


# HTML -------------------------------------------------------------------------------------


def html_page(body: str, charset: str) -> str:
    return (
        f'<html><head><meta charset="{charset}"><title>Hygiène des mains</title></head>'
        f"<body><article><h1>Prévention des infections</h1><p>{body}</p>"
        "<ul><li>Avant le contact avec le patient</li><li>Après le retrait des gants</li></ul>"
        "</article></body></html>"
    )


@pytest.mark.parametrize(
    "declared, actual",
    [
        ("iso-8859-1", "utf-8"),
        ("utf-8", "cp1252"),
        ("windows-1252", "utf-8"),
        ("iso-8859-1", "iso-8859-1"),
    ],
)
def test_html_with_wrong_charset_gives_readable_text(declared: str, actual: str) -> None:
    data = html_page(ACCENTED, declared).encode(actual)
    text, _ = decode_html(data)
    assert ACCENTED in text
    page = extract_html(data, "https://www.who.int/fr/x")
    assert not isinstance(page, Quarantined)
    assert ACCENTED in page.text
    assert "# Prévention des infections" in page.text
    assert "- Après le retrait des gants" in page.text
    assert "Ã" not in page.text and "\ufffd" not in page.text


def test_html_rows_and_empty_pages(tmp_path: Path) -> None:
    good = tmp_path / "page.html"
    good.write_bytes(
        html_page(ACCENTED, "iso-8859-1")
        .replace("<title>", '<link rel="canonical" href="https://www.cdc.gov/hai/x.html"><title>')
        .encode("utf-8")
    )
    empty = tmp_path / "nav.html"
    empty.write_bytes(
        b"<!DOCTYPE html><html><head><title>Menu</title></head>"
        b"<body><script>x()</script></body></html>"
    )
    (row,) = parse_guideline_file(str(good), None, timeout_s=60)
    assert tuple(row) == ROW_KEYS
    assert (row["source"], row["url"], row["format"], row["locator"]) == (
        "cdc",
        "https://www.cdc.gov/hai/x.html",
        "html",
        "document",
    )
    assert row["n_pages"] is None and ACCENTED in row["raw_text"]
    (item,) = parse_guideline_file(str(empty), "who", timeout_s=60)
    assert isinstance(item, Quarantined) and item.error_class == "EmptyExtraction"


# Sources and the released schema ----------------------------------------------------------


def test_registry_has_meditrons_sixteen_sources() -> None:
    keys = {s.key for s in DEFAULT}
    assert keys == {
        "who", "cdc", "nice", "cma", "cco", "icrc", "spor", "wikidoc",
        "aafp", "cps", "drugs", "gc", "idsa", "magic", "mayo", "rch",
    }  # fmt: skip
    assert {s.key for s in DEFAULT if s.open} == {
        "cco",
        "cdc",
        "cma",
        "icrc",
        "nice",
        "spor",
        "who",
        "wikidoc",
    }
    assert sum(s.n_articles or 0 for s in DEFAULT) == 45_606
    assert DEFAULT.source_for_url("https://apps.who.int/iris/handle/10665/251730") == "who"
    assert DEFAULT.source_for_url("https://www.cdc.gov/mmwr/volumes/71/rr/rr7103a1.htm") == "cdc"
    assert DEFAULT.source_for_url("https://notcdc.gov/x") is None
    assert DEFAULT.source_for_path(str(CDC_OPIOIDS), {}) == "cdc"
    assert DEFAULT.source_for_path("/data/x/who-guide.pdf") == "who"
    assert DEFAULT.source_for_path("/data/x/guide.pdf") is None
    assert DEFAULT.source_for_path("/data/nice/ng12.pdf", {"/data/nice/": "nice"}) == "nice"
    assert DEFAULT.source_for_path("/data/x/NG12.pdf", {"NG*.pdf": "nice"}) == "nice"


def test_user_sources(tmp_path: Path) -> None:
    registry = SourceRegistry.from_config(
        [
            {
                "key": "ahrq",
                "publisher": "AHRQ",
                "hosts": ["www.ahrq.gov"],
                "license": "public domain",
            }
        ]
    )
    assert len(registry) == 17
    assert registry.source_for_url("https://effectivehealthcare.ahrq.gov/products") == "ahrq"
    assert registry.license_for("ahrq") == "public-domain"
    registry.register(GuidelineSource("sign", "SIGN", False, "unknown", ("sign.ac.uk",)))
    assert registry.source_for_path("/in/sign_158.pdf") == "sign"
    with pytest.raises(ValueError):
        SourceRegistry.from_config([{"key": "x", "publisher": "X", "hots": []}])


def test_released_jsonl_in_and_out(tmp_path: Path) -> None:
    wikidoc_url = "https://www.wikidoc.org/index.php/Asthma"
    records = [
        dict(
            id="a1",
            source="wikidoc",
            title="Asthma",
            clean_text="# Asthma\n\nClean.",
            raw_text="Asthma raw",
            url=wikidoc_url,
            overview=None,
        ),
        dict(
            id="b2",
            source="nice",
            title=None,
            clean_text="Only cleaned text.",
            raw_text="",
            url=None,
            overview="Summary",
        ),
    ]
    lines = [json.dumps(r) for r in records] + [
        "{not json",
        "[1, 2]",
        json.dumps({"source": "who", "raw_text": "x"}),
    ]
    path = tmp_path / "open_guidelines.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items = list(parse_guideline_file(str(path), None))
    rows = [i for i in items if isinstance(i, dict)]
    assert [tuple(r) for r in rows] == [ROW_KEYS, ROW_KEYS]
    assert rows[0] == dict(
        doc_id="a1",
        source="wikidoc",
        title="Asthma",
        url=wikidoc_url,
        raw_text="Asthma raw",
        format="jsonl",
        n_pages=None,
        license="cc-by-sa",
        locator="line=1",
    )
    assert rows[1]["raw_text"] == "Only cleaned text." and rows[1]["license"] == "unknown"
    assert [(q.locator, q.error_class) for q in items if isinstance(q, Quarantined)] == [
        ("line=3", "InvalidJson"),
        ("line=4", "NotAnObject"),
        ("line=5", "MissingField"),
    ]
    # Round trip with the released fields kept, and export of new rows with cleaned text.
    kept = [r for r in parse_released_file(str(path), keep_released=True) if isinstance(r, dict)]
    assert to_released(kept[0]) == records[0]
    out = io.StringIO()
    assert write_released_jsonl(rows, out, clean_texts={"a1": "cleaned"}) == 2
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    assert list(exported[0]) == [
        "id",
        "source",
        "title",
        "clean_text",
        "raw_text",
        "url",
        "overview",
    ]
    assert exported[0]["clean_text"] == "cleaned" and exported[1]["clean_text"] is None
