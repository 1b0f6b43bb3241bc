"""PubMed Central open-access full text (JATS 1.x, NLM archiving DTD 2.3) into bronze rows.

Inputs: one article (.nxml / .xml, gzipped or not), PMC's <pmc-articleset> holding several
<article>s, or a .tar.gz bulk package read member by member without touching the disk.
A parser yields rows or Quarantined items and never raises for bad content.

Row columns (dict keys and their Python types):

    doc_id: str               "pmc:PMC123"
    pmcid: str                "PMC123"
    pmid: int | None
    doi: str | None
    title: str | None
    abstract: str | None      paragraphs joined by "\\n"; a structured section as "Title: text"
    body: str | None          the text below; None when the article has no body text
    license: str              a code of corpus.licenses.LICENSES
    license_text: str | None  the raw licence statements (or the copyright line without one)
    journal: str | None       journal-title
    pub_year: int | None      ppub year, else epub, else any publication date
    article_type: str | None  the article-type attribute
    language: str | None      xml:lang, lower-cased
    has_body: bool            whether the article has body text
    n_figures: int            <fig> elements in the article
    n_tables: int             <table-wrap> elements
    n_formulas: int           <disp-formula> and <inline-formula> elements (an image-only
                              formula is counted but has no text to write)
    n_citations: int          <ref> entries of the reference list
    locator: str              "article=0", "article=2" in an articleset, "member=NAME article=0"

Body text, in MediTron's markup: top-level sections as "# Title", nested ones as "## Title",
paragraphs separated by blank lines; authors, affiliations, acknowledgements, funding,
conflict-of-interest and contribution statements, supplementary-file lists and the
reference list are left out. Citations become "[bib_ref] <cited title, <= 12 words>,
<first author surname> [/bib_ref]", figure and table mentions "[fig_ref] Figure N: <caption
start, <= 12 words> [/fig_ref]", captions "[fig] Figure N: caption [/fig]" and
"[table] Table N: caption [/table]" (cells dropped), formulas "[formula] ... [/formula]"
(TeX when given, else MathML written as linear text). With markers=False the same text has
no markers: citations removed, mentions kept as written, captions and formulas as plain text.

Licence: from <permissions> (licence URL, text, then license-type); a back-matter note titled
"Open Access" (Springer's Open Choice puts its licence there) is read too, and when both name
a licence the stricter one is kept. Without either the code is "unknown".
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from lxml import etree

from corpus.inputs import open_stream
from corpus.licenses import UNKNOWN, more_restrictive, normalize_license
from corpus.quarantine import Quarantined
from corpus.safe_xml import element_text, safe_parser
from corpus.xml_records import EOF_LOCATOR, FILE_LOCATOR

DEFAULT_MAX_MEMBER_BYTES = 64 << 20
XML_SUFFIXES = (".xml", ".nxml")
TAR_SUFFIXES = (".tar", ".tgz")
TITLE_WORDS = 12
MAX_RANGE = 50

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"
_MATHML = "{http://www.w3.org/1998/Math/MathML}math"
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)

_FLOAT_TAGS = frozenset({"fig", "fig-group", "table-wrap", "table-wrap-group"})
# Containers whose children are blocks (paragraphs, lists, floats) of the surrounding text.
_BLOCK_CONTAINERS = frozenset({"boxed-text", "disp-quote", "statement", "verse-group", "caption"})
_BLOCK_IN_P = frozenset({"list", "def-list", "boxed-text", "disp-quote", "statement"})
# fmt: off
_SKIPPED = frozenset({
    "ack", "fn-group", "fn", "ref-list", "sig-block", "notes", "supplementary-material",
    "media", "graphic", "inline-graphic", "alt-text", "long-desc", "object-id",
    "table-wrap-foot", "attrib", "permissions", "table", "array", "glossary",
})
_DROPPED_XREFS = frozenset({"fn", "table-fn", "aff", "corresp", "author-notes", "contrib"})
_DROPPED_SEC_TYPES = frozenset({
    "supplementary-material", "coi-statement", "conflict", "funding", "ack",
    "acknowledgment", "acknowledgments", "acknowledgement", "acknowledgements",
    "author-contributions", "contributions", "data-availability", "abbreviations",
})
# fmt: on
_DROPPED_TITLE = re.compile(
    r"(?:[\divx]+(?:\.[\divx]+)*\.?\s+)?(?:"
    r"acknowledg|funding|sources? of (?:funding|support)|financial (?:support|disclosure)"
    r"|competing interest|conflicts? of interest|declaration of (?:competing )?interest"
    r"|disclosures?$|authors?['’]?s?['’]? contribution|contributors?$"
    r"|(?:electronic )?supplementary (?:material|information|data)|additional files?$"
    r"|abbreviations$|availability of data|data (?:availability|accessibility)"
    r"|consent for publication|ethics approval and consent"
    r")"
)
_SKIPPED_ABSTRACT_TYPES = frozenset({"graphical", "teaser", "toc", "precis", "web-summary"})
_OPEN_ACCESS_NOTE = re.compile(r"open access\W*$", re.I)
_YEAR = re.compile(r"\b(1[5-9]\d\d|2\d\d\d)\b")
_PMCID = re.compile(r"(?:PMC)?(\d+)", re.I)
_SENTENCE_END = re.compile(r"[\w)\]]{2}\.\s+[A-Z(]")
_EXPONENT = re.compile(r"[−-]?\d+(?:\.\d+)?")
_EXPONENT_BASE = re.compile(r"(?:\d|\b[^\W\d_]{1,3})$")
_CITATION_TAGS = frozenset({"element-citation", "mixed-citation", "citation", "nlm-citation"})
_BOOKISH = frozenset({"book", "report", "thesis", "confproc", "web", "webpage", "other"})

# Citations and float mentions are written into a paragraph as placeholders (control
# characters cannot occur in XML text) so that the brackets and author names around them
# can be rewritten with regular expressions once the paragraph is complete.
_CITE = r"\x02\d+\x03"
_FREF = r"\x04\d+\x05"
_ANY_REF = rf"(?:{_CITE}|{_FREF})"
_PLACEHOLDER = re.compile(r"\x02(\d+)\x03|\x04(\d+)\x05")
_SEP = r"(?:\s*[,;–—-])?\s*(?:(?:and|&)\s*)?"  # "1, 2", "1–3", "5, 6, and 7"
_GROUP = re.compile(rf"[(\[]\s*({_ANY_REF}(?:{_SEP}{_ANY_REF})*)\s*[)\]]")
_RUN = re.compile(rf"{_ANY_REF}(?:\s*[,;]\s*{_ANY_REF})+")
_RANGE = re.compile(r"\x02(\d+)\x03\s*[–—-]\s*\x02(\d+)\x03")
_CITE_AT = re.compile(r"\x02(\d+)\x03")
_FREF_AT = re.compile(r"\x04\d+\x05")
_AUTHOR_TAIL = re.compile(r"(?:\s+et\s+al\.?|\s+(?:and|&)\s+\S+)?,?\s*", re.I)
_FIG_WORD = re.compile(r"\b(?:figures?|figs?\.?|tables?|tabs?\.?)\s*$", re.I)
_PANEL = re.compile(
    r"(\x05)(?:[a-zA-Z](?:(?:\s*,\s*|\s*[–-]\s*|\s+and\s+)[a-zA-Z](?![a-zA-Z]))*(?![a-zA-Z])"
    r"|\s*\([a-zA-Z](?:\s*[,–-]\s*[a-zA-Z])*\))"
)
_CITE_AND_SPACE = re.compile(rf"\s*{_CITE}")
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;]?\s*\)|\[\s*[,;]?\s*\]")
_LEADING_SEP = re.compile(r"([(\[])\s*[,;]\s*")
_TRAILING_SEP = re.compile(r"\s*[,;]\s*([)\]])")


class ArticleError(ValueError):
    """An article that is well-formed XML but unusable (no PMCID, no article-meta)."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class


