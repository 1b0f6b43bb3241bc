"""Clinical practice guidelines, one file at a time, into bronze rows.

The format is read from the content: PDF (the `%PDF-` signature in the first kilobyte), HTML
(markup in the first bytes), and MediTron's released JSONL by its extension (.jsonl or
.jsonl.gz; see corpus.guidelines_jsonl). PDF and HTML are extracted in a worker process under
a page limit and a wall-time limit (corpus.pdf_worker); a file that cannot give text is
yielded as Quarantined, never raised.

Every row has exactly these keys:

    doc_id:   str         "guidelines:<source>:<first 16 hex digits of the SHA-256 of the file>";
                          for JSONL, the released `id` as it is
    source:   str         a source key (corpus.guideline_sources): the caller's hint, else the
                          configured path map or file-name prefix, else the host of the page's
                          URL; "unknown" when nothing names it
    title:    str | None  the PDF's metadata title or first heading; the page title (HTML)
    url:      str | None  the page's canonical URL (HTML) or the released url (JSONL); None
                          for a PDF
    raw_text: str         the extracted text: `#` headings, paragraphs separated by blank
                          lines, tables as markdown rows; not cleaned yet
    format:   str         "pdf" | "html" | "jsonl"
    n_pages:  int | None  the PDF's page count; None for HTML and JSONL
    license:  str         a corpus.licenses code: for PDF and HTML, the document's own
                          licence statement when its first or last few thousand characters
                          (or an HTML page's licence metadata) name one; else, and always for
                          JSONL, the source's default
    locator:  str         "pages=1-<n_pages>" (PDF), "line=<n>" (JSONL, 1-based), "document"
                          (HTML)
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from corpus.guideline_sources import DEFAULT, SourceRegistry
from corpus.guidelines_jsonl import parse_released_file
from corpus.html_text import HtmlText, extract_html
from corpus.licenses import UNKNOWN, normalize_license
from corpus.pdf_worker import LOCATOR, extract_pdf_isolated
from corpus.quarantine import Quarantined

ROW_KEYS = (
    "doc_id",
    "source",
    "title",
    "url",
    "raw_text",
    "format",
    "n_pages",
    "license",
    "locator",
)
UNKNOWN_SOURCE = "unknown"
# A licence statement sits in the front matter (WHO) or on the last page (MMWR).
_LICENSE_HEAD = 6000
_LICENSE_TAIL = 4000
_HTML_MARKS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<div", b"<p")


def parse_guideline_file(
    path: str,
    source_hint: str | None,
    max_pages: int = 500,
    timeout_s: float = 120.0,
    registry: SourceRegistry | None = None,
    path_overrides: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Any] | Quarantined]:
    """The rows of one guideline file (one for a PDF or an HTML page, one a line for JSONL)."""
    registry = registry or DEFAULT
    if path.lower().endswith((".jsonl", ".jsonl.gz")):
        yield from parse_released_file(path, registry, source_hint)
        return
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        yield Quarantined(LOCATOR, "UnreadableInput", f"{type(exc).__name__}: {exc}")
        return
    source = source_hint or registry.source_for_path(path, path_overrides)
    if b"%PDF-" in data[:1024]:
        pdf = extract_pdf_isolated(path, max_pages, timeout_s)
        if isinstance(pdf, Quarantined):
            yield pdf
            return
        source = source or UNKNOWN_SOURCE
        text, title, url, n_pages = pdf.text, pdf.title, None, pdf.n_pages
        kind, locator, stated = "pdf", f"pages=1-{pdf.n_pages}", None
    elif _looks_like_html(data):
        page = extract_html(data, None, timeout_s)
        if isinstance(page, Quarantined):
            yield page
            return
        source = source or (page.url and registry.source_for_url(page.url)) or UNKNOWN_SOURCE
        text, title, url, n_pages = page.text, page.title, page.url, None
        kind, locator, stated = "html", LOCATOR, _html_license(page)
    else:
        yield Quarantined(LOCATOR, "UnsupportedFormat", f"neither PDF nor HTML: {data[:16]!r}")
        return
    yield {
        "doc_id": f"guidelines:{source}:{hashlib.sha256(data).hexdigest()[:16]}",
        "source": source,
        "title": title,
        "url": url,
        "raw_text": text,
        "format": kind,
        "n_pages": n_pages,
        "license": _document_license(text, stated) or registry.license_for(source),
        "locator": locator,
    }


def _looks_like_html(data: bytes) -> bool:
    head = data[:2048]
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            head = head[2:].decode(codec, errors="ignore").encode("utf-8")
    head = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    return head.startswith(b"<") and any(mark in head for mark in _HTML_MARKS)


def _html_license(page: HtmlText) -> str | None:
    if not page.license:
        return None
    code = normalize_license(page.license, page.license)
    return code if code != UNKNOWN else None


def _document_license(text: str, stated: str | None) -> str | None:
    """The licence a document states about itself, or None."""
    if stated:
        return stated
    for part in (text[:_LICENSE_HEAD], text[-_LICENSE_TAIL:]):
        code = normalize_license(part)
        if code != UNKNOWN:
            return code
    return None
