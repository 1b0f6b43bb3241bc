"""PubMed / MEDLINE citation XML: baseline and update files (PubmedArticleSet) and the
legacy MedlineCitationSet format, parsed record by record into bronze rows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from lxml import etree

from corpus.inputs import open_stream
from corpus.quarantine import Quarantined
from corpus.safe_xml import element_text, safe_parser
from corpus.xml_records import FILE_LOCATOR, RawRecord, parse_batches, split_records

RECORD_TAGS = {
    "PubmedArticleSet": ("PubmedArticle", "PubmedBookArticle", "DeleteCitation"),
    "MedlineCitationSet": ("MedlineCitation", "DeleteCitation"),
}
RETRACTED_TYPE = "Retracted Publication"
RETRACTION_NOTICE_TYPE = "Retraction of Publication"
# MEDLINE abstracts stay their publishers' copyright; NLM grants no open licence for them.
PUBMED_LICENSE = "unknown"
_YEAR = re.compile(r"\b(1[5-9]\d\d|2\d\d\d)\b")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


class RecordError(ValueError):
    """A record that is well-formed XML but unusable (no PMID, no Article)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True)
class Deletion:
    """A PMID withdrawn by a DeleteCitation element of an update file."""

    pmid: int
    version: int
    locator: str


PubmedItem = dict[str, Any] | Deletion | Quarantined


def parse_pubmed_file(path: str) -> Iterator[PubmedItem]:
    """All records of one .xml or .xml.gz file; never raises for bad content."""
    try:
        with open_stream(path) as stream:
            yield from parse_pubmed_stream(stream)
    except OSError as exc:
        yield Quarantined(FILE_LOCATOR, "UnreadableInput", f"{type(exc).__name__}: {exc}")


def parse_pubmed_stream(stream: BinaryIO) -> Iterator[PubmedItem]:
    """Records (dicts of bronze columns), deletions and quarantined pieces, in file order."""
    parser = safe_parser()
    for item in parse_batches(split_records(stream, RECORD_TAGS), parser):
        if isinstance(item, Quarantined):
            yield item
            continue
        raw, element = item
        try:
            if raw.tag == "DeleteCitation":
                yield from _deletions(element, raw)
            else:
                yield parse_record(element, raw)
        except RecordError as exc:
            yield Quarantined(raw.locator, exc.error_class, str(exc))
        except (ValueError, TypeError, AttributeError) as exc:
            yield Quarantined(raw.locator, type(exc).__name__, str(exc))


def _deletions(element: etree._Element, raw: RawRecord) -> Iterator[Deletion]:
    for pmid in element.iterfind("PMID"):
        yield Deletion(_pmid(pmid), int(pmid.get("Version", "1")), raw.locator)


def parse_record(element: etree._Element, raw: RawRecord) -> dict[str, Any]:
    """The bronze columns of one PubmedArticle, PubmedBookArticle or legacy MedlineCitation."""
    if raw.tag == "PubmedBookArticle":
        row = _book_fields(element)
    else:
        citation = element if raw.tag == "MedlineCitation" else element.find("MedlineCitation")
        if citation is None:
            raise RecordError("MissingElement", "PubmedArticle has no MedlineCitation")
        row = _citation_fields(citation, element.find("PubmedData"))
    row["doc_id"] = f"pubmed:{row['pmid']}"
    row["license"] = PUBMED_LICENSE
    row["locator"] = raw.locator
    return row


def _pmid(el: etree._Element | None) -> int:
    text = (el.text or "").strip() if el is not None else ""
    if not text:
        raise RecordError("MissingPMID", "the record has no PMID")
    if not text.isdigit() or int(text) <= 0:
        raise RecordError("InvalidPMID", f"PMID {text!r} is not a positive integer")
    return int(text)