@dataclass
class PmcStats:
    """Archive members seen while parsing, for the job's report."""

    xml_members: int = 0
    skipped_members: int = 0  # images, PDFs, media and directories: not articles


def parse_pmc_file(
    path: str,
    markers: bool = True,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    stats: PmcStats | None = None,
) -> Iterator[dict[str, Any] | Quarantined]:
    """Rows and Quarantined items for one article file, articleset or tar package; `stats`,
    when given, counts the archive members read and skipped."""
    stats = stats if stats is not None else PmcStats()
    try:
        if _is_tar(path):
            yield from _parse_tar(path, markers, max_member_bytes, stats)
            return
        with open_stream(path) as stream:
            data = stream.read(max_member_bytes + 1)
    except EOFError as exc:
        yield Quarantined(FILE_LOCATOR, "TruncatedInput", f"{type(exc).__name__}: {exc}")
        return
    except (OSError, zlib.error) as exc:
        yield Quarantined(FILE_LOCATOR, "UnreadableInput", f"{type(exc).__name__}: {exc}")
        return
    if len(data) > max_member_bytes:
        yield Quarantined(
            FILE_LOCATOR, "InputTooLarge", f"the file exceeds the {max_member_bytes} byte limit"
        )
        return
    yield from _parse_document(data, "", FILE_LOCATOR, markers)


def _is_tar(path: str) -> bool:
    """By name, else by the ustar magic of a file whose name says neither tar nor XML."""
    name = path.lower().removesuffix(".gz")
    if name.endswith(TAR_SUFFIXES):
        return True
    if name.endswith(XML_SUFFIXES):
        return False
    with open_stream(path) as stream:
        head = stream.read(tarfile.BLOCKSIZE)
    return len(head) == tarfile.BLOCKSIZE and head[257:262] == b"ustar"


def _parse_tar(
    path: str, markers: bool, limit: int, stats: PmcStats
) -> Iterator[dict[str, Any] | Quarantined]:
    with open(path, "rb") as raw:
        archive = _open_archive(raw)
        if isinstance(archive, Quarantined):
            yield archive
            return
        with archive:
            while True:
                try:
                    member = archive.next()
                    if member is None:
                        if not _ended_cleanly(archive):
                            raise tarfile.ReadError("the archive ends inside a member header")
                        return
                    item = _member_bytes(archive, member, limit, stats)
                except _TAR_ERRORS as exc:
                    yield Quarantined(
                        EOF_LOCATOR, "TruncatedArchive", f"{type(exc).__name__}: {exc}"
                    )
                    return
                # A stream-mode TarFile keeps every header it read; bulk packages hold
                # hundreds of thousands of members.
                archive.members.clear()
                if isinstance(item, bytes):
                    yield from _parse_document(
                        item, f"member={member.name} ", f"member={member.name}", markers
                    )
                elif item is not None:
                    yield item


