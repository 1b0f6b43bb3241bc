"""The main text of one HTML guideline page, as markdown, through trafilatura.

Bytes in: the encoding is decided here, not by trafilatura. A byte-order mark wins; then bytes
that are valid UTF-8 are read as UTF-8 whatever the page declares (a page labelled
ISO-8859-1 that is really UTF-8 is a common server mistake, and non-ASCII UTF-8 is almost
never valid by chance); then the charset the page declares (<meta charset>, http-equiv or an
XML declaration; ISO-8859-1 and ASCII read as windows-1252, as browsers do) when it decodes
without error; then charset detection (charset_normalizer); windows-1252 with replacement
characters as the last resort.

trafilatura keeps headings (`#`), lists, tables and emphasis, drops navigation, comments and
links. Extraction runs in a worker process (corpus.pdf_worker) under a wall-time limit, since
lxml and trafilatura's fallbacks can take very long on pathological pages.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from corpus.pdf_worker import LOCATOR, default_worker
from corpus.quarantine import Quarantined

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-z0-9_.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([a-z0-9_.:-]+)""",
    re.IGNORECASE,
)
# WHATWG: these labels mean windows-1252 on the web.
_AS_CP1252 = {"iso8859-1", "ascii", "cp1252"}
# C1 controls are printable in no web page: their presence means a wrong single-byte codec.
_C1 = re.compile("[\x80-\x9f]")


@dataclass(frozen=True)
class HtmlText:
    """`url` is the page's canonical URL when it names one, else the URL given; `license` is
    the licence statement or link the page's metadata carries, unnormalised."""

    text: str
    title: str | None
    url: str | None
    encoding: str
    license: str | None


def extract_html(data: bytes, url: str | None, timeout_s: float = 30.0) -> HtmlText | Quarantined:
    """The main text of an HTML page, extracted in the shared worker process; Quarantined
    "EmptyExtraction" when trafilatura finds no main text, "Timeout" past `timeout_s`."""
    return default_worker("html").run((data, url), timeout_s)


def extract_html_in_process(data: bytes, url: str | None) -> HtmlText | Quarantined:
    """`extract_html` in the calling process, with no time limit (the worker runs this)."""
    import trafilatura

    html, encoding = decode_html(data)
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        output_format="python",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        include_links=False,
        with_metadata=True,
    )
    text = (doc.text or "").strip() if doc is not None else ""
    if not text:
        return Quarantined(LOCATOR, "EmptyExtraction", "trafilatura found no main text")
    return HtmlText(
        text=unicodedata.normalize("NFC", text) + "\n",
        title=doc.title or None,
        url=doc.url or url,
        encoding=encoding,
        license=doc.license or None,
    )


def decode_html(data: bytes) -> tuple[str, str]:
    """The text of an HTML page given as bytes, and the codec that gave it."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace"), codec
    declared = _declared_codec(data[:4096])
    if declared is None or not declared.startswith("utf-16"):
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    if declared is not None and declared != "utf-8":
        try:
            text = data.decode(declared)
        except UnicodeDecodeError:
            pass
        else:
            if not _C1.search(text):
                return text, declared
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding:
        return str(best), codecs.lookup(best.encoding).name
    return data.decode("cp1252", errors="replace"), "cp1252"


def _declared_codec(head: bytes) -> str | None:
    m = _DECLARED.search(head)
    if m is None:
        return None
    label = (m.group(1) or m.group(2)).decode("ascii").lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return "cp1252" if name in _AS_CP1252 else name