def _citation_fields(m: etree._Element, pubmed_data: etree._Element | None) -> dict[str, Any]:
    # One pass over the children with a tag switch: several times faster than a `find`
    # per field, and this function is the parser's hot path.
    pmid_el = article = completed = revised = None
    mesh: list[str] = []
    keywords: list[str] = []
    ref_types: set[str | None] = set()
    medline_ta = other_pmcid = None
    for child in m:
        tag = child.tag
        if tag == "PMID":
            pmid_el = child
        elif tag == "Article":
            article = child
        elif tag == "MeshHeadingList":
            # Descriptor names carry no inline markup: .text is exact and much cheaper.
            mesh = [
                d.text.strip() for h in child for d in h if d.tag == "DescriptorName" and d.text
            ]
        elif tag == "KeywordList":
            keywords.extend(t for k in child if (t := element_text(k)))
        elif tag == "DateCompleted":
            completed = child
        elif tag == "DateRevised":
            revised = child
        elif tag == "MedlineJournalInfo":
            medline_ta = element_text(child.find("MedlineTA"))
        elif tag == "CommentsCorrectionsList":
            ref_types = {c.get("RefType") for c in child}
        elif tag == "OtherID" and other_pmcid is None:
            other_pmcid = _other_pmcid(child)
    pmid = _pmid(pmid_el)
    if article is None:
        raise RecordError("MissingElement", f"PMID {pmid} has no Article element")
    row = _article_fields(article)
    ids = _article_ids(pubmed_data)
    pub_types = row["pub_types"]
    row.update(
        pmid=pmid,
        version=int(pmid_el.get("Version", "1")),  # type: ignore[union-attr]
        record_type="article",
        journal_abbrev=row["journal_abbrev"] or medline_ta,
        mesh_terms=mesh,
        keywords=keywords,
        doi=ids.get("doi") or row["doi"],
        pmcid=ids.get("pmc") or other_pmcid,
        is_retracted=RETRACTED_TYPE in pub_types or "RetractionIn" in ref_types,
        is_retraction_notice=RETRACTION_NOTICE_TYPE in pub_types or "RetractionOf" in ref_types,
        record_status=m.get("Status"),
        publication_status=(
            element_text(pubmed_data.find("PublicationStatus")) if pubmed_data is not None else None
        ),
        date_completed=_date(completed),
        date_revised=_date(revised),
    )
    return row


def _article_fields(article: etree._Element) -> dict[str, Any]:
    """Fields under MedlineCitation/Article; `doi` here is the ELocationID fallback."""
    title = vernacular = abstract = copyright_ = journal = abbrev = issn = None
    pub_year = doi = None
    languages: list[str] = []
    pub_types: list[str] = []
    for child in article:
        tag = child.tag
        if tag == "ArticleTitle":
            title = element_text(child)
        elif tag == "Journal":
            for j in child:
                if j.tag == "Title":
                    journal = element_text(j)
                elif j.tag == "ISOAbbreviation":
                    abbrev = element_text(j)
                elif j.tag == "ISSN":
                    issn = element_text(j)
                elif j.tag == "JournalIssue":
                    pub_year = _pub_year(j.find("PubDate"))
        elif tag == "Abstract":
            abstract = _abstract(child)
            copyright_ = element_text(child.find("CopyrightInformation"))
        elif tag == "Language":
            if text := element_text(child):
                languages.append(text)
        elif tag == "PublicationTypeList":
            pub_types = [t for p in child if (t := element_text(p))]
        elif tag == "VernacularTitle":
            vernacular = element_text(child)
        elif tag == "ELocationID" and doi is None and child.get("EIdType") == "doi":
            doi = element_text(child)
    return {
        "title": title,
        "vernacular_title": vernacular,
        "abstract": abstract,
        "abstract_copyright": copyright_,
        "language": languages[0] if languages else None,
        "languages": languages,
        "journal": journal,
        "journal_abbrev": abbrev,
        "issn": issn,
        "pub_year": pub_year,
        "pub_types": pub_types,
        "doi": doi,
    }