def _open_archive(raw: BinaryIO) -> tarfile.TarFile | Quarantined:
    try:
        # Stream mode: members are read in order, never sought, never extracted to disk.
        return tarfile.open(fileobj=raw, mode="r|*")
    except _TAR_ERRORS as exc:
        return Quarantined(FILE_LOCATOR, "UnreadableInput", f"{type(exc).__name__}: {exc}")


def _ended_cleanly(archive: tarfile.TarFile) -> bool:
    """Whether the archive ended with its two zero blocks, not in a cut-off header (which
    tarfile reports as a normal end)."""
    after_first = archive.fileobj.tell() - archive.offset  # type: ignore[union-attr]
    second = archive.fileobj.read(tarfile.BLOCKSIZE)  # type: ignore[union-attr]
    return after_first == tarfile.BLOCKSIZE and second == tarfile.NUL * tarfile.BLOCKSIZE


def _member_bytes(
    archive: tarfile.TarFile, member: tarfile.TarInfo, limit: int, stats: PmcStats
) -> bytes | Quarantined | None:
    """The member's bytes, a Quarantined item, or None for a member that is not an article."""
    name = member.name
    locator = f"member={name}"
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
        return Quarantined(
            locator, "UnsafeArchiveMember", "absolute member name or one with a '..' part"
        )
    if not member.isfile() or not name.lower().endswith(XML_SUFFIXES):
        stats.skipped_members += 1
        return None
    stats.xml_members += 1
    too_large = Quarantined(locator, "MemberTooLarge", f"the member exceeds {limit} bytes")
    if member.size > limit:
        return too_large
    stream = archive.extractfile(member)
    if stream is None:
        return None
    # Never more than limit + 1 bytes in memory, whatever the header says.
    data = stream.read(limit + 1)
    return too_large if len(data) > limit else data


def _parse_document(
    data: bytes, prefix: str, whole: str, markers: bool
) -> Iterator[dict[str, Any] | Quarantined]:
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        yield Quarantined(whole, "MalformedXML", str(exc))
        return
    if root.tag == "article":
        articles = [root]
    elif root.tag == "pmc-articleset":
        articles = [child for child in root if child.tag == "article"]
    else:
        yield Quarantined(
            whole, "UnexpectedRoot", f"root element <{root.tag}> is not article or pmc-articleset"
        )
        return
    for index, article in enumerate(articles):
        locator = f"{prefix}article={index}"
        try:
            yield parse_article(article, locator, markers)
        except ArticleError as exc:
            yield Quarantined(locator, exc.error_class, str(exc))
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            yield Quarantined(locator, type(exc).__name__, str(exc))


def parse_article(element: etree._Element, locator: str, markers: bool = True) -> dict[str, Any]:
    """The bronze row of one <article> element; raises ArticleError when it has no PMCID."""
    meta = element.find("front/article-meta")
    if meta is None:
        raise ArticleError("MissingElement", "the article has no front/article-meta")
    ids: dict[str, str] = {}
    for aid in meta.iterfind("article-id"):
        kind, value = aid.get("pub-id-type"), element_text(aid)
        if kind and value:
            ids.setdefault(kind, value)
    pmcid = _pmcid(ids.get("pmc") or ids.get("pmcid"))
    pmid = ids.get("pmid", "")
    license_code, license_text = _license(element, meta)
    text = _Text(element, markers)
    body_el = element.find("body")
    body = text.body(body_el) if body_el is not None else None
    counts = {"fig": 0, "table-wrap": 0, "disp-formula": 0, "inline-formula": 0, "ref": 0}
    for el in element.iter(*counts):
        counts[el.tag] += 1  # type: ignore[index]
    language = element.get(_XML_LANG)
    return {
        "doc_id": f"pmc:{pmcid}",
        "pmcid": pmcid,
        "pmid": int(pmid) if pmid.isdigit() else None,
        "doi": ids.get("doi"),
        "title": text.line(meta.find("title-group/article-title")) or None,
        "abstract": text.abstract(meta),
        "body": body,
        "license": license_code,
        "license_text": license_text,
        "journal": _journal(element.find("front/journal-meta")),
        "pub_year": _pub_year(meta),
        "article_type": element.get("article-type"),
        "language": language.lower() if language else None,
        "has_body": body is not None,
        "n_figures": counts["fig"],
        "n_tables": counts["table-wrap"],
        "n_formulas": counts["disp-formula"] + counts["inline-formula"],
        "n_citations": counts["ref"],
        "locator": locator,
    }


def _pmcid(value: str | None) -> str:
    if not value:
        raise ArticleError("MissingPMCID", "the article has no pmc article-id")
    m = _PMCID.fullmatch(value.strip())
    if m is None:
        raise ArticleError("InvalidPMCID", f"PMCID {value!r} is not PMC followed by digits")
    return f"PMC{m.group(1)}"


def _journal(journal_meta: etree._Element | None) -> str | None:
    if journal_meta is None:
        return None
    return element_text(journal_meta.find(".//journal-title")) or element_text(
        journal_meta.find("journal-id[@journal-id-type='nlm-ta']")
    )


def _pub_year(meta: etree._Element) -> int | None:
    """ppub (or print) year, else epub (or electronic), else any date, PMC release last."""
    ranked: list[tuple[int, int]] = []
    for date in meta.iterfind("pub-date"):
        found = _YEAR.search(date.findtext("year") or "")
        if not found:
            continue
        kind = date.get("pub-type") or date.get("date-type") or ""
        fmt = date.get("publication-format") or ""
        if kind == "ppub" or fmt == "print":
            rank = 0
        elif kind in ("epub", "epub-ppub") or fmt == "electronic":
            rank = 1
        else:
            rank = 3 if kind == "pmc-release" else 2
        ranked.append((rank, int(found.group(1))))
    return min(ranked)[1] if ranked else None


def _license(article: etree._Element, meta: etree._Element) -> tuple[str, str | None]:
    """The licence code and raw statements: <permissions>, then a back-matter "Open Access"
    note (Springer's Open Choice puts its licence there); when both name a licence the
    stricter one is kept."""
    code, texts = UNKNOWN, []
    perms = meta.find("permissions")
    if perms is not None:
        for lic in perms.iterfind("license"):
            text = element_text(lic)
            url = lic.get(_XLINK_HREF) or next(
                (e.get(_XLINK_HREF) for e in lic.iter("ext-link") if e.get(_XLINK_HREF)), None
            )
            found = normalize_license(text, url)
            if found == UNKNOWN:
                found = normalize_license(lic.get("license-type"))
            if text:
                texts.append(text)
            if code == UNKNOWN:
                code = found
        for ref in perms.iter(_ALI_LICENSE_REF):
            if code == UNKNOWN:
                code = normalize_license(None, element_text(ref))
        if not texts and (statement := element_text(perms.find("copyright-statement"))):
            texts.append(statement)
    back = article.find("back")
    for note in back if back is not None else ():
        if not isinstance(note.tag, str):
            continue
        title = element_text(note.find("title"))
        if not title or not _OPEN_ACCESS_NOTE.match(title):
            continue
        text = " ".join(t for p in note.iterfind("p") if (t := element_text(p)))
        if text:
            texts.append(text)
            code = more_restrictive(code, normalize_license(text))
    return code, "\n".join(texts) or None


def _words(text: str, n: int = TITLE_WORDS) -> str:
    """The first n words, without a trailing comma or a parenthesis left open by the cut."""
    words = text.split()
    cut = " ".join(words[:n])
    if len(words) > n and cut.count("(") > cut.count(")"):
        cut = cut[: cut.rindex("(")]
    return cut.rstrip(" .,;:")


@dataclass
class _Ref:
    """One reference-list entry: what a citation marker says about it."""

    title: str | None
    author: str | None
    label: str | None


@dataclass
class _Float:
    """A figure or table: its label, its caption start, and whether it was written out."""

    kind: str  # "fig" or "table"
    label: str
    element: etree._Element
    in_floats_group: bool
    done: bool = False
    start: str | None = None


@dataclass
class _Para:
    """A paragraph being assembled: text pieces with placeholders for citations
    (the cited ref id, the marker text) and float mentions."""

    parts: list[str] = field(default_factory=list)
    cites: list[tuple[str | None, str | None]] = field(default_factory=list)
    figs: list[_Float] = field(default_factory=list)

    def cite(self, rid: str | None, body: str | None) -> None:
        self.parts.append(f"\x02{len(self.cites)}\x03")
        self.cites.append((rid, body))

    def mention(self, fl: _Float) -> None:
        self.parts.append(f"\x04{len(self.figs)}\x05")
        self.figs.append(fl)

    def last_part(self) -> str:
        return next((p for p in reversed(self.parts) if p), "")

    def last_char(self) -> str:
        return self.last_part()[-1:]