def _book_fields(element: etree._Element) -> dict[str, Any]:
    doc = element.find("BookDocument")
    if doc is None:
        raise RecordError("MissingElement", "PubmedBookArticle has no BookDocument")
    pmid_el = doc.find("PMID")
    pmid = _pmid(pmid_el)
    pub_types = _texts(doc.iterfind("PublicationType"))
    languages = _texts(doc.iterfind("Language"))
    ids = _article_ids(element.find("PubmedBookData"))
    return {
        "pmid": pmid,
        "version": int(pmid_el.get("Version", "1")),  # type: ignore[union-attr]
        "record_type": "book",
        "title": element_text(doc.find("ArticleTitle")) or element_text(doc.find("Book/BookTitle")),
        "vernacular_title": element_text(doc.find("VernacularTitle")),
        "abstract": _abstract(doc.find("Abstract")),
        "abstract_copyright": element_text(doc.find("Abstract/CopyrightInformation")),
        "language": languages[0] if languages else None,
        "languages": languages,
        "journal": None,
        "journal_abbrev": None,
        "issn": None,
        "pub_year": _pub_year(doc.find("Book/PubDate")),
        "pub_types": pub_types,
        "mesh_terms": [],
        "keywords": _texts(doc.iterfind("KeywordList/Keyword")),
        "doi": ids.get("doi"),
        "pmcid": ids.get("pmc"),
        "is_retracted": RETRACTED_TYPE in pub_types,
        "is_retraction_notice": RETRACTION_NOTICE_TYPE in pub_types,
        "record_status": None,
        "publication_status": element_text(element.find("PubmedBookData/PublicationStatus")),
        "date_completed": None,
        "date_revised": _date(doc.find("DateRevised")),
    }


def _texts(elements: Any) -> list[str]:
    return [t for e in elements if (t := element_text(e))]


def _abstract(abstract: etree._Element | None) -> str | None:
    """Paragraphs of the abstract, structured sections prefixed by their label."""
    if abstract is None:
        return None
    parts = []
    for section in abstract.iterfind("AbstractText"):
        text = element_text(section)
        if not text:
            continue
        label = (section.get("Label") or "").strip()
        parts.append(f"{label}: {text}" if label and label.upper() != "UNASSIGNED" else text)
    return "\n".join(parts) or None


def _pub_year(pub_date: etree._Element | None) -> int | None:
    """PubDate/Year, else the first year in PubDate/MedlineDate ("1998 Dec-1999 Jan")."""
    if pub_date is None:
        return None
    medline_date = None
    for part in pub_date:
        if part.tag == "Year" and part.text and part.text.strip().isdigit():
            return int(part.text)
        if part.tag == "MedlineDate":
            medline_date = part.text
    found = _YEAR.search(medline_date or "")
    return int(found.group(1)) if found else None


def _date(el: etree._Element | None) -> dt.date | None:
    if el is None:
        return None
    parts = {c.tag: (c.text or "").strip() for c in el}
    try:
        month = parts.get("Month", "1")
        month_no = int(month) if month.isdigit() else _MONTHS[month[:3].lower()]
        return dt.date(int(parts["Year"]), month_no, int(parts.get("Day", "1")))
    except (ValueError, KeyError):
        return None


def _article_ids(pubmed_data: etree._Element | None) -> dict[str, str]:
    ids: dict[str, str] = {}
    if pubmed_data is None:
        return ids
    for aid in pubmed_data.iterfind("ArticleIdList/ArticleId"):
        kind, value = aid.get("IdType"), element_text(aid)
        if kind and value and kind not in ids:
            ids[kind] = value
    return ids


def _other_pmcid(other: etree._Element) -> str | None:
    value = element_text(other) or ""
    if other.get("Source") == "NLM" and value.startswith("PMC"):
        return value.split()[0]
    return None