class _Text:
    """Renders the title, abstract and body of one article."""

    def __init__(self, article: etree._Element, markers: bool) -> None:
        self.markers = markers
        # Reference entries are read when first cited: many are never looked at.
        self.ref_elements: dict[str, etree._Element] = {}
        self.ref_index: dict[str, int] = {}
        self.ref_ids: list[str] = []
        self.refs: dict[str, _Ref] = {}
        for ref in article.iter("ref"):
            rid = ref.get("id")
            if rid and rid not in self.ref_index:
                self.ref_elements[rid] = ref
                self.ref_index[rid] = len(self.ref_ids)
                self.ref_ids.append(rid)
        self.floats: dict[etree._Element, _Float] = {}
        self.float_ids: dict[str, _Float] = {}
        numbers = {"fig": 0, "table": 0}
        for el in article.iter("fig", "table-wrap"):
            kind = "fig" if el.tag == "fig" else "table"
            numbers[kind] += 1
            parent = el.getparent()
            fl = _Float(
                kind,
                _float_label(el, kind, numbers[kind]),
                el,
                parent is not None and parent.tag == "floats-group",
            )
            self.floats[el] = fl
            if el.get("id"):
                self.float_ids.setdefault(el.get("id"), fl)  # type: ignore[arg-type]
        self.mentioned: list[_Float] = []

    # -- blocks ------------------------------------------------------------------------

    def body(self, body: etree._Element) -> str | None:
        blocks: list[str] = []
        self._blocks(body, 0, blocks)
        for fl in self.floats.values():
            if fl.in_floats_group and not fl.done:
                self._float(fl.element, blocks)
        text = "\n\n".join(b for b in blocks if b)
        return text or None

    def _blocks(self, container: etree._Element, depth: int, out: list[str]) -> None:
        for child in container:
            self._block(child, depth, out)

    def _block(self, el: etree._Element, depth: int, out: list[str]) -> None:
        tag = el.tag
        if not isinstance(tag, str) or tag in _SKIPPED or tag in ("label", "title"):
            return
        if tag == "sec":
            self._section(el, depth, out)
        elif tag in _FLOAT_TAGS:
            self._float(el, out)
        elif tag == "disp-formula" or tag == _MATHML:
            out.append(self._formula(el))
        elif tag == "list":
            out.append(self._list(el, ""))
        elif tag == "def-list":
            out.append(self._def_list(el))
        elif tag in _BLOCK_CONTAINERS:
            out.append(self.line(el.find("title")))
            self._blocks(el, depth, out)
        else:
            self._paragraph(el, depth, out)

    def _section(self, sec: etree._Element, depth: int, out: list[str]) -> None:
        title = " ".join(
            t for t in (self.line(sec.find("label")), self.line(sec.find("title"))) if t
        )
        sec_type = (sec.get("sec-type") or "").lower()
        # An untitled section may open with its title as a run-in: "Data accessibility: ...".
        heading = title or (element_text(sec.find("p")) or "")[:80]
        if sec_type in _DROPPED_SEC_TYPES or _DROPPED_TITLE.match(heading.lower()):
            return
        if title:
            out.append(("# " if depth == 0 else "## ") + title)
        self._blocks(sec, depth + 1, out)

    def _paragraph(self, p: etree._Element, depth: int, out: list[str]) -> None:
        """A paragraph; lists and quotes inside it become blocks of their own, and the
        floats inside it (or first mentioned in it, from the floats-group) follow it."""
        para = _Para()
        deferred: list[etree._Element] = []
        if p.text:
            para.parts.append(p.text)
        for child in p:
            if child.tag in _BLOCK_IN_P:
                out.append(self._finish(para))
                para = _Para()
                self._block(child, depth, out)
            else:
                self._inline(child, para, deferred)
            if child.tail:
                para.parts.append(child.tail)
        out.append(self._finish(para))
        for el in deferred:
            self._float(el, out)
        mentioned, self.mentioned = self.mentioned, []
        for fl in mentioned:
            if fl.in_floats_group and not fl.done:
                self._float(fl.element, out)

    def _float(self, el: etree._Element, out: list[str]) -> None:
        if el.tag in ("fig-group", "table-wrap-group"):
            for child in el:
                if child.tag in ("fig", "table-wrap"):
                    self._float(child, out)
            return
        fl = self.floats[el]
        if fl.done:
            return
        fl.done = True
        caption = self._caption(el.find("caption"))
        if not caption:
            return
        text = f"{fl.label}: {caption}"
        out.append(f"[{fl.kind}] {text} [/{fl.kind}]" if self.markers else text)

    def _caption(self, caption: etree._Element | None) -> str:
        if caption is None:
            return ""
        parts = [t for c in caption if c.tag in ("title", "p") and (t := self.line(c))]
        if len(parts) > 1 and parts[0][-1] not in ".:;!?":
            parts[0] += "."
        return " ".join(parts)

    def _list(self, lst: etree._Element, indent: str) -> str:
        ordered = lst.get("list-type") == "order"
        lines = []
        for number, item in enumerate(lst.iterfind("list-item"), 1):
            label = element_text(item.find("label"))
            texts, nested = [], []
            for child in item:
                if child.tag == "list":
                    nested.append(self._list(child, indent + "  "))
                elif child.tag != "label" and (t := self.line(child)):
                    texts.append(t)
            bullet = f"{label} " if label else (f"{number}. " if ordered else "- ")
            if texts:
                lines.append(indent + bullet + " ".join(texts))
            lines.extend(nested)
        return "\n".join(lines)

    def _def_list(self, dl: etree._Element) -> str:
        lines = []
        for item in dl.iterfind("def-item"):
            term, definition = self.line(item.find("term")), self.line(item.find("def"))
            lines.append(f"- {term}: {definition}" if term else f"- {definition}")
        return "\n".join(lines)

    def abstract(self, meta: etree._Element) -> str | None:
        abstract = next(
            (
                a
                for a in meta.iterfind("abstract")
                if a.get("abstract-type") not in _SKIPPED_ABSTRACT_TYPES
            ),
            None,
        )
        if abstract is None:
            return None
        lines: list[str] = []
        self._abstract_lines(abstract, lines)
        return "\n".join(lines) or None

    def _abstract_lines(self, container: etree._Element, lines: list[str]) -> None:
        """Paragraphs of an abstract; a section's first one is prefixed by its title."""
        for child in container:
            if child.tag != "sec":
                self._block(child, 1, lines)
                continue
            title = self.line(child.find("title"))
            if _DROPPED_TITLE.match(title.lower()):
                continue
            paras: list[str] = []
            self._abstract_lines(child, paras)
            if title and paras:
                paras[0] = f"{title}: {paras[0]}"
            lines.extend(paras)
        lines[:] = [line for line in lines if line]

    # -- inline text -------------------------------------------------------------------

    def line(self, el: etree._Element | None) -> str:
        """All the text of an element as one line (floats inside it are not written)."""
        if el is None:
            return ""
        para = _Para()
        if el.text:
            para.parts.append(el.text)
        for child in el:
            self._inline(child, para, [])
            if child.tail:
                para.parts.append(child.tail)
        return self._finish(para)

    def _inline(self, el: etree._Element, para: _Para, deferred: list[etree._Element]) -> None:
        tag = el.tag
        if not isinstance(tag, str):
            return
        if tag == "xref":
            self._xref(el, para)
        elif tag in ("inline-formula", "disp-formula", _MATHML):
            # Formulas usually sit between spaces already; pad only where a word would touch.
            pad = " " if para.last_char().isalnum() else ""
            para.parts.append(pad + self._formula(el))
        elif tag in _FLOAT_TAGS:
            deferred.append(el)
        elif tag in _SKIPPED:
            return
        elif tag == "break":
            para.parts.append(" ")
        elif (
            tag == "sup"
            and len(el) == 0
            and _EXPONENT.fullmatch(text := (el.text or "").strip())
            and _EXPONENT_BASE.search(para.last_part())
        ):
            # "10<sup>-5</sup>", "mm<sup>2</sup>", "s<sup>−1</sup>": keep the exponent readable
            # ("disease<sup>2</sup>" is more likely a citation number).
            para.parts.append("^" + text)
        else:
            if el.text:
                para.parts.append(el.text)
            for child in el:
                self._inline(child, para, deferred)
                if child.tail:
                    para.parts.append(child.tail)

    def _xref(self, xref: etree._Element, para: _Para) -> None:
        kind = xref.get("ref-type")
        rids = (xref.get("rid") or "").split()
        text = element_text(xref) or ""
        if kind == "bibr":
            known = [r for r in rids if r in self.ref_index]
            if not known:
                para.cite(None, text)
            for rid in known:
                para.cite(rid, self._cite_body(rid, text))
        elif kind in ("fig", "table"):
            fl = self.float_ids.get(rids[0]) if rids else None
            if fl is not None:
                self.mentioned.append(fl)
            if fl is not None and self.markers:
                para.mention(fl)
            else:
                para.parts.append(text)
        elif kind not in _DROPPED_XREFS:
            para.parts.append(text)

    def _ref(self, rid: str) -> _Ref:
        ref = self.refs.get(rid)
        if ref is None:
            ref = self.refs[rid] = _read_ref(self.ref_elements[rid])
        return ref

    def _cite_body(self, rid: str, fallback: str | None) -> str | None:
        ref = self._ref(rid)
        if not ref.title:
            return fallback or ref.label
        return f"{ref.title}, {ref.author}" if ref.author else ref.title

    def _finish(self, para: _Para) -> str:
        text = " ".join("".join(para.parts).split())
        if not para.cites and not para.figs:
            return text
        cites = para.cites
        if cites:
            text = self._absorb_authors(text, cites)
            text = _RANGE.sub(lambda m: self._expand_range(m, cites), text)
        if para.figs:
            text = _PANEL.sub(r"\1", _drop_figure_words(text))
        marker = self._marker_fn(para)
        text = _GROUP.sub(lambda m: _joined(m.group(1), marker), text)
        text = _RUN.sub(lambda m: _joined(m.group(0), marker), text)
        if self.markers:
            text = _PLACEHOLDER.sub(lambda m: _spaced(m, marker(m)), text)
        else:
            text = _CITE_AND_SPACE.sub("", text)
            text = _LEADING_SEP.sub(r"\1", _TRAILING_SEP.sub(r"\1", text))
            text = _EMPTY_BRACKETS.sub("", text)
        return " ".join(text.split()) if "  " in text else text.strip()

    def _marker_fn(self, para: _Para) -> Callable[[re.Match[str]], str]:
        def marker(m: re.Match[str]) -> str:
            if not self.markers:
                return ""
            if m.group(1) is not None:
                body = para.cites[int(m.group(1))][1]
                return f"[bib_ref] {body} [/bib_ref]" if body else ""
            fl = para.figs[int(m.group(2))]
            start = self._caption_start(fl)
            label = f"{fl.label}: {start}" if start else fl.label
            return f"[fig_ref] {label} [/fig_ref]"

        return marker

    def _absorb_authors(self, text: str, cites: list[tuple[str | None, str | None]]) -> str:
        """In "(Goldstein et al. 1975; Burton and Reed 1981)" the xrefs cover only the years:
        the first author's name before a citation is left to its marker."""
        pieces = []
        last = 0
        for m in _CITE_AT.finditer(text):
            rid = cites[int(m.group(1))][0]
            author = self._ref(rid).author if rid else None
            if not author:
                continue
            lo = max(last, m.start() - 100)
            lead = max(text.rfind(c, lo, m.start()) for c in "([;,")
            if lead < 0:
                continue
            start = lead + 1
            while text[start] == " ":
                start += 1
            name = text[start : m.start()]
            if name[: len(author)].lower() == author.lower() and _AUTHOR_TAIL.fullmatch(
                name, len(author)
            ):
                pieces.append(text[last:start])
                last = m.start()
        pieces.append(text[last:])
        return "".join(pieces)

    def _expand_range(self, m: re.Match[str], cites: list[tuple[str | None, str | None]]) -> str:
        """A range "[3–5]" is written as three citations, the refs between its ends in order."""
        first, last = cites[int(m.group(1))][0], cites[int(m.group(2))][0]
        if first is None or last is None:
            return m.group(0)
        lo, hi = self.ref_index[first], self.ref_index[last]
        if not 1 < hi - lo <= MAX_RANGE:
            return m.group(0)
        middle = []
        for rid in self.ref_ids[lo + 1 : hi]:
            middle.append(f"\x02{len(cites)}\x03")
            cites.append((rid, self._cite_body(rid, None)))
        return f"\x02{m.group(1)}\x03 {' '.join(middle)} \x02{m.group(2)}\x03"

    def _caption_start(self, fl: _Float) -> str:
        if fl.start is None:
            caption = fl.element.find("caption")
            title = caption.find("title") if caption is not None else None
            text = _plain(title if title is not None else caption)
            end = _SENTENCE_END.search(text)
            fl.start = _words(text[: end.start() + 2] if end else text)
        return fl.start

    def _formula(self, el: etree._Element) -> str:
        tex = next(el.iter("tex-math"), None)
        math = next(el.iter(_MATHML), None)
        if tex is not None and tex.text:
            body = _tex(tex.text)
        elif math is not None:
            body = _mathml(math)
        else:
            body = _plain(el, skip=("label",))
        label = element_text(el.find("label")) if el.tag == "disp-formula" else None
        text = " ".join(t for t in (body, label) if t)
        if not text:
            return ""
        return f"[formula] {text} [/formula]" if self.markers else text


def _spaced(m: re.Match[str], marker: str) -> str:
    """A marker set off by spaces, except next to an opening bracket or a punctuation mark."""
    if not marker:
        return ""
    before = m.string[m.start() - 1 : m.start()]
    after = m.string[m.end() : m.end() + 1]
    left = "" if before in ("", " ", "(", "[") else " "
    right = "" if after in ("", " ", ".", ",", ";", ":", "!", "?", ")", "]") else " "
    return f"{left}{marker}{right}"


def _drop_figure_words(text: str) -> str:
    """ "Figure <xref>1</xref>": the marker carries the label, so the word before it goes."""
    pieces = []
    last = 0
    for m in _FREF_AT.finditer(text):
        word = _FIG_WORD.search(text, max(last, m.start() - 16), m.start())
        pieces.append(text[last : word.start() if word else m.start()])
        last = m.start()
    pieces.append(text[last:])
    return "".join(pieces)


def _joined(group: str, marker: Callable[[re.Match[str]], str]) -> str:
    """The placeholders of a citation group, without its brackets and separators; a marker
    repeated back to back ("Figure 1A and 1B") is kept once."""
    kept: list[str] = []
    last = None
    for m in _PLACEHOLDER.finditer(group):
        text = marker(m)
        if text and text == last:
            continue
        kept.append(m.group(0))
        last = text
    return " ".join(kept)


def _read_ref(ref: etree._Element) -> _Ref:
    citations = [c for c in ref if c.tag in _CITATION_TAGS]
    # NLM 2.3 refs pair a structured citation with a "display-unstructured" one.
    cit = next(
        (c for c in citations if c.find("article-title") is not None),
        citations[0] if citations else ref,
    )
    # One pass over the children: refs are many and most are cited.
    title = chapter = source = author = collab = None
    for child in cit:
        tag = child.tag
        if tag == "article-title":
            title = child
        elif tag == "chapter-title":
            chapter = child
        elif tag == "source":
            source = child
        elif tag == "person-group" and author is None:
            if child.get("person-group-type", "author") == "author":
                author = next(child.iter("surname", "collab"), None)
        elif tag == "name" and author is None:
            author = child.find("surname")
        elif tag == "collab" and collab is None:
            collab = child
    text = element_text(title) or element_text(chapter)
    kind = cit.get("publication-type") or cit.get("citation-type") or ""
    if not text and kind in _BOOKISH:
        text = element_text(source)
    if author is None:
        author = next(cit.iter("surname"), None) if collab is None else collab
    return _Ref(
        _words(text) if text else None,
        element_text(author),
        element_text(ref.find("label")),
    )


def _float_label(el: etree._Element, kind: str, number: int) -> str:
    """The label as "Figure 3" / "Table 2" ("Fig. 3", "Table&nbsp;2", "3"), or by order."""
    word = "Figure" if kind == "fig" else "Table"
    label = (element_text(el.find("label")) or "").rstrip(".:")
    if not label:
        return f"{word} {number}"
    m = re.match(r"(?:fig(?:ure)?|tab(?:le)?)s?\.?\s*(.*)", label, re.I)
    if m:
        return f"{word} {m.group(1)}".rstrip()
    return f"{word} {label}" if label[0].isdigit() else label


def _plain(el: etree._Element | None, skip: tuple[str, ...] = ()) -> str:
    """Text without citations, footnotes or graphics, whitespace collapsed."""
    if el is None:
        return ""
    parts: list[str] = []

    def walk(node: etree._Element) -> None:
        if node.text:
            parts.append(node.text)
        for child in node:
            tag = child.tag
            dropped = (
                not isinstance(tag, str)
                or tag in skip
                or tag in _SKIPPED
                or (tag == "xref" and child.get("ref-type") in ("bibr", *_DROPPED_XREFS))
            )
            if not dropped:
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    text = " ".join("".join(parts).split())
    return _EMPTY_BRACKETS.sub("", text).replace(" .", ".").strip()


def _tex(raw: str) -> str:
    """The formula of a tex-math element, without PMC's LaTeX document wrapper."""
    doc = re.search(r"\\begin\{document\}(.*?)\\end\{document\}", raw, re.S)
    text = (doc.group(1) if doc else raw).strip()
    for opener, closer in (("$$", "$$"), ("\\[", "\\]"), ("$", "$"), ("\\(", "\\)")):
        if text.startswith(opener) and text.endswith(closer) and len(text) > 2 * len(opener):
            text = text[len(opener) : -len(closer)]
            break
    return " ".join(text.split())


# -- MathML as linear text -----------------------------------------------------------------

_MML_SPACED = frozenset("=<>≤≥≈≠≡∝→←↔⇒⇔∈∉⊂⊆±∓×÷+−∼≃≅≪≫")
_MML_ACCENTS = frozenset("¯^~˙¨→‾ˆ˜ˇ´`′")
_INVISIBLE = str.maketrans({"\u2061": "", "\u2062": "", "\u2063": ",", "\u2064": "+"})
_WORD_END = re.compile(r"[^\W\d_]{2,}$")
_WORD_START = re.compile(r"[^\W\d_]{2,}")
_SIMPLE = re.compile(r"[\w.′']+|\S")


def _mathml(math: etree._Element) -> str:
    text = " ".join(_mml(math).split())
    return text.replace("( ", "(").replace(" )", ")")


def _mml(el: etree._Element) -> str:
    if not isinstance(el.tag, str):
        return ""
    tag = el.tag.rpartition("}")[2]
    if tag in ("mi", "mn", "mtext", "ms"):
        return "".join(el.itertext()).translate(_INVISIBLE)
    if tag == "mo":
        op = "".join(el.itertext()).strip().translate(_INVISIBLE)
        return f" {op} " if op in _MML_SPACED else op
    if tag == "mspace":
        return " "
    if tag in ("annotation", "annotation-xml", "none", "mprescripts", "mphantom"):
        return ""
    if tag == "mglyph":
        return el.get("alt") or ""
    parts = [_mml(c) for c in el]
    if tag in ("semantics", "maction"):
        return parts[0] if parts else ""
    n = len(parts)
    if tag == "msup" and n == 2:
        return f"{parts[0]}^{{{parts[1].strip()}}}"
    if tag == "msub" and n == 2:
        return f"{parts[0]}_{{{parts[1].strip()}}}"
    if tag == "msubsup" and n == 3:
        return f"{parts[0]}_{{{parts[1].strip()}}}^{{{parts[2].strip()}}}"
    if tag == "munder" and n == 2:
        return f"{parts[0]}_{{{parts[1].strip()}}}"
    if tag == "mover" and n == 2:
        over = parts[1].strip()
        if over in _MML_ACCENTS or el.get("accent") == "true":
            return parts[0] + over
        return f"{parts[0]}^{{{over}}}"
    if tag == "munderover" and n == 3:
        return f"{parts[0]}_{{{parts[1].strip()}}}^{{{parts[2].strip()}}}"
    if tag == "mfrac" and n == 2:
        return f"{_wrap(parts[0])}/{_wrap(parts[1])}"
    if tag == "msqrt":
        return f"sqrt({_mml_join(parts).strip()})"
    if tag == "mroot" and n == 2:
        return f"root_{{{parts[1].strip()}}}({parts[0].strip()})"
    if tag == "mfenced":
        separators = (el.get("separators") or ",").strip() or ","
        inner = f"{separators[0]} ".join(p.strip() for p in parts)
        return f"{el.get('open', '(')}{inner}{el.get('close', ')')}"
    if tag == "mtable":
        return "; ".join(p.strip() for p in parts if p.strip())
    if tag in ("mtr", "mlabeledtr"):
        return "  ".join(p.strip() for p in parts if p.strip())
    return _mml_join(parts)


def _mml_join(parts: list[str]) -> str:
    """Tokens side by side; a space only where a word would run into the next token
    ("sin x"), not between single letters ("dt")."""
    out = ""
    previous = ""
    for part in parts:
        if (
            previous[-1:].isalpha()
            and part[:1].isalnum()
            and (_WORD_END.search(previous) or _WORD_START.match(part))
        ):
            out += " "
        out += part
        previous = part or previous
    return out


def _wrap(part: str) -> str:
    part = part.strip()
    return part if _SIMPLE.fullmatch(part) else f"({part})"
